/**
 * The README's library example, run through the public entry point (`src/index.ts` = `import … from "searchrl"`):
 * a real BM25 index, and a GGUF file this test writes (a scripted llama model: a real llama.cpp forward pass whose
 * greedy continuation searches for "capital France" and answers "Paris") loaded through `createBackend`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildIndex, createBackend, getProtocol, openRetriever, runRollouts, scoreBatch } from "../src/index.js";
import { R1_SCRIPT, writeScriptedGguf } from "../src/llm/testing/scripted-gguf.js";
import { AGENT_CORPUS } from "./agent-fixtures.js";

const dir = mkdtempSync(path.join(tmpdir(), "searchrl-readme-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("README library example", () => {
  it("searches, reads the documents and answers", async () => {
    await buildIndex({ corpus: AGENT_CORPUS, out: path.join(dir, "idx"), bm25: true, progress: false });
    writeScriptedGguf(path.join(dir, "model.gguf"), R1_SCRIPT);

    const protocol = getProtocol("r1-searcher");
    const retriever = await openRetriever(path.join(dir, "idx"));
    const backend = await createBackend(path.join(dir, "model.gguf"));
    try {
      const [t] = await runRollouts({
        protocol,
        backend,
        retriever,
        mode: "eval",
        items: [{ id: "q1", question: "What is the capital of France?" }],
      });
      expect(t.finish).toBe("answer");
      expect(t.queries.map((q) => q.trim())).toEqual(["capital France"]); // eval mode does not strip (upstream)
      expect(t.retrievals).toBe(1);
      expect(t.answer?.trim()).toBe("Paris");
      expect(t.documents[0][0].title).toBe("Paris");
      // token ids, mask and log-probs line up, and the inserted documents are masked out
      expect(t.mask.length).toBe(t.responseTokens.length);
      expect(t.logprobs.length).toBe(t.responseTokens.length);
      expect(t.mask.some((m) => m === 0)).toBe(true);
      const [r] = scoreBatch("r1-searcher-llama-stage2", [
        { response: t.responseText, question: t.question, gold: "Paris", retrievals: t.retrievals },
      ]);
      expect(r.correct).toBe(true);
    } finally {
      await backend.close();
      await retriever.close();
    }
  });
});
