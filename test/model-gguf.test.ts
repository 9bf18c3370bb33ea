/**
 * GGUF export loaded by node-llama-cpp (llama.cpp, CPU, threads 1): logits equal the built-in model's within 1e-3
 * relative on the same tokens, and llama.cpp's tokenizer (gpt2 model type with our merges) gives our token ids.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { getLlama } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { Transformer, exportGgufFromCheckpoint, saveCheckpoint, trainBpe } from "../src/model/index.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "searchrl-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = readFileSync(path.resolve(__dirname, "../data/r1-searcher/eval_set/2wiki_500.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => (JSON.parse(l) as { question: string }).question + "\n");

describe("GGUF export", () => {
  it("node-llama-cpp loads it; logits and tokenization agree with the built-in model", async () => {
    const tok = trainBpe(corpus, {
      vocabSize: 600,
      specialTokens: ["<|endoftext|>"],
      addedTokens: ["<|begin_of_query|>", "<|end_of_query|>"],
    });
    const model = await Transformer.create(
      {
        architecture: "qwen2",
        vocabSize: 608, // larger than the tokenizer: padded tokens must load too
        hiddenSize: 64,
        intermediateSize: 112,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
        maxPositions: 256,
        attentionBias: true,
        tieEmbeddings: true,
        eosTokenIds: [...tok.eosTokenIds],
      },
      { seed: 11, initStd: 0.1 },
    );
    const W = model.weights();
    for (const e of model.params)
      if (e.name.endsWith("bqkv")) for (let i = 0; i < e.size; i++) W[e.offset + i] = 0.2 * Math.sin(i);
    model.markWeightsChanged();
    const dir = path.join(tmp, "ckpt");
    await saveCheckpoint(model, dir, { tokenizerJson: tok.toJson() });
    const file = path.join(tmp, "m.gguf");
    await exportGgufFromCheckpoint(dir, file);

    const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
    const lm = await llama.loadModel({ modelPath: file });
    const ctx = await lm.createContext({ threads: 1, contextSize: 256 });
    try {
      const text = "Who directed the film <|begin_of_query|>director of Alien<|end_of_query|> — año 1979?";
      const ids = tok.encode(text);
      expect(Array.from(lm.tokenize(text, true))).toEqual(ids);
      expect(lm.detokenize(ids as never, true)).toBe(text);
      const seq = ctx.getSequence();
      const res = await seq.controlledEvaluate(ids.map((t) => [t, { generateNext: { logits: true } }] as never));
      const ours = model.logitsAll(ids);
      let maxDiff = 0;
      let maxAbs = 0;
      let n = 0;
      for (let i = 0; i < ids.length; i++) {
        const lg = res[i]?.next?.logits;
        expect(lg).toBeDefined();
        for (const [t, v] of lg!) {
          maxDiff = Math.max(maxDiff, Math.abs(v - ours[i][t as number]));
          maxAbs = Math.max(maxAbs, Math.abs(ours[i][t as number]));
          n++;
        }
      }
      expect(n).toBe(ids.length * 608);
      expect(maxAbs).toBeGreaterThan(1);
      expect(maxDiff / maxAbs).toBeLessThan(1e-3);
    } finally {
      await ctx.dispose();
      await lm.dispose();
      await llama.dispose();
      model.dispose();
    }
  });
});
