/**
 * World files: the corpus (KILT TSV and FlashRAG JSONL), question splits (upstream JSONL rows + metadata), facts,
 * entities, pre-training text, protocol-prior text and a `world.json` summary. Every file is written atomically.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { passageContents } from "../../corpus/readers.js";
import { getProtocol } from "../../protocol/index.js";
import type { ResponseProtocol } from "../../protocol/types.js";
import { atomicWriteFile, atomicWriteJson, readJson } from "../../util/fsutil.js";
import { readJsonlAll } from "../../util/jsonl.js";
import { Rng, hashSeed } from "../../util/rng.js";
import type { Passage } from "../../util/types.js";
import { approxTokens, checkWorld, worldStats, type WorldStats } from "./check.js";
import { generateWorld } from "./generate.js";
import { protocolPriorDocs, worldPretrainDocs, type PretrainDoc, type PretrainOptions } from "./pretrain.js";
import { renderIdealTrajectory, worldPassageToPassage } from "./trajectory.js";
import {
  QUESTION_KINDS,
  RELATIONS,
  WORLD_SPLITS,
  WorldConfigSchema,
  type World,
  type WorldConfig,
  type WorldPassage,
  type WorldQuestion,
  type WorldSplit,
} from "./types.js";

export const WORLD_FORMAT_VERSION = 1;

/** File names inside a world directory. */
export const WORLD_FILES = {
  summary: "world.json",
  corpusTsv: "corpus.tsv",
  corpusJsonl: "corpus.jsonl",
  facts: "facts.jsonl",
  entities: "entities.jsonl",
  pretrain: "pretrain.jsonl",
  split: (s: WorldSplit) => `${s}.jsonl`,
  prior: (protocol: string) => `prior.${protocol}.jsonl`,
} as const;

/** KILT-style corpus line `{id}\t{title}   {text}` (what the upstream `/queries` server returns). */
export function worldCorpusTsvLine(p: Pick<WorldPassage, "id" | "title" | "text">): string {
  return `${p.id}\t${p.title}   ${p.text}`;
}

/** FlashRAG corpus row `{"id", "contents": "\"Title\"\ntext"}`. */
export function worldCorpusJsonlRow(p: Pick<WorldPassage, "id" | "title" | "text">): { id: string; contents: string } {
  return { id: p.id, contents: passageContents(p) };
}

/** The world's corpus as shared passages (with the raw KILT line). */
export function worldCorpusPassages(world: Pick<World, "passages">): Passage[] {
  return world.passages.map((p) => ({ ...worldPassageToPassage(p), raw: worldCorpusTsvLine(p) }));
}

function jsonl(rows: Iterable<unknown>): string {
  let s = "";
  for (const r of rows) s += JSON.stringify(r) + "\n";
  return s;
}

export interface WriteWorldOptions {
  /** Protocols to write protocol-prior files for (default r1-searcher and r1-searcher-plus; [] for none). */
  priorProtocols?: string[];
  /** Worked examples per prior file (default: one per eligible fact). */
  priorCount?: number;
  /** Passages per query in prior examples and length estimates (default 3). */
  k?: number;
  /** Protocol whose think/answer tags the pre-training Q/A texts use (default r1-searcher). */
  pretrainProtocol?: string;
  pretrain?: PretrainOptions;
}

export interface WorldSummary {
  format: "searchrl-world";
  version: number;
  config: WorldConfig;
  stats: WorldStats;
  /** Approximate token counts (see `approxTokens`): prompts, ideal responses with k passages per query. */
  lengths: Record<string, { promptTokens: number; idealResponseTokens: { mean: number; max: number }; k: number }>;
  pretrain: Record<string, { docs: number; meanTokens: number }>;
  files: Record<string, string>;
}

function docStats(docs: PretrainDoc[]): { docs: number; meanTokens: number } {
  const t = docs.map((d) => approxTokens(d.text));
  return { docs: docs.length, meanTokens: t.length ? Math.round((10 * t.reduce((a, b) => a + b, 0)) / t.length) / 10 : 0 };
}

/** Length estimates of ideal trajectories in a protocol, with the fact's page plus k-1 other pages per query. */
export function idealLengths(world: World, protocol: ResponseProtocol, k = 3): { promptTokens: number; mean: number; max: number } {
  const rng = new Rng(hashSeed("searchrl-lengths", world.config.seed));
  const byId = new Map(world.passages.map((p) => [p.id, p]));
  const docs = (_: string, step: { passages: string[] }): Passage[] => {
    const ids = step.passages.slice(0, k);
    while (ids.length < Math.min(k, world.passages.length)) {
      const id = rng.pick(world.passages).id;
      if (!ids.includes(id)) ids.push(id);
    }
    return ids.map((id) => worldPassageToPassage(byId.get(id)!));
  };
  const test = world.questions.filter((q) => q.metadata.split === "test");
  const lens = test.map((q) => approxTokens(renderIdealTrajectory(q, protocol, { documents: docs }).response));
  const prompts = test.map((q) => approxTokens(protocol.buildPrompt(q.question)));
  const mean = (xs: number[]) => (xs.length ? Math.round((10 * xs.reduce((a, b) => a + b, 0)) / xs.length) / 10 : 0);
  return { promptTokens: mean(prompts), mean: mean(lens), max: Math.max(0, ...lens) };
}

