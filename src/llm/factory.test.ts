/**
 * `createBackend` picks the backend from the spec. A tiny built-in model (random weights, a BPE tokenizer trained
 * here) is saved as a checkpoint and exported to GGUF; the built-in backend (checkpoint directory) and node-llama-cpp
 * (the .gguf) must then agree on greedy tokens and log-probs for the same prompt.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGgufFromCheckpoint, saveCheckpoint, Transformer, trainBpe } from "../model/index.js";
import { backendKind, createBackend } from "./factory.js";
import type { LLMBackend } from "./types.js";

let dir: string;
let ckpt: string;
let gguf: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-factory-"));
  const texts = Array.from(
    { length: 200 },
    (_, i) => `the capital of country ${i % 17} is city ${i % 13}. <|begin_of_query|> capital ${i} <|end_of_query|>`,
  );
  const tok = trainBpe(texts, {
    vocabSize: 400,
    specialTokens: ["<|endoftext|>"],
    addedTokens: ["<|begin_of_query|>", "<|end_of_query|>"],
  });
  const model = await Transformer.create(
    {
      vocabSize: tok.vocabSize,
      hiddenSize: 64,
      intermediateSize: 128,
      numLayers: 2,
      numHeads: 4,
      maxPositions: 256,
      eosTokenIds: [...tok.eosTokenIds],
    },
    { seed: 3, initStd: 0.5 },
  );
  ckpt = path.join(dir, "ckpt");
  await saveCheckpoint(model, ckpt, { tokenizerJson: tok.toJson() });
  model.dispose();
  gguf = path.join(dir, "model.gguf");
  await exportGgufFromCheckpoint(ckpt, gguf);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("createBackend", () => {
  it("tells the backends apart and explains a bad spec", () => {
    expect(backendKind("http://127.0.0.1:8000/v1")).toBe("openai");
    expect(backendKind("x/model.GGUF")).toBe("llama.cpp");
    expect(backendKind(ckpt)).toBe("builtin");
    expect(() => backendKind(dir)).toThrow(/http\(s\) URL.*\.gguf file.*config\.json/);
    return expect(createBackend("http://127.0.0.1:9")).rejects.toThrow(/--model NAME/);
  });

  it("the built-in checkpoint and its GGUF export generate the same greedy tokens with the same log-probs", async () => {
    const builtin: LLMBackend = await createBackend(ckpt);
    const llama: LLMBackend = await createBackend(gguf, {
      tokenizer: ckpt,
      llamaCpp: { sequences: 1, contextSize: 256 },
    });
    try {
      expect(builtin.name).toMatch(/^builtin:/);
      expect(llama.name).toMatch(/^llama\.cpp:/);
      const text = "the capital of country 3 is";
      const tokens = builtin.tokenizer.encode(text);
      expect(llama.tokenizer.encode(text)).toEqual(tokens);
      const params = { temperature: 0, topP: 1, maxTokens: 8, stop: [] as string[] };
      const a = await builtin.generate({ tokens, text, params });
      const b = await llama.generate({ tokens, text, params });
      expect(b.tokens).toEqual(a.tokens);
      a.logprobs!.forEach((lp, i) => expect(b.logprobs![i]).toBeCloseTo(lp, 2));
      expect(b.text).toBe(a.text);
    } finally {
      await builtin.close();
      await llama.close();
    }
  });
});
