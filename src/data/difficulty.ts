/**
 * Difficulty buckets as R1-Searcher built its training mix (r1-searcher.md §7.1): sample rollouts (with retrieval) per
 * question and count how many are needed for a correct answer — easy < 10, medium 10–20, difficult > 20. Questions
 * never answered correctly in N samples are "unsolved" (upstream does not say how it treated them; keep or drop them
 * explicitly). Thresholds are parameters so smaller N can be bucketed too.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { coverExactMatch, exactMatch } from "../metrics/index.js";
import type { PromptOptions, ResponseProtocol } from "../protocol/types.js";
import type { LLMBackend, SamplingParams } from "../llm/types.js";
import type { Retriever } from "../retrieval/types.js";
import { runRollouts, type RolloutLimits } from "../rollout/index.js";
import { JsonlAppender, readJsonlAll, writeJsonl } from "../util/jsonl.js";
import { Progress } from "../util/progress.js";
import type { QuestionRow } from "./questions.js";

export interface DifficultyThresholds {
  /** needed < easyBelow → easy (upstream 10). */
  easyBelow: number;
  /** needed > hardAbove → hard (upstream 20); otherwise medium. */
  hardAbove: number;
}

export const UPSTREAM_DIFFICULTY_THRESHOLDS: Readonly<DifficultyThresholds> = Object.freeze({ easyBelow: 10, hardAbove: 20 });

export const DIFFICULTY_BUCKETS = ["easy", "medium", "hard", "unsolved"] as const;
export type DifficultyBucket = (typeof DIFFICULTY_BUCKETS)[number];

/**
 * How "rollouts needed" is read from N ordered samples: "first" = 1-based index of the first correct sample (the
 * literal definition); "expected" = N / (number correct), the mean wait of a geometric draw (lower variance).
 */
export type NeededEstimator = "first" | "expected";

/** Rollouts needed for a correct answer, or null when none of the samples is correct. */
export function rolloutsNeeded(correct: readonly boolean[], estimator: NeededEstimator = "first"): number | null {
  const hits = correct.filter(Boolean).length;
  if (hits === 0) return null;
  return estimator === "first" ? correct.indexOf(true) + 1 : correct.length / hits;
}

export function difficultyBucket(needed: number | null, t: DifficultyThresholds = UPSTREAM_DIFFICULTY_THRESHOLDS): DifficultyBucket {
  if (t.easyBelow > t.hardAbove + 1) throw new Error(`difficulty thresholds: easyBelow ${t.easyBelow} must be at most hardAbove + 1 (${t.hardAbove + 1})`);
  if (needed === null) return "unsolved";
  if (needed < t.easyBelow) return "easy";
  if (needed > t.hardAbove) return "hard";
  return "medium";
}

export interface DifficultyRecord {
  idx: number | string;
  question: string;
  answers: string[];
  /** Samples drawn. */
  n: number;
  /** Per sample, in order: correct or not. */
  correct: boolean[];
  needed: number | null;
  bucket: DifficultyBucket;
  /** Mean retrievals per sample. */
  meanRetrievals: number;
}

export interface BucketOptions {
  thresholds?: DifficultyThresholds;
  estimator?: NeededEstimator;
}

/** Bucket one question from its ordered sample outcomes. */
export function difficultyRecord(
  row: Pick<QuestionRow, "idx" | "question" | "answers">,
  correct: readonly boolean[],
  retrievals: readonly number[] = [],
  o: BucketOptions = {},
): DifficultyRecord {
  const needed = rolloutsNeeded(correct, o.estimator);
  return {
    idx: row.idx,
    question: row.question,
    answers: row.answers.slice(),
    n: correct.length,
    correct: correct.slice(),
    needed,
    bucket: difficultyBucket(needed, o.thresholds),
    meanRetrievals: retrievals.length ? retrievals.reduce((a, b) => a + b, 0) / retrievals.length : 0,
  };
}

export function bucketCounts(records: readonly Pick<DifficultyRecord, "bucket">[]): Record<DifficultyBucket, number> {
  const out = { easy: 0, medium: 0, hard: 0, unsolved: 0 };
  for (const r of records) out[r.bucket]++;
  return out;
}