/** Write a world's files into `dir` (created if needed; other files there are left alone). Returns the summary. */
export async function writeWorldDir(world: World, dir: string, opts: WriteWorldOptions = {}): Promise<WorldSummary> {
  const problems = checkWorld(world);
  if (problems.length) throw new Error(`the generated world is inconsistent:\n  ${problems.slice(0, 10).join("\n  ")}`);
  const k = opts.k ?? 3;
  const files: Record<string, string> = {};
  const put = async (key: string, name: string, data: string) => {
    await atomicWriteFile(path.join(dir, name), data);
    files[key] = name;
  };
  await put("corpusTsv", WORLD_FILES.corpusTsv, world.passages.map((p) => worldCorpusTsvLine(p) + "\n").join(""));
  await put("corpusJsonl", WORLD_FILES.corpusJsonl, jsonl(world.passages.map(worldCorpusJsonlRow)));
  await put("facts", WORLD_FILES.facts, jsonl(world.facts));
  await put("entities", WORLD_FILES.entities, jsonl(world.entities));
  for (const split of WORLD_SPLITS) {
    await put(split, WORLD_FILES.split(split), jsonl(world.questions.filter((q) => q.metadata.split === split)));
  }
  const pretrainProtocol = getProtocol(opts.pretrainProtocol ?? "r1-searcher");
  const pre = worldPretrainDocs(world, pretrainProtocol, opts.pretrain);
  await put("pretrain", WORLD_FILES.pretrain, jsonl(pre));
  const pretrain: WorldSummary["pretrain"] = {};
  for (const src of ["facts", "qa", "chains"] as const) pretrain[src] = docStats(pre.filter((d) => d.source === src));
  const lengths: WorldSummary["lengths"] = {};
  for (const name of opts.priorProtocols ?? ["r1-searcher", "r1-searcher-plus"]) {
    const protocol = getProtocol(name);
    const prior = protocolPriorDocs(world, protocol, { count: opts.priorCount, k });
    await put(`prior:${name}`, WORLD_FILES.prior(name), jsonl(prior));
    pretrain[`prior:${name}`] = docStats(prior);
  }
  for (const name of ["r1-searcher", "r1-searcher-plus"]) {
    const l = idealLengths(world, getProtocol(name), k);
    lengths[name] = { promptTokens: l.promptTokens, idealResponseTokens: { mean: l.mean, max: l.max }, k };
  }
  const summary: WorldSummary = {
    format: "searchrl-world",
    version: WORLD_FORMAT_VERSION,
    config: world.config,
    stats: worldStats(world),
    lengths,
    pretrain,
    files: { ...files, summary: WORLD_FILES.summary },
  };
  await atomicWriteJson(path.join(dir, WORLD_FILES.summary), summary);
  return summary;
}

const SummarySchema = z.object({ format: z.literal("searchrl-world"), version: z.number(), config: WorldConfigSchema });

/**
 * Load a world directory: the world is regenerated from the config in `world.json` (generation is deterministic)
 * and checked against the corpus file, so edited files are reported instead of silently diverging.
 */
export async function loadWorldDir(dir: string): Promise<World> {
  const file = path.join(dir, WORLD_FILES.summary);
  if (!existsSync(file)) throw new Error(`${file} not found: not a world directory (create one with \`searchrl data world\`)`);
  const parsed = SummarySchema.safeParse(await readJson(file));
  if (!parsed.success) throw new Error(`${file}: not a searchrl world summary (${parsed.error.issues[0]?.message})`);
  if (parsed.data.version !== WORLD_FORMAT_VERSION) throw new Error(`${file}: world format ${parsed.data.version}, expected ${WORLD_FORMAT_VERSION}`);
  const world = generateWorld(parsed.data.config);
  const corpus = path.join(dir, WORLD_FILES.corpusTsv);
  if (existsSync(corpus)) {
    const expected = world.passages.map((p) => worldCorpusTsvLine(p) + "\n").join("");
    if ((await readFile(corpus, "utf8")) !== expected) {
      throw new Error(`${corpus} differs from the world its config generates (edited, or made by another version)`);
    }
  }
  return world;
}

const StepSchema = z.object({
  fact: z.string(),
  subject: z.string(),
  relation: z.enum(RELATIONS),
  object: z.string(),
  internal: z.boolean(),
  passages: z.array(z.string()),
  query: z.string(),
  statement: z.string(),
});

/** Schema of a world question row (train/dev/test JSONL). */
export const WorldQuestionSchema = z.object({
  idx: z.number().int(),
  question: z.string(),
  answer: z.string(),
  gen_text_store: z.string().default(""),
  metadata: z.object({
    id: z.string(),
    split: z.enum(WORLD_SPLITS),
    kind: z.enum(QUESTION_KINDS),
    template: z.string(),
    comparison: z.enum(["yes-no", "which"]).nullable(),
    answer_type: z.enum(["entity", "year", "profession", "yes-no"]),
    hops: z.number().int(),
    steps: z.array(StepSchema),
    internal_facts: z.number().int(),
    external_facts: z.number().int(),
    ideal_retrievals: z.number().int(),
    ideal_queries: z.array(z.string()),
    anchors: z.array(z.string()),
    options: z.array(z.string()).optional(),
  }),
});

/** Read a world question file (validated; the error names the line). */
export async function readWorldQuestions(file: string): Promise<WorldQuestion[]> {
  const rows = await readJsonlAll<unknown>(file);
  return rows.map((r, i) => {
    const p = WorldQuestionSchema.safeParse(r);
    if (!p.success) {
      const iss = p.error.issues[0];
      throw new Error(`${file}:${i + 1}: not a world question row (${iss?.path.join(".")}: ${iss?.message})`);
    }
    return p.data as WorldQuestion;
  });
}
