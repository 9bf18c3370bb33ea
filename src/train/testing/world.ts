/**
 * Test fixture for end-to-end training tests: a tiny made-up world (facts nobody can know without searching), a real
 * BM25 index of its passages (src/retrieval), a byte-level BPE tokenizer with the protocol's tags as single tokens,
 * and a small built-in transformer pre-trained with the SFT trainer on demonstrations that sometimes search (and copy
 * the answer from the retrieved passage) and sometimes answer without searching (wrongly). RL should learn to search.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { saveCheckpoint } from "../../model/checkpoint.js";
import { trainBpe, type BpeTokenizer } from "../../model/tokenizer/bpe.js";
import { Transformer } from "../../model/transformer.js";
import { getProtocol } from "../../protocol/index.js";
import type { ResponseProtocol } from "../../protocol/types.js";
import { buildIndex } from "../../retrieval/build.js";
import { openRetriever } from "../../retrieval/factory.js";
import type { Retriever } from "../../retrieval/types.js";
import type { Passage } from "../../util/types.js";
import { BuiltinPolicy } from "../builtin-policy.js";
import { resolveSftConfig } from "../config.js";
import { buildSftExamples, type QuestionRow } from "../data.js";
import { runSftLoop } from "../sft.js";

const ENTITIES = ["zorb", "quilm", "mepto", "dravik", "fenlo", "garth"];
const COLORS = ["blue", "red", "green", "gold", "gray", "pink"];

export const TOY_TEMPLATE = "Q: {question}\n<think>";
const THINK_CLOSE = "</think>\n";

export interface ToyWorld {
  dir: string;
  protocol: ResponseProtocol;
  tokenizer: BpeTokenizer;
  retriever: Retriever;
  indexDir: string;
  passages: Passage[];
  questions: QuestionRow[];
  questionsFile: string;
  /** Pre-trained model folder (config.json + model.safetensors + tokenizer.json). */
  baseCheckpoint: string;
  /** The SFT demonstrations (prompt/response rows) used to pre-train it. */
  demos: Array<{ prompt: string; response: string }>;
  /** Losses of the pre-training run (first, last). */
  pretrainLoss: [number, number];
}

export const TOY_MODEL = {
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  maxPositions: 160,
} as const;

function tagStrings(protocol: ResponseProtocol): string[] {
  const p = protocol as unknown as Record<string, unknown>;
  const tags = [
    protocol.queryOpen,
    protocol.queryClose,
    protocol.answerOpen,
    protocol.answerClose,
    "<think>",
    "</think>",
  ];
  for (const k of ["documentsOpen", "documentsClose", "internalOpen", "internalClose"])
    if (typeof p[k] === "string") tags.push(p[k] as string);
  for (const t of ["<|begin_of_documents|>", "<|end_of_documents|>"]) if (protocol.name === "r1-searcher") tags.push(t);
  return [...new Set(tags)];
}

/**
 * Build the world in `dir`. `searchShare` of the demonstrations search (the rest answer directly with a wrong color);
 * `internalDemos` adds R1-Searcher++-style demos that recall the fact in an internal block (plus protocol only).
 */
