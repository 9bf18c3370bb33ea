/**
 * Rejection sampling for the SFT cold start (R1-Searcher++ stage 1): sample N trajectories per question with the
 * rollout engine, keep those that are well formed and correct, write them as JSONL rows that `searchrl sft` reads
 * (`prompt`/`response` text + the exact trajectory). Resumable: questions already present in the output are skipped.
 * Decisions for D5 (samples, temperature, selection) are options; docs/training.md lists the defaults.
 */
import { existsSync, promises as fsp } from "node:fs";
import type { LLMBackend } from "../llm/types.js";
import { coverExactMatch } from "../metrics/answer.js";
import type { PromptOptions, ResponseProtocol } from "../protocol/types.js";
import type { Retriever } from "../retrieval/types.js";
import { runRollouts } from "../rollout/engine.js";
import type { Trajectory } from "../rollout/types.js";
import { JsonlAppender, readJsonl } from "../util/jsonl.js";
import { Progress } from "../util/progress.js";
import { pyWords } from "../util/pystr.js";
import type { QuestionRow } from "./data.js";

export interface RejectionSampleOptions {
  backend: LLMBackend;
  retriever: Retriever;
  protocol: ResponseProtocol;
  questions: QuestionRow[];
  /** Samples per question. */
  n: number;
  out: string;
  promptOptions?: PromptOptions;
  temperature?: number;
  topP?: number;
  maxTokensPerSegment?: number;
  maxRetrievals?: number;
  k?: number;
  seed?: number;
  /** Keep at most this many passing samples per question (0 = all). Default 1. */
  maxPerQuestion?: number;
  /** Require ≥ 1 retrieval in a kept sample. Default false. */
  requireRetrieval?: boolean;
  /** Require ≥ 1 internal-knowledge block (R1-Searcher++ mixed traces). Default false. */
  requireInternal?: boolean;
  /** Answers longer than this many words are rejected (0 = no cap). Default 0. */
  maxAnswerWords?: number;
  /** Questions rolled out together. Default 8. */
  batchQuestions?: number;
  concurrency?: number;
  /** Custom acceptance test (replaces the default correctness test; well-formedness is still required). */
  isCorrect?: (answer: string, gold: string | string[]) => boolean;
  quiet?: boolean;
  signal?: AbortSignal;
}

export interface RejectionSampleSummary {
  questions: number;
  skipped: number;
  sampled: number;
  kept: number;
  /** Rejections by reason. */
  rejected: Record<string, number>;
  /**
   * Questions with a failed sample (backend or retriever error, abort): none of their samples is written and they are
   * not marked tried, so a rerun samples them again.
   */
  failed: number;
  /** The first few failures (question id: error). */
  failures: string[];
  out: string;
}

/** Why a trajectory is rejected (null = accepted). */
export function rejectReason(
  t: Trajectory,
  row: QuestionRow,
  protocol: ResponseProtocol,
  o: Pick<RejectionSampleOptions, "requireRetrieval" | "requireInternal" | "maxAnswerWords" | "isCorrect">,
): string | null {
  if (t.finish === "error" || t.finish === "aborted") return "error";
  if (t.finish !== "answer") return `finish_${t.finish}`;
  const parsed = protocol.parse(t.responseText);
  if (parsed.formatErrors.length > 0) return "format";
  if (parsed.segments.some((s) => !s.closed)) return "format";
  if (parsed.answer === null) return "no_answer";
  if (o.requireRetrieval && t.retrievals < 1) return "no_retrieval";
  if (o.requireInternal && !parsed.segments.some((s) => s.kind === "internal")) return "no_internal";
  if (o.maxAnswerWords && pyWords(parsed.answer).length > o.maxAnswerWords) return "answer_too_long";
  if (row.gold === undefined) return "no_gold";
  const ok = (o.isCorrect ?? ((a, g) => coverExactMatch(a, g)))(parsed.answer, row.gold);
  return ok ? null : "wrong";
}

export async function rejectionSample(o: RejectionSampleOptions): Promise<RejectionSampleSummary> {
  const done = new Set<string>();
  if (existsSync(o.out)) {
    for await (const r of readJsonl<{ group?: string; question_id?: string }>(o.out)) {
      const id = r.question_id ?? r.group;
      if (id !== undefined) done.add(id);
    }
  }
  // a question with no kept sample is recorded in a side file so a resumed run does not resample it
  const triedFile = o.out + ".tried";
  if (existsSync(triedFile)) for (const l of (await fsp.readFile(triedFile, "utf8")).split("\n")) if (l) done.add(l);
  const todo = o.questions.filter((q) => !done.has(q.id));
  const summary: RejectionSampleSummary = {
    questions: o.questions.length,
    skipped: o.questions.length - todo.length,
    sampled: 0,
    kept: 0,
    rejected: {},
    failed: 0,
    failures: [],
    out: o.out,
  };
  const out = new JsonlAppender(o.out);
  const progress = new Progress({
    label: "rejection-sample",
    total: todo.length,
    unit: "q",
    silent: o.quiet,
    extra: () => `kept ${summary.kept}`,
  });
  const maxPer = o.maxPerQuestion ?? 1;
  const B = Math.max(1, o.batchQuestions ?? 8);
  try {
    for (let i = 0; i < todo.length; i += B) {
      if (o.signal?.aborted) break;
      const part = todo.slice(i, i + B);
      const trajs = await runRollouts({
        protocol: o.protocol,
        backend: o.backend,
        retriever: o.retriever,
        mode: "train",
        items: part.map((q) => ({ id: q.id, group: q.id, question: q.question, gold: q.gold })),
        samplesPerItem: o.n,
        concurrency: o.concurrency,
        promptOptions: o.promptOptions,
        sampling: {
          temperature: o.temperature ?? 1,
          topP: o.topP ?? 0.95,
          ...(o.seed !== undefined ? { seed: o.seed } : {}),
        },
        limits: {
          ...(o.maxTokensPerSegment ? { segmentMaxTokens: o.maxTokensPerSegment } : {}),
          ...(o.maxRetrievals !== undefined ? { maxSearches: o.maxRetrievals } : {}),
          ...(o.k ? { topK: o.k } : {}),
        },
        signal: o.signal,
      });
      summary.sampled += trajs.length;
      for (let q = 0; q < part.length; q++) {
        const row = part[q];
        const group = trajs.slice(q * o.n, (q + 1) * o.n);
        const bad = group.find((t) => t.finish === "error" || t.finish === "aborted");
        if (bad) {
          summary.failed++;
          if (summary.failures.length < 5) summary.failures.push(`${row.id}: ${bad.finish}: ${bad.error ?? ""}`);
          progress.tick();
          continue;
        }
        let kept = 0;
        for (let s = 0; s < o.n; s++) {
          const t = trajs[q * o.n + s];
          const why = rejectReason(t, row, o.protocol, o);
          if (why !== null || (maxPer > 0 && kept >= maxPer)) {
            const key = why ?? "over_limit";
            summary.rejected[key] = (summary.rejected[key] ?? 0) + 1;
            continue;
          }
          kept++;
          summary.kept++;
          await out.append({
            question_id: row.id,
            prompt: t.promptText,
            response: t.responseText,
            sample: s,
            ...t,
            gold: row.gold,
          });
        }
        if (kept === 0) await fsp.appendFile(triedFile, row.id + "\n");
        progress.tick();
      }
    }
  } finally {
    progress.finish();
    await out.close();
  }
  return summary;
}
