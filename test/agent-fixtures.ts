/**
 * Real components for the agent-server tests: node-llama-cpp running GGUF files the tests write (scripted llama
 * models: a real llama.cpp forward pass whose greedy continuation follows a fixed chain of pieces), and a BM25 index
 * built with the retrieval library over a small corpus.
 *
 * - the "answer" model writes ` Let me search <|begin_of_query|> capital France<|end_of_query|>`, reads the inserted
 *   documents and answers `<answer> Paris</answer>` (R1-Searcher format);
 * - the "loop" model writes ` la la la …` without end: a request to it runs until it is aborted or its token budget
 *   ends, which is what the queue, timeout and disconnect tests need.
 */
import path from "node:path";
import { createLlamaCppBackend } from "../src/llm/llamacpp.js";
import { R1_SCRIPT, writeScriptedGguf } from "../src/llm/testing/scripted-gguf.js";
import { getProtocol } from "../src/protocol/index.js";
import { buildIndex, openRetriever } from "../src/retrieval/index.js";
import type { Retriever } from "../src/retrieval/types.js";
import type { LLMBackend } from "../src/llm/types.js";
import { createRolloutAgent, type RolloutAgent } from "../src/server/agent-rollout.js";
import type { Passage } from "../src/util/types.js";

export const AGENT_CORPUS: Passage[] = [
  { id: "1", title: "Paris", text: "Paris is the capital and largest city of France." },
  { id: "2", title: "Lyon", text: "Lyon is the third-largest city of France, on the Rhone." },
  { id: "3", title: "Berlin", text: "Berlin is the capital of Germany." },
  { id: "4", title: "Madrid", text: "Madrid is the capital of Spain." },
  { id: "5", title: "Citibank", text: "Citibank was founded in 1812 as the City Bank of New York." },
  { id: "6", title: "James Madison", text: "James Madison was president of the United States from 1809 to 1817." },
  { id: "7", title: "Danube", text: "The Danube flows through Budapest, the capital of Hungary." },
  { id: "8", title: "Louvre", text: "The Louvre is an art museum in Paris." },
];

/** Build the BM25 index of the test corpus into `dir` and open it. */
export async function openTestRetriever(dir: string): Promise<Retriever> {
  await buildIndex({ corpus: AGENT_CORPUS, out: dir, bm25: true, progress: false });
  return openRetriever(dir);
}

export const LOOP_SCRIPT = {
  userDefined: R1_SCRIPT.userDefined,
  chains: [["<think>", " la", " la"]],
  contextLength: 32768,
};

/** The scripted answering agent (R1-Searcher protocol, evaluation mode) over a fresh GGUF and a fresh index. */
export async function answeringAgent(
  dir: string,
  retriever: Retriever,
): Promise<{ agent: RolloutAgent; backend: LLMBackend }> {
  const file = path.join(dir, "answer.gguf");
  writeScriptedGguf(file, R1_SCRIPT);
  const backend = await createLlamaCppBackend({ modelPath: file, sequences: 2, contextSize: 2048 });
  return {
    agent: createRolloutAgent({
      backend,
      retriever,
      protocol: getProtocol("r1-searcher"),
      modelId: "scripted-r1",
      closeComponents: false,
    }),
    backend,
  };
}

/** The never-ending agent: generates until aborted or until `segmentMaxTokens` (default 30,000) tokens. */
export async function loopingAgent(
  dir: string,
  retriever: Retriever,
  segmentMaxTokens = 30_000,
): Promise<{ agent: RolloutAgent; backend: LLMBackend }> {
  const file = path.join(dir, "loop.gguf");
  writeScriptedGguf(file, LOOP_SCRIPT);
  const backend = await createLlamaCppBackend({ modelPath: file, sequences: 1, contextSize: 32768 });
  return {
    agent: createRolloutAgent({
      backend,
      retriever,
      protocol: getProtocol("r1-searcher"),
      modelId: "scripted-loop",
      limits: { segmentMaxTokens },
      closeComponents: false,
    }),
    backend,
  };
}
