/**
 * End to end: the rollout engine driving node-llama-cpp on a GGUF file written by the test (a bigram llama model
 * scripted to search once and then answer), with the real R1-Searcher protocol.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlamaCppBackend, type LlamaCppBackend } from "../src/llm/llamacpp.js";
import { R1_SCRIPT, writeScriptedGguf, type ScriptedGguf } from "../src/llm/testing/scripted-gguf.js";
import { getProtocol } from "../src/protocol/index.js";
import { runRollouts } from "../src/rollout/engine.js";
import { KeywordRetriever } from "../src/rollout/testing/keyword-retriever.js";

let dir: string;
let g: ScriptedGguf;
let backend: LlamaCppBackend;
const retriever = new KeywordRetriever([
  { id: "1", title: "Paris", text: "Paris is the capital and largest city of France." },
  { id: "2", title: "Lyon", text: "Lyon is a city in France." },
]);
const protocol = getProtocol("r1-searcher");

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-rollout-gguf-"));
  const file = path.join(dir, "r1.gguf");
  g = writeScriptedGguf(file, R1_SCRIPT);
  backend = await createLlamaCppBackend({ modelPath: file, sequences: 4, contextSize: 1024 });
});
afterAll(async () => {
  await backend?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("rollout through node-llama-cpp", () => {
  it("evaluation: greedy search → documents → answer, in the upstream format", async () => {
    const items = ["What is the capital of France?", "Which city is the French capital?"].map((question, i) => ({
      id: `q${i}`,
      question,
      gold: "Paris",
    }));
    const ts = await runRollouts({
      protocol,
      backend,
      retriever,
      mode: "eval",
      items,
      promptOptions: { variant: "eval-v0" },
    });
    for (const t of ts) {
      expect(t.stopReasonFinal).toBe("finished");
      expect(t.answer).toBe(" Paris");
      expect(t.retrievals).toBe(1);
      expect(t.queries).toEqual([" capital France"]);
      expect(t.documents[0][0].title).toBe("Paris");
      expect(t.promptTokens[0]).toBe(backend.tokenizer.bosTokenId);
      expect(t.responseText).toBe(
        " Let me search <|begin_of_query|> capital France<|end_of_query|>" +
          protocol.renderObservation(t.documents[0]) +
          "<answer> Paris</answer>",
      );
      expect(t.mask.filter((m) => m === 1).length).toBe(12); // 8 + 4 sampled tokens ("</answer>" is two tokens)
      expect(t.turns).toBe(2);
    }
  });

  it("training: sampled trajectories keep exact ids, raw log-probs and the environment mask", async () => {
    const items = [{ id: "q", question: "What is the capital of France?", gold: "Paris" }];
    const ts = await runRollouts({
      protocol,
      backend,
      retriever,
      mode: "train",
      items,
      samplesPerItem: 4,
      sampling: { seed: 11 },
    });
    expect(ts.map((t) => t.id)).toEqual(["q#0", "q#1", "q#2", "q#3"]);
    for (const t of ts) {
      expect(["answer", "eos", "length", "empty_query", "max_searches"]).toContain(t.finish);
      // Policy tokens carry the model's raw log-prob of that token given the previous token (bigram model).
      const all = [...t.promptTokens, ...t.responseTokens];
      t.responseTokens.forEach((tokId, i) => {
        const prev = all[t.promptTokens.length + i - 1];
        if (t.mask[i] === 1) expect(t.logprobs[i]).toBeCloseTo(g.logprob(prev, tokId), 3);
        else expect(Number.isNaN(t.logprobs[i])).toBe(true);
      });
      if (t.retrievals > 0) {
        const obs = backend.tokenizer.encode(protocol.renderObservation(t.documents[0]));
        const start = t.mask.indexOf(0);
        expect(t.responseTokens.slice(start, start + obs.length)).toEqual(obs);
      }
    }
    // Training ends on EOS after the answer (no "</answer>" stop string).
    const done = ts.filter((t) => t.finish === "answer");
    expect(done.length).toBeGreaterThan(0);
    for (const t of done) expect(t.responseTokens[t.responseTokens.length - 1]).toBe(backend.tokenizer.eosTokenIds[0]);
  });
});