export interface RunDifficultyOptions extends BucketOptions {
  rows: readonly QuestionRow[];
  protocol: ResponseProtocol;
  backend: LLMBackend;
  retriever: Retriever;
  /** Samples per question (upstream's buckets need N > 20 to tell "hard" from "unsolved"). */
  n: number;
  /** Answer check: Cover-EM (default, the paper's ACC_R) or EM. */
  metric?: "cover-em" | "em";
  sampling?: Partial<SamplingParams>;
  limits?: Partial<RolloutLimits>;
  promptOptions?: PromptOptions;
  /** Questions rolled out together (default 8). */
  chunk?: number;
  concurrency?: number;
  /** Append records here as questions finish; records already in the file are kept and their questions skipped. */
  out?: string;
  progress?: boolean;
  signal?: AbortSignal;
  /**
   * Called for a question with a failed sample (backend or retriever error, abort): it gets no record, is not written
   * to `out` and is left out of the result, so a rerun samples it again.
   */
  onQuestionFailed?: (row: QuestionRow, error: string) => void;
}

/**
 * Sample N rollouts per question with the rollout engine and bucket the questions. Resumable through `out`. Returns the
 * records of the questions that have one (a question whose sampling failed has none; see `onQuestionFailed`).
 */
export async function runDifficulty(o: RunDifficultyOptions): Promise<DifficultyRecord[]> {
  if (!Number.isInteger(o.n) || o.n < 1) throw new Error(`n must be a positive integer (got ${o.n})`);
  const done = new Map<string, DifficultyRecord>();
  if (o.out && existsSync(o.out)) for (const r of await readJsonlAll<DifficultyRecord>(o.out)) done.set(String(r.idx), r);
  const todo = o.rows.filter((r) => !done.has(String(r.idx)));
  const check = o.metric === "em" ? exactMatch : coverExactMatch;
  const appender = o.out ? new JsonlAppender(o.out) : null;
  const progress = new Progress({ label: "difficulty", total: todo.length, unit: "questions", silent: !o.progress });
  const chunk = Math.max(1, o.chunk ?? 8);
  try {
    for (let i = 0; i < todo.length; i += chunk) {
      if (o.signal?.aborted) throw new Error("aborted");
      const rows = todo.slice(i, i + chunk);
      const trajectories = await runRollouts({
        protocol: o.protocol,
        backend: o.backend,
        retriever: o.retriever,
        mode: "eval",
        sampling: { temperature: 1, ...o.sampling },
        limits: { topK: 3, ...o.limits },
        promptOptions: o.promptOptions,
        items: rows.map((r) => ({ id: String(r.idx), question: r.question, gold: r.answers })),
        samplesPerItem: o.n,
        concurrency: o.concurrency,
        signal: o.signal,
      });
      for (let j = 0; j < rows.length; j++) {
        const row = rows[j];
        const ts = trajectories.slice(j * o.n, (j + 1) * o.n);
        const bad = ts.find((t) => t.finish === "error" || t.finish === "aborted");
        if (bad) {
          o.onQuestionFailed?.(row, `${bad.finish}: ${bad.error ?? ""}`);
          continue;
        }
        const correct = ts.map((t) => t.answer !== null && check(t.answer, row.answers));
        const rec = difficultyRecord(row, correct, ts.map((t) => t.retrievals), o);
        done.set(String(row.idx), rec);
        await appender?.append(rec);
      }
      progress.tick(rows.length);
    }
  } finally {
    await appender?.close();
    progress.finish();
  }
  return o.rows.flatMap((r) => done.get(String(r.idx)) ?? []);
}

/** Write the rows of each bucket (the original question rows) to `dir/{bucket}.jsonl`. */
export async function writeBucketFiles(dir: string, rows: readonly QuestionRow[], records: readonly DifficultyRecord[]): Promise<Record<DifficultyBucket, number>> {
  const byIdx = new Map(records.map((r) => [String(r.idx), r.bucket]));
  const counts = bucketCounts(records);
  for (const b of DIFFICULTY_BUCKETS) {
    await writeJsonl(
      path.join(dir, `${b}.jsonl`),
      rows.filter((r) => byIdx.get(String(r.idx)) === b).map((r) => r.raw),
    );
  }
  return counts;
}
