/**
 * Export question files for the Python RL stacks (ecosystem-contracts §3–5):
 * - `verl`: veRL / Search-R1 Parquet rows (`data_source`, `prompt` as chat messages, `ability`,
 *   `reward_model.{style, ground_truth.target}`, `extra_info.{split, index}`); `.jsonl` output writes the same rows as JSON;
 * - `openrlhf`: JSONL with `idx` and the raw `question` (the R1-Searcher OpenRLHF fork builds its own prompt and keys
 *   rewards by idx/question), the rendered `prompt` (current OpenRLHF: `--data.input_key prompt`) and the `answer` label;
 * - `flashrag`: FlashRAG QA JSONL `{id, question, golden_answers, metadata}`.
 * Prompts come from the protocol's `buildPrompt`.
 */
import path from "node:path";
import type { PromptOptions, ResponseProtocol } from "../protocol/types.js";
import { writeJsonl } from "../util/jsonl.js";
import { writeVerlParquet, type VerlRow } from "./parquet.js";
import type { QuestionRow } from "./questions.js";

export const EXPORT_FORMATS = ["verl", "openrlhf", "flashrag"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  protocol: ResponseProtocol;
  promptOptions?: PromptOptions;
  /** veRL `data_source` (selects the reward function there). */
  dataSource: string;
  /** Split written into `extra_info.split` / FlashRAG ids; default: the row's metadata split, else `defaultSplit`. */
  split?: string;
  defaultSplit?: string;
  /** veRL `ability` (default "fact-reasoning", as the Search-R1 recipe). */
  ability?: string;
  /** veRL multi-turn tool layout (ecosystem-contracts §4.2): adds `extra_info.need_tools_kwargs` and `tools_kwargs.search`. */
  verlTools?: boolean;
}

export interface OpenRlhfRow {
  idx: number | string;
  question: string;
  prompt: string;
  answer: string;
  answers?: string[];
  metadata?: Record<string, unknown>;
}

export interface FlashRagRow {
  id: string;
  question: string;
  golden_answers: string[];
  metadata: Record<string, unknown>;
}

function splitOf(r: QuestionRow, o: ExportOptions): string {
  return o.split ?? r.split ?? o.defaultSplit ?? "train";
}

export function toVerlRows(rows: readonly QuestionRow[], o: ExportOptions): VerlRow[] {
  return rows.map((r, i) => ({
    data_source: o.dataSource,
    prompt: [{ role: "user", content: o.protocol.buildPrompt(r.question, o.promptOptions) }],
    ability: o.ability ?? "fact-reasoning",
    reward_model: { style: "rule", ground_truth: { target: r.answers.slice() } },
    extra_info: {
      split: splitOf(r, o),
      index: i,
      idx: String(r.idx),
      question: r.question,
      ...(o.verlTools
        ? {
            need_tools_kwargs: true,
            tools_kwargs: { search: { create_kwargs: { ground_truth: { target: r.answers.slice() }, question: r.question, data_source: o.dataSource } } },
          }
        : {}),
    },
  }));
}

export function toOpenRlhfRows(rows: readonly QuestionRow[], o: ExportOptions): OpenRlhfRow[] {
  return rows.map((r) => ({
    idx: r.idx,
    question: r.question,
    prompt: o.protocol.buildPrompt(r.question, o.promptOptions),
    answer: r.answers[0],
    ...(r.answers.length > 1 ? { answers: r.answers.slice() } : {}),
    ...(r.metadata ? { metadata: r.metadata } : {}),
  }));
}

export function toFlashRagRows(rows: readonly QuestionRow[], o: ExportOptions): FlashRagRow[] {
  return rows.map((r, i) => ({
    id: `${splitOf(r, o)}_${i}`,
    question: r.question,
    golden_answers: r.answers.slice(),
    metadata: { idx: r.idx, ...(r.metadata ?? {}) },
  }));
}

/** Split named by a file name (`…train…`, `…dev…`/`…val…`, `…test…`) or its folder (`eval_set`, `training_set`), if any. */
export function splitFromFileName(file: string): string | undefined {
  const base = path.basename(file).toLowerCase();
  if (/(^|[^a-z])train/.test(base)) return "train";
  if (/(^|[^a-z])(dev|val|valid|validation)([^a-z]|$)/.test(base)) return "dev";
  if (/(^|[^a-z])test/.test(base)) return "test";
  // Upstream layout: data/eval_set/*.jsonl are evaluation sets, data/training_set/*.jsonl training sets.
  const dirs = path.dirname(path.resolve(file)).toLowerCase().split(path.sep);
  if (dirs.some((d) => /^(eval|test)/.test(d))) return "test";
  if (dirs.some((d) => /^train/.test(d))) return "train";
  return undefined;
}

/** Write rows in a format; veRL goes to Parquet unless `out` ends with `.jsonl`/`.json`. Returns the row count. */
export async function writeExport(format: ExportFormat, rows: readonly QuestionRow[], out: string, o: ExportOptions): Promise<number> {
  if (rows.length === 0) throw new Error("the input has no question rows");
  switch (format) {
    case "verl": {
      const v = toVerlRows(rows, o);
      if (/\.jsonl?$/i.test(out)) await writeJsonl(out, v);
      else await writeVerlParquet(out, v);
      return v.length;
    }
    case "openrlhf": {
      const v = toOpenRlhfRows(rows, o);
      await writeJsonl(out, v);
      return v.length;
    }
    case "flashrag": {
      const v = toFlashRagRows(rows, o);
      await writeJsonl(out, v);
      return v.length;
    }
  }
}
