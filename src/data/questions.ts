/**
 * Question files in, one normalized shape out. Accepted rows (JSONL, one per line):
 * - upstream R1-Searcher: `{idx, question, answer, ...}` (`answer` a string; a JSON boolean becomes "yes"/"no");
 * - searchrl world: the same plus `metadata` (split, kind, steps, ...);
 * - FlashRAG: `{id, question, golden_answers: [...], metadata}`;
 * - anything with `question` and one of `answer` / `answers` / `golden_answers`.
 */
import { z } from "zod";
import { readJsonl } from "../util/jsonl.js";

export interface QuestionRow {
  /** The row's id as given (`idx`, else `id`, else the 0-based row number). */
  idx: number | string;
  question: string;
  /** Gold answers (at least one). */
  answers: string[];
  /** Split named by the row's metadata, when it has one. */
  split?: string;
  metadata?: Record<string, unknown>;
  /** The original row. */
  raw: Record<string, unknown>;
}

const goldValue = z.union([z.string(), z.boolean(), z.number()]).transform((v) => (typeof v === "boolean" ? (v ? "yes" : "no") : String(v)));

const RowSchema = z
  .object({
    idx: z.union([z.number(), z.string()]).optional(),
    id: z.union([z.number(), z.string()]).optional(),
    question: z.string({ error: "`question` must be a string" }),
    answer: z.union([goldValue, z.array(goldValue)]).optional(),
    answers: z.array(goldValue).optional(),
    golden_answers: z.array(goldValue).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

/** Normalize one parsed row; throws a message naming what is wrong. */
export function normalizeQuestionRow(value: unknown, rowNumber: number): QuestionRow {
  const p = RowSchema.safeParse(value);
  if (!p.success) {
    const iss = p.error.issues[0];
    throw new Error(`${iss?.path.length ? iss.path.join(".") + ": " : ""}${iss?.message}`);
  }
  const r = p.data;
  const answers =
    r.answer !== undefined ? (Array.isArray(r.answer) ? r.answer : [r.answer]) : (r.golden_answers ?? r.answers ?? []);
  if (answers.length === 0) throw new Error("no gold answer (`answer`, `answers` or `golden_answers`)");
  const split = typeof r.metadata?.split === "string" ? r.metadata.split : undefined;
  return {
    idx: r.idx ?? r.id ?? rowNumber,
    question: r.question,
    answers,
    ...(split ? { split } : {}),
    ...(r.metadata ? { metadata: r.metadata } : {}),
    raw: value as Record<string, unknown>,
  };
}

/** Read a question file; the error names the file and line. */
export async function readQuestionRows(file: string, limit = Infinity): Promise<QuestionRow[]> {
  const out: QuestionRow[] = [];
  let line = 0;
  for await (const row of readJsonl<unknown>(file)) {
    if (out.length >= limit) break;
    line++;
    try {
      out.push(normalizeQuestionRow(row, out.length));
    } catch (err) {
      throw new Error(`${file}: row ${line}: ${(err as Error).message}`);
    }
  }
  return out;
}
