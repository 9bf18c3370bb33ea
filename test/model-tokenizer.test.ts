/**
 * Byte-level BPE: training, round trips over arbitrary Unicode, added tokens, tokenizer.json save/load, and agreement
 * with @huggingface/tokenizers on the saved file.
 */
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BpeTokenizer, HfTokenizer, loadTokenizer, trainBpe } from "../src/model/index.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "searchrl-tok-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A small corpus built from the repository's own data (questions of the upstream eval sets).
const corpus: string[] = readFileSync(
  path.resolve(__dirname, "../data/r1-searcher/eval_set/hotpotqa_500.jsonl"),
  "utf8",
)
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => {
    const r = JSON.parse(l) as { question: string; answer: string };
    return `${r.question} ${r.answer}\n`;
  });

const PROTOCOL = ["<|begin_of_query|>", "<|end_of_query|>", "<|begin_of_documents|>", "<|end_of_documents|>"];

const SAMPLES = [
  "Hello world, tokenizers!",
  "  leading spaces\n\n\ttabs and trailing   ",
  "héllo wörld 日本語のテキスト 😀 emoji 🧑‍🚀 (ZWJ) café",
  "<|begin_of_query|>who directed Alien<|end_of_query|>\n\n<|begin_of_documents|>\n(1) Ridley Scott\n<|end_of_documents|>\n\n",
  "a<|begin_of_query|>b<|endoftext|>c<|end_of_query",
  "\u0000\u0001\u007f control bytes and a \u00ad soft hyphen",
  "numbers 1234567890 3.14159 -42 and 'quotes' it's they're I'll we've",
  "",
];

describe("byte-level BPE", () => {
  const tok = trainBpe(corpus, { vocabSize: 700, specialTokens: ["<|endoftext|>"], addedTokens: PROTOCOL });

  it("trains to the requested size with bytes, merges and added tokens", () => {
    expect(tok.vocabSize).toBe(700);
    expect(tok.merges.length).toBeGreaterThanOrEqual(700 - 256 - 5);
    expect(tok.eosTokenIds).toEqual([tok.tokenToId("<|endoftext|>")]);
    for (const p of PROTOCOL) expect(tok.encode(p)).toEqual([tok.tokenToId(p)]);
    // Frequent words of the corpus became single tokens.
    expect(tok.encode(" the")).toHaveLength(1);
  });

  it("is deterministic", () => {
    const again = trainBpe(corpus, { vocabSize: 700, specialTokens: ["<|endoftext|>"], addedTokens: PROTOCOL });
    expect(again.merges).toEqual(tok.merges);
  });

  it("round-trips arbitrary Unicode", () => {
    for (const s of SAMPLES) expect(tok.decode(tok.encode(s))).toBe(s);
    // Random code points from all planes (valid scalar values only).
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let k = 0; k < 50; k++) {
      let s = "";
      for (let i = 0; i < 30; i++) {
        let cp = Math.floor(rnd() * 0x10ffff);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
        s += String.fromCodePoint(cp);
      }
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it("saves a tokenizer.json that @huggingface/tokenizers encodes and decodes identically", async () => {
    const dir = path.join(tmp, "t1");
    const json = tok.toJson();
    rmSync(dir, { recursive: true, force: true });
    await import("node:fs").then((fs) => fs.mkdirSync(dir, { recursive: true }));
    writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|endoftext|>" }));
    const hf = await loadTokenizer(dir);
    expect(hf).toBeInstanceOf(HfTokenizer);
    expect(hf.vocabSize).toBe(700);
    expect(hf.eosTokenIds).toEqual(tok.eosTokenIds);
    const texts = [...SAMPLES, ...corpus.slice(0, 200)];
    for (const s of texts) {
      const ours = tok.encode(s);
      expect(hf.encode(s)).toEqual(ours);
      expect(hf.decode(ours)).toBe(s);
    }
    // Our own loader reads the same file back to the same tokenizer.
    const back = BpeTokenizer.fromJson(JSON.parse(readFileSync(path.join(dir, "tokenizer.json"), "utf8")));
    for (const s of texts) expect(back.encode(s)).toEqual(tok.encode(s));
  });

  it("rejects impossible requests", () => {
    expect(() => trainBpe(corpus, { vocabSize: 100 })).toThrow(/smaller than 256/);
    expect(() => trainBpe(corpus, { vocabSize: 300, addedTokens: ["a b"] })).toThrow(/whitespace/);
    expect(() => tok.decode([5000])).toThrow(/outside the vocabulary/);
  });
});
