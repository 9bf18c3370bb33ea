/**
 * The built-in backend against the LLMBackend contract: loads a checkpoint folder with its tokenizer, generates
 * (single, batched, concurrent), honours stop/EOS/length, and picks up swapped weights.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BpeTokenizer, Transformer, saveCheckpoint, trainBpe } from "../model/index.js";
import { createBuiltinBackend } from "./builtin.js";
import type { GenerateRequest } from "./types.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "searchrl-builtin-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = readFileSync(path.resolve(__dirname, "../../data/r1-searcher/eval_set/bamboogle.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => (JSON.parse(l) as { question: string }).question + "\n");

describe("createBuiltinBackend", async () => {
  const tok = trainBpe(corpus, { vocabSize: 400, specialTokens: ["<|endoftext|>"], addedTokens: ["<|end_of_query|>"] });
  const cfg = {
    vocabSize: 400,
    hiddenSize: 48,
    intermediateSize: 96,
    numLayers: 2,
    numHeads: 4,
    maxPositions: 96,
    eosTokenIds: [...tok.eosTokenIds],
  };
  const a = await Transformer.create(cfg, { seed: 1, initStd: 0.3 });
  const b = await Transformer.create(cfg, { seed: 2, initStd: 0.3 });
  const dir = path.join(tmp, "a");
  await saveCheckpoint(a, dir, { tokenizerJson: tok.toJson() });
  const backend = await createBuiltinBackend({ checkpointDir: dir, maxBatch: 16 });
  const prompt = "Who was president";
  const req = (over: Partial<GenerateRequest["params"]> = {}): GenerateRequest => ({
    tokens: tok.encode(prompt),
    text: prompt,
    params: { temperature: 0, topP: 1, maxTokens: 12, stop: [], ...over },
  });

  it("loads the folder: name, tokenizer, concurrency", () => {
    expect(backend.name).toBe(`builtin:${dir}`);
    expect(backend.tokenizer.vocabSize).toBe(400);
    expect(backend.tokenizer.eosTokenIds).toEqual([...tok.eosTokenIds]);
    // Our own byte-level BPE folder is served by the native implementation (exact byte streaming).
    expect(backend.tokenizer).toBeInstanceOf(BpeTokenizer);
    expect(backend.maxConcurrency).toBe(16);
  });

  it("generates with the contract's fields", async () => {
    const r = await backend.generate(req());
    expect(r.tokenIdsExact).toBe(true);
    expect(r.tokens.length).toBeGreaterThan(0);
    expect(r.logprobs).toHaveLength(r.tokens.length);
    expect(["length", "eos"]).toContain(r.finishReason);
    if (r.finishReason === "length") {
      expect(r.tokens).toHaveLength(12);
      expect(r.text).toBe(tok.decode(r.tokens));
    }
    expect(r.backendMs).toBeGreaterThan(0);
    const none = await backend.generate(req({ logprobs: false }));
    expect(none.logprobs).toBeNull();
    expect(none.tokens).toEqual(r.tokens);
  });

  it("stop strings cut the text and keep the tokens; batch order is kept", async () => {
    const full = await backend.generate(req({ maxTokens: 20 }));
    const stop = full.text.slice(3, 6);
    expect(stop.length).toBe(3);
    const [x, y] = await backend.generateBatch!([req({ maxTokens: 20, stop: [stop] }), req({ maxTokens: 5 })]);
    expect(x.finishReason).toBe("stop");
    expect(x.stopString).toBe(stop);
    expect(x.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(full.tokens.slice(0, x.tokens.length)).toEqual(x.tokens);
    expect(tok.decode(x.tokens)).toContain(stop);
    expect(tok.decode(x.tokens.slice(0, -1))).not.toContain(stop);
    expect(y.tokens).toEqual(full.tokens.slice(0, y.tokens.length));
    expect(y.tokens.length).toBeLessThanOrEqual(5);
  });

  it("streams text through onText", async () => {
    let streamed = "";
    const r = await backend.generate({ ...req({ maxTokens: 15 }), onText: (d) => (streamed += d) });
    expect(streamed).toBe(r.text);
  });

  it("updateWeights swaps the policy", async () => {
    const before = await backend.generate(req());
    backend.updateWeights(b);
    const after = await backend.generate(req());
    expect(after.tokens).not.toEqual(before.tokens);
    // Same as sampling from model b directly.
    const direct = await createBuiltinBackend({ model: b, tokenizer: backend.tokenizer });
    expect((await direct.generate(req())).tokens).toEqual(after.tokens);
    await direct.close();
    backend.updateWeights(a.getWeights());
    expect((await backend.generate(req())).tokens).toEqual(before.tokens);
  });

  it("rejects bad requests without breaking the batch", async () => {
    const bad = backend.generate({ ...req(), tokens: [100000] });
    const good = backend.generate(req());
    await expect(bad).rejects.toThrow(/token id/);
    expect((await good).tokens.length).toBeGreaterThan(0);
    await expect(backend.generate({ ...req(), tokens: Array(200).fill(5) })).rejects.toThrow(/exceeds the context/);
  });

  it("closes", async () => {
    await backend.close();
    await expect(backend.generate(req())).rejects.toThrow(/closed/);
    a.dispose();
    b.dispose();
  });
});
