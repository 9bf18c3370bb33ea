/**
 * Evaluation datasets: the upstream R1-Searcher evaluation sets bundled in `data/r1-searcher/eval_set` (HotpotQA, 2Wiki,
 * Musique: 500 questions each; Bamboogle: 125), or any JSONL file in the upstream format
 * (`{"idx", "question", "answer", "gen_text_store"}`) or the FlashRAG format (`{"id", "question", "golden_answers"}`).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { JsonlParseError, readLines } from "../util/jsonl.js";

export const BUNDLED_EVAL_DATASETS = {
  hotpotqa: "hotpotqa_500.jsonl",
  "2wiki": "2wiki_500.jsonl",
  musique: "musique_500.jsonl",
  bamboogle: "bamboogle.jsonl",
} as const;

export type BundledEvalDataset = keyof typeof BUNDLED_EVAL_DATASETS;

/** One evaluation question. */
export interface EvalItem {
  /** Stable key used for resuming (`idx` of upstream files, `id` of FlashRAG files, else the line number). */
  idx: string | number;
  question: string;
  /** Gold answer(s); a JSON boolean is kept as is (the metrics map it to yes/no). */
  answer: string | string[] | boolean;
}

const Row = z
  .object({
    idx: z.union([z.number(), z.string()]).optional(),
    id: z.union([z.number(), z.string()]).optional(),
    question: z.string(),
    answer: z.union([z.string(), z.array(z.string()), z.boolean()]).optional(),
    golden_answers: z.array(z.string()).optional(),
    gen_text_store: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .loose();

/** Folder of the bundled evaluation sets (inside the package: `data/r1-searcher/eval_set`). */
export function bundledEvalDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/eval → repo root, and dist/eval → package root: both two levels up.
  return path.resolve(here, "..", "..", "data", "r1-searcher", "eval_set");
}

/** Resolve a dataset name (`hotpotqa`, `2wiki`, `musique`, `bamboogle`) or a file path to a file. */
export function resolveEvalDataset(nameOrFile: string): { name: string; file: string } {
  if (Object.hasOwn(BUNDLED_EVAL_DATASETS, nameOrFile)) {
    return {
      name: nameOrFile,
      file: path.join(bundledEvalDir(), BUNDLED_EVAL_DATASETS[nameOrFile as BundledEvalDataset]),
    };
  }
  if (!existsSync(nameOrFile)) {
    throw new Error(
      `dataset "${nameOrFile}" is neither a bundled set (${Object.keys(BUNDLED_EVAL_DATASETS).join(", ")}) nor an existing file`,
    );
  }
  return { name: path.basename(nameOrFile).replace(/\.jsonl$/, ""), file: nameOrFile };
}

/** Read evaluation items (first `limit` rows); errors name the file and line. */
export async function loadEvalItems(
  file: string,
  limit = Infinity,
): Promise<{ items: EvalItem[]; warnings: string[] }> {
  const items: EvalItem[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  let line = 0;
  for await (const text of readLines(file)) {
    line++;
    if (items.length >= limit) break;
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new JsonlParseError(file, line, err);
    }
    const r = Row.safeParse(value);
    if (!r.success) {
      throw new Error(
        `${file}:${line}: invalid evaluation row (${r.error.issues.map((i) => `${i.path.join(".") || "(row)"}: ${i.message}`).join("; ")})`,
      );
    }
    const row = r.data;
    const answer = row.answer ?? row.golden_answers;
    if (answer === undefined) throw new Error(`${file}:${line}: the row has no "answer" or "golden_answers"`);
    const idx = row.idx ?? row.id ?? line;
    if (seen.has(String(idx)))
      throw new Error(`${file}:${line}: duplicate idx/id ${JSON.stringify(idx)} (needed to resume)`);
    seen.add(String(idx));
    const gts = row.gen_text_store;
    if (gts !== undefined && gts !== "" && !(Array.isArray(gts) && gts.every((x) => x === ""))) {
      warnings.push(
        `${file}:${line}: non-empty gen_text_store is ignored (the shipped evaluation sets always have "")`,
      );
    }
    items.push({ idx, question: row.question, answer });
  }
  return { items, warnings };
}