export async function buildToyWorld(
  dir: string,
  opts: {
    protocol?: string;
    pretrainSteps?: number;
    seed?: number;
    internalDemos?: boolean;
    directDemos?: number;
  } = {},
): Promise<ToyWorld> {
  await fsp.mkdir(dir, { recursive: true });
  const protocol = getProtocol(opts.protocol ?? "r1-searcher");
  const passages: Passage[] = ENTITIES.map((e, i) => ({
    id: String(i + 1),
    title: e[0].toUpperCase() + e.slice(1),
    text: `The ${e} is ${COLORS[i]}.`,
  }));
  const questions: QuestionRow[] = ENTITIES.map((e, i) => ({
    id: String(i + 1),
    question: `What color is the ${e}?`,
    gold: COLORS[i],
    raw: {},
  }));
  const questionsFile = path.join(dir, "questions.jsonl");
  await fsp.writeFile(
    questionsFile,
    questions.map((q) => JSON.stringify({ idx: Number(q.id), question: q.question, answer: q.gold })).join("\n") + "\n",
  );
  const indexDir = path.join(dir, "index");
  await buildIndex({ corpus: passages, out: indexDir, progress: false });
  const retriever = await openRetriever(indexDir);

  const demos: Array<{ prompt: string; response: string }> = [];
  const directDemos = opts.directDemos ?? 1;
  for (let i = 0; i < ENTITIES.length; i++) {
    const q = questions[i];
    const prompt = protocol.buildPrompt(q.question, { template: TOY_TEMPLATE });
    const query = `${ENTITIES[i]} color`;
    const [docs] = await retriever.search([query], 1);
    demos.push({
      prompt,
      response: `${protocol.queryOpen}${query}${protocol.renderDocumentBlock(docs)}${THINK_CLOSE}${protocol.answerOpen}${COLORS[i]}${protocol.answerClose}`,
    });
    for (let d = 0; d < directDemos; d++) {
      const wrong = COLORS[(i + 1 + d) % COLORS.length];
      demos.push({ prompt, response: `${THINK_CLOSE}${protocol.answerOpen}${wrong}${protocol.answerClose}` });
    }
    if (opts.internalDemos && i < ENTITIES.length / 2) {
      // the model "knows" the first half of the world: it recalls those facts instead of searching
      const p = protocol as unknown as { internalOpen: string; internalClose: string };
      demos.push({
        prompt,
        response: `${p.internalOpen} The ${ENTITIES[i]} is ${COLORS[i]}. ${p.internalClose}${THINK_CLOSE}${protocol.answerOpen}${COLORS[i]}${protocol.answerClose}`,
      });
    }
  }

  const tokenizer = trainBpe(
    [...demos.map((d) => d.prompt + d.response), ...passages.map((p) => `${p.title} ${p.text}`)],
    { vocabSize: 420, specialTokens: ["<|endoftext|>"], addedTokens: tagStrings(protocol), bos: null },
  );
  const model = await Transformer.create(
    { vocabSize: tokenizer.vocabSize, ...TOY_MODEL, eosTokenIds: [...tokenizer.eosTokenIds] },
    { seed: opts.seed ?? 1 },
  );
  const policy = new BuiltinPolicy(model, tokenizer, { maxGradNorm: 1.0 });
  const examples = demos.flatMap((d, i) =>
    buildSftExamples(d, `demo ${i}`, {
      tokenizer,
      protocol,
      maskEnvironment: true,
      maxSeqLen: TOY_MODEL.maxPositions,
      addBos: false,
      addEos: true,
      format: "prompt-response",
      textKey: "text",
      promptKey: "prompt",
      responseKey: "response",
    }),
  );
  const cfg = resolveSftConfig({
    stage: "sft",
    runDir: path.join(dir, "pretrain"),
    seed: opts.seed ?? 1,
    data: { path: "(in memory)" },
    epochs: opts.pretrainSteps ?? 120,
    batchSize: examples.length,
    microBatchSize: examples.length,
    optim: { lr: 3e-3, schedule: "constant", maxGradNorm: 1.0 },
    run: { saveSteps: 0, maxCheckpoints: 1 },
  });
  const res = await runSftLoop(cfg, { policy, examples }, { quiet: true });
  const baseCheckpoint = path.join(dir, "base");
  await saveCheckpoint(model, baseCheckpoint, { tokenizerJson: tokenizer.toJson() });
  model.dispose();
  return {
    dir,
    protocol,
    tokenizer,
    retriever,
    indexDir,
    passages,
    questions,
    questionsFile,
    baseCheckpoint,
    demos,
    pretrainLoss: [res.metrics[0].loss!, res.metrics[res.metrics.length - 1].loss!],
  };
}
