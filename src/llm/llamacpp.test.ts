/**
 * The node-llama-cpp backend on a GGUF file written by the test (a bigram llama model with known logits).
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlamaCppBackend, type LlamaCppBackend } from "./llamacpp.js";
import { R1_SCRIPT, writeScriptedGguf, type ScriptedGguf } from "./testing/scripted-gguf.js";
import type { SamplingParams } from "./types.js";

let dir: string;
let g: ScriptedGguf;
let be: LlamaCppBackend;
const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 0,
  topP: 1,
  maxTokens: 40,
  stop: ["<|end_of_query|>", "</answer>"],
  ...over,
});

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-llamacpp-"));
  const file = path.join(dir, "bigram.gguf");
  g = writeScriptedGguf(file, R1_SCRIPT);
  be = await createLlamaCppBackend({ modelPath: file, sequences: 4, contextSize: 512 });
});
afterAll(async () => {
  await be?.close();
  rmSync(dir, { recursive: true, force: true });
});

function promptTokens(text: string): number[] {
  return [be.tokenizer.bosTokenId!, ...be.tokenizer.encode(text)];
}

describe("LlamaCppBackend", () => {
  it("greedy decoding follows the model, stops on a stop string, reports raw log-probs", async () => {
    const prompt = "Who? <think>";
    const tokens = promptTokens(prompt);
    const res = await be.generate({ tokens, text: prompt, params: params() });
    expect(res.finishReason).toBe("stop");
    expect(res.stopString).toBe("<|end_of_query|>");
    expect(res.text).toBe(" Let me search <|begin_of_query|> capital France");
    expect(res.tokens[res.tokens.length - 1]).toBe(g.id("<|end_of_query|>"));
    expect(res.tokenIdsExact).toBe(true);
    let prev = tokens[tokens.length - 1];
    res.tokens.forEach((t, i) => {
      expect(res.logprobs![i]).toBeCloseTo(g.logprob(prev, t), 3);
      prev = t;
    });
  });

  it("matches a stop string spelled by two tokens and keeps both tokens; continues a sequence after inserted text", async () => {
    const prompt = "Who? <think>";
    const first = await be.generate({ tokens: promptTokens(prompt), text: prompt, params: params() });
    const obs = "\n\n<|begin_of_documents|>\n(1)Paris is the capital of France\n<|end_of_documents|>\n\n";
    const soFar = [...promptTokens(prompt), ...first.tokens, ...be.tokenizer.encode(obs)];
    const text = prompt + first.text + "<|end_of_query|>" + obs;
    const res = await be.generate({ tokens: soFar, text, params: params() });
    expect(res.text).toBe("<answer> Paris");
    expect(res.stopString).toBe("</answer>");
    expect(res.tokens.slice(-2)).toEqual([g.id("</ans"), g.id("wer>")]);
    // Without the stop string the model ends with EOS, and the EOS token is part of the result.
    const eos = await be.generate({ tokens: soFar, text, params: params({ stop: [] }) });
    expect(eos.finishReason).toBe("eos");
    expect(eos.text).toBe("<answer> Paris</answer>");
    expect(eos.tokens[eos.tokens.length - 1]).toBe(be.tokenizer.eosTokenIds[0]);
  });

  it("stops at max tokens and streams text deltas that add up to the text", async () => {
    const prompt = "Who? <think>";
    const deltas: string[] = [];
    const res = await be.generate({
      tokens: promptTokens(prompt),
      text: prompt,
      params: params({ maxTokens: 3 }),
      onText: (d) => deltas.push(d),
    });
    expect(res.finishReason).toBe("length");
    expect(res.tokens).toHaveLength(3);
    expect(res.text).toBe(" Let me search");
    expect(deltas.join("")).toBe(res.text);
  });

  it("samples reproducibly with a seed, with raw (pre-temperature/top-p) log-probs", async () => {
    const prompt = "x <think>";
    const p = params({ temperature: 2.5, topP: 0.9, maxTokens: 12, stop: [], seed: 7 });
    const a = await be.generate({ tokens: promptTokens(prompt), text: prompt, params: p });
    const b = await be.generate({ tokens: promptTokens(prompt), text: prompt, params: p });
    expect(a.tokens).toEqual(b.tokens);
    let prev = promptTokens(prompt).at(-1)!;
    a.tokens.forEach((t, i) => {
      expect(a.logprobs![i]).toBeCloseTo(g.logprob(prev, t), 3);
      prev = t;
    });
    // At temperature 2.5 over a 12-logit margin the chain is still likely, but other tokens do get sampled sometimes.
    const many = await Promise.all(
      Array.from({ length: 8 }, (_, s) =>
        be.generate({ tokens: promptTokens(prompt), text: prompt, params: { ...p, temperature: 8, seed: 100 + s } }),
      ),
    );
    const distinct = new Set(many.map((r) => r.tokens.join(",")));
    expect(distinct.size).toBeGreaterThan(1);
  });

  it("runs parallel requests on separate sequences", async () => {
    const prompts = ["A <think>", "B <think>", "C <think>", "D <think>", "E <think>", "F <think>"];
    const res = await Promise.all(
      prompts.map((p) => be.generate({ tokens: promptTokens(p), text: p, params: params() })),
    );
    for (const r of res) expect(r.text).toBe(" Let me search <|begin_of_query|> capital France");
    expect(be.maxConcurrency).toBe(4);
  });

  it("returns finish length without generating when the context is full", async () => {
    const long = Array.from({ length: be.contextSize }, () => g.id("\n"));
    const res = await be.generate({ tokens: long, text: "\n".repeat(long.length), params: params() });
    expect(res.finishReason).toBe("length");
    expect(res.tokens).toEqual([]);
  });
});
