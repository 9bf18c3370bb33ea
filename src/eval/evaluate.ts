/**
 * The evaluation harness: run a protocol + backend + retriever over evaluation questions with the rollout engine
 * (greedy, upstream evaluation rules), score every answer, optionally ask an LLM judge, and write results in the
 * upstream record format plus our fields (docs/run-format.md, docs/evaluation.md). Resumable: questions already in the
 * output file are skipped. Two protocol-agnostic baselines run through the same engine: "no-retrieval" (answer
 * directly) and "naive-rag" (retrieve once with the question, then answer).
 */
import { existsSync } from "node:fs";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { isChatBackend } from "../llm/chat/types.js";
import type { LLMBackend, SamplingParams } from "../llm/types.js";
import type { ChatSearchMode } from "../protocol/chat-search.js";
import {
  aggregateMetrics,
  createJudgeClient,
  recordGold,
  scoreAnswer,
  type JudgeClient,
  type JudgeClientOptions,
  type MetricsSummary,
} from "../metrics/index.js";
import type { PromptOptions, ResponseProtocol } from "../protocol/types.js";
import type { Retriever } from "../retrieval/types.js";
import { RolloutEngine, upstreamPredAnswer } from "../rollout/engine.js";
import type { RolloutLimits } from "../rollout/options.js";
import type { RolloutEvent, Trajectory } from "../rollout/types.js";
import { atomicWriteJson } from "../util/fsutil.js";
import { JsonlAppender, readJsonl } from "../util/jsonl.js";
import { Progress } from "../util/progress.js";
import type { Passage } from "../util/types.js";
import type { EvalItem } from "./datasets.js";

export type EvalMode = "search" | "no-retrieval" | "naive-rag";

/** Default prompt of the "no-retrieval" baseline (placeholders: {question}, {answer_open}, {answer_close}). */
export const NO_RETRIEVAL_PROMPT =
  "Answer the question. Think step by step, then write the final answer between {answer_open} and {answer_close}.\n\nQuestion: {question}\nAnswer:";

/** Default prompt of the "naive-rag" baseline (placeholders: {documents}, {question}, {answer_open}, {answer_close}). */
export const NAIVE_RAG_PROMPT =
  "Answer the question using the documents. Think step by step, then write the final answer between {answer_open} and {answer_close}.\n\nDocuments:\n{documents}\nQuestion: {question}\nAnswer:";

/** Documents of the naive-RAG prompt: `(j)title   text` lines (1-based). */
export function renderBaselineDocuments(passages: readonly Passage[]): string {
  return passages.map((p, j) => `(${j + 1})${p.title ? `${p.title}   ` : ""}${p.text}\n`).join("");
}

export type BaselinePrompt = string | ((question: string, passages: readonly Passage[]) => string);

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(question|documents|answer_open|answer_close)\}/g, (_m, k: string) => values[k]);
}

/** One line of results.jsonl. */
export interface EvalRecord {
  question: string;
  answer: EvalItem["answer"];
  pred_ans: string;
  stop_reason_final: string;
  /** Response text (generated segments with the inserted document blocks), as upstream's transcript. */
  gen_text_store: string;
  /** Raw judge reply, when a judge ran. */
  gpt4o_output?: string;
  idx: string | number;
  dataset: string;
  mode: EvalMode;
  retrievals: number;
  queries: string[];
  prompt_tokens: number;
  response_tokens: number;
  finish: Trajectory["finish"];
  timings: { total_ms: number; backend_ms: number; retrieval_ms: number };
  em: number;
  cem: number;
  f1: number;
  warnings?: string[];
  /**
   * Chat backends only (no token ids; `prompt_tokens` / `response_tokens` are the provider's reported usage): how the
   * model searched, "protocol" (tags) or "tool" (the search tool). Absent = a token-exact run.
   */
  chat_mode?: ChatSearchMode;
  /** Chat backends only: cost in USD when the provider reports it, else null. */
  cost_usd?: number | null;
}

export interface EvalSummary extends MetricsSummary {
  /** Mean retrieval count over the aggregated records. */
  retrievalsMean: number;
  /** Questions that failed in this run (backend/retriever errors, aborts): not written, retried on resume. */
  failed: number;
  /** Questions skipped because the output file already had them. */
  resumed: number;
  /** Questions run now. */
  ran: number;
}

export interface EvaluateOptions {
  backend: LLMBackend;
  protocol: ResponseProtocol;
  /** Needed by "search" and "naive-rag". */
  retriever?: Retriever;
  items: readonly EvalItem[];
  /** Label written into records (e.g. "hotpotqa"). */
  dataset?: string;
  mode?: EvalMode;
  /** Prompt of the "search" mode (variant, chat template or a template). */
  promptOptions?: PromptOptions;
  /** Prompt of the baselines (template or function); defaults: NO_RETRIEVAL_PROMPT / NAIVE_RAG_PROMPT. */
  baselinePrompt?: BaselinePrompt;
  /** Sampling overrides (default: greedy, top-p 0.95, 512 tokens per segment, the protocol's evaluation stops). */
  sampling?: Partial<SamplingParams>;
  limits?: Partial<RolloutLimits>;
  /** Passages of the naive-RAG baseline (default: `limits.topK`, else 5). */
  ragTopK?: number;
  concurrency?: number;
  /** LLM judge (ACC_L): a client, or options for `createJudgeClient`. */
  judge?: JudgeClient | JudgeClientOptions;
  /** results.jsonl to append to (a `.summary.json` is written next to it). */
  outFile?: string;
  /** Skip questions already in `outFile` (default true). */
  resume?: boolean;
  /** Chat backends: search with the protocol's tags or the `search` tool (default: the backend's mode). */
  chatMode?: ChatSearchMode;
  /** Print a progress line to stderr (default false). */
  progress?: boolean;
  onEvent?: (e: RolloutEvent) => void;
  onRecord?: (r: EvalRecord) => void;
  signal?: AbortSignal;
}

export interface EvaluateResult {
  summary: EvalSummary;
  /** Records written in this run (completion order). */
  records: EvalRecord[];
  /** Where the summary was written (with `outFile`). */
  summaryFile?: string;
  warnings: string[];
}

/** `results.summary.json` path for a results file. */
export function summaryFileFor(outFile: string): string {
  return outFile.replace(/\.jsonl$/, "") + ".summary.json";
}

function isJudgeClient(j: JudgeClient | JudgeClientOptions): j is JudgeClient {
  return typeof (j as JudgeClient).judge === "function";
}

/** Build a result record from a finished trajectory. */
export function toEvalRecord(
  t: Trajectory,
  item: EvalItem,
  dataset: string,
  mode: EvalMode,
  extra: { retrievals?: number; queries?: string[] } = {},
): EvalRecord {
  const pred = upstreamPredAnswer(t);
  const s = scoreAnswer(pred, recordGold(item.answer));
  const rec: EvalRecord = {
    question: item.question,
    answer: item.answer,
    pred_ans: pred,
    stop_reason_final: t.stopReasonFinal ?? "shot_down",
    gen_text_store: t.responseText,
    idx: item.idx,
    dataset,
    mode,
    retrievals: extra.retrievals ?? t.retrievals,
    queries: extra.queries ?? t.queries,
    prompt_tokens: t.promptTokens.length,
    response_tokens: t.responseTokens.length,
    finish: t.finish,
    timings: {
      total_ms: Math.round(t.timings.totalMs),
      backend_ms: Math.round(t.timings.backendMs),
      retrieval_ms: Math.round(t.timings.retrievalMs),
    },
    em: s.em ? 1 : 0,
    cem: s.cem ? 1 : 0,
    f1: s.f1,
  };
  if (t.warnings.length > 0) rec.warnings = t.warnings;
  if (t.chat) {
    rec.chat_mode = mode === "search" ? t.chat.mode : "protocol";
    rec.prompt_tokens = t.chat.usage.inputTokens ?? 0;
    rec.response_tokens = t.chat.usage.outputTokens ?? 0;
    rec.cost_usd = t.chat.costUsd;
  }
  return rec;
}

/** How a record was produced: "token-exact" or "chat <mode> mode" (their numbers are never mixed in one file). */
function runKind(chatMode: unknown): string {
  return typeof chatMode === "string" ? `chat ${chatMode} mode` : "token-exact";
}

/**
 * Keys of the questions an existing results file already has (idx, else question). With `kind`, a record of another
 * kind of run (token-exact vs chat protocol / tool mode) fails loudly instead of mixing their numbers.
 */
async function finishedKeys(file: string, kind?: string): Promise<Set<string>> {
  const keys = new Set<string>();
  if (!existsSync(file)) return keys;
  for await (const r of readJsonl<Record<string, unknown>>(file)) {
    if (!r || typeof r !== "object") continue;
    if (kind !== undefined && runKind(r.chat_mode) !== kind)
      throw new Error(
        `${file} holds records of a ${runKind(r.chat_mode)} run and this is a ${kind} run: write to another --out (their numbers must not mix)`,
      );
    keys.add(r.idx !== undefined ? `idx:${String(r.idx)}` : `q:${String(r.question)}`);
  }
  return keys;
}

function itemKey(it: EvalItem): string {
  return `idx:${String(it.idx)}`;
}

/** Reported token usage summed over chat records (this run's). */
function chatUsageOf(records: readonly EvalRecord[]): { input_tokens: number; output_tokens: number } {
  return {
    input_tokens: records.reduce((a, r) => a + r.prompt_tokens, 0),
    output_tokens: records.reduce((a, r) => a + r.response_tokens, 0),
  };
}

/** Reported cost summed over chat records (this run's); null when no record has one. */
function chatCostOf(records: readonly EvalRecord[]): number | null {
  const costs = records.map((r) => r.cost_usd).filter((c): c is number => typeof c === "number");
  return costs.length === 0 ? null : costs.reduce((a, b) => a + b, 0);
}

/** Summary of a results file: metrics exactly as `searchrl metrics` computes them, plus the mean retrieval count. */
export async function summarizeResultsFile(file: string): Promise<MetricsSummary & { retrievalsMean: number }> {
  const rows: Array<{
    answer: EvalItem["answer"];
    pred_ans: string;
    gpt4o_output?: string | null;
    retrievals?: number;
  }> = [];
  for await (const r of readJsonl<Record<string, unknown>>(file)) rows.push(r as (typeof rows)[number]);
  return summarizeRecords(rows);
}

function summarizeRecords(
  rows: ReadonlyArray<{
    answer: EvalItem["answer"];
    pred_ans: string;
    gpt4o_output?: string | null;
    retrievals?: number;
  }>,
): MetricsSummary & { retrievalsMean: number } {
  const m = aggregateMetrics(rows);
  const used = rows.slice(0, m.count);
  const retrievalsMean =
    used.length === 0
      ? 0
      : used.reduce((a, r) => a + (typeof r.retrievals === "number" ? r.retrievals : 0), 0) / used.length;
  return { ...m, retrievalsMean };
}

/**
 * Evaluate `items`. Never throws for a failed question (it is counted in `failed` and left out of the file so a rerun
 * retries it); throws for bad options.
 */
export async function evaluate(opts: EvaluateOptions): Promise<EvaluateResult> {
  const mode = opts.mode ?? "search";
  const dataset = opts.dataset ?? "custom";
  const { protocol, backend } = opts;
  if ((mode === "search" || mode === "naive-rag") && !opts.retriever)
    throw new Error(`evaluate: mode "${mode}" needs a retriever`);
  const warnings: string[] = [];
  const judge = opts.judge ? (isJudgeClient(opts.judge) ? opts.judge : createJudgeClient(opts.judge)) : null;

  const chat = isChatBackend(backend);
  const chatMode: ChatSearchMode | undefined = chat
    ? mode === "search"
      ? (opts.chatMode ?? backend.searchMode)
      : "protocol"
    : undefined;
  const kind = runKind(chatMode);
  let todo = [...opts.items];
  let resumed = 0;
  if (opts.outFile) {
    // Read even without resuming: records of another kind of run in the file are refused either way.
    const done = await finishedKeys(opts.outFile, kind);
    if (opts.resume !== false) {
      const before = todo.length;
      todo = todo.filter((it) => !done.has(itemKey(it)) && !done.has(`q:${it.question}`));
      resumed = before - todo.length;
    }
  }
  if (opts.outFile) await fsp.mkdir(path.dirname(path.resolve(opts.outFile)), { recursive: true });

  // A retriever stand-in for the baselines that must not search (a query there is never executed).
  const noRetriever: Retriever = {
    name: "none",
    search: async () => {
      throw new Error("no retrieval in this mode");
    },
    info: async () => ({ kind: "none", size: 0 }),
    close: async () => {},
  };
  const baseline = mode !== "search";
  const engine = new RolloutEngine({
    protocol,
    backend,
    retriever: opts.retriever ?? noRetriever,
    mode: "eval",
    sampling: opts.sampling,
    limits: baseline ? { ...opts.limits, maxSearches: 0, atLimit: "final-segment" } : opts.limits,
    promptOptions: opts.promptOptions,
    onEvent: opts.onEvent,
    signal: opts.signal,
    ...(chatMode ? { chatMode } : {}),
  });
  const ragK = opts.ragTopK ?? opts.limits?.topK ?? 5;
  const answerTags = { answer_open: protocol.answerOpen, answer_close: protocol.answerClose };
  const baselinePrompt = (question: string, passages: readonly Passage[]): string => {
    const p = opts.baselinePrompt ?? (mode === "naive-rag" ? NAIVE_RAG_PROMPT : NO_RETRIEVAL_PROMPT);
    if (typeof p === "function") return p(question, passages);
    return fill(p, { question, documents: renderBaselineDocuments(passages), ...answerTags });
  };

  const appender = opts.outFile ? new JsonlAppender(opts.outFile) : null;
  const records: EvalRecord[] = [];
  let failed = 0;
  const progress = new Progress({
    total: todo.length,
    label: `eval ${dataset}`,
    unit: "q",
    silent: !opts.progress,
    extra: () => `failed ${failed}`,
  });
  let writeChain: Promise<void> = Promise.resolve();
  const concurrency = Math.max(1, opts.concurrency ?? (backend.generateBatch ? 64 : (backend.maxConcurrency ?? 16)));
  let next = 0;

  const runOne = async (item: EvalItem): Promise<void> => {
    let passages: Passage[] = [];
    let ragError: string | null = null;
    if (mode === "naive-rag") {
      try {
        [passages] = await opts.retriever!.search([item.question], ragK, { signal: opts.signal });
      } catch (err) {
        ragError = err instanceof Error ? err.message : String(err);
      }
    }
    if (ragError !== null) {
      failed++;
      warnings.push(`question ${String(item.idx)}: retrieval failed: ${ragError}`);
      return;
    }
    const prompt = baseline ? baselinePrompt(item.question, passages) : undefined;
    const t = await engine.run({
      id: String(item.idx),
      question: item.question,
      gold: typeof item.answer === "boolean" ? String(item.answer) : item.answer,
      prompt,
    });
    if (t.finish === "error" || t.finish === "aborted") {
      failed++;
      warnings.push(`question ${String(item.idx)}: ${t.finish}: ${t.error ?? ""}`);
      return;
    }
    const rec = toEvalRecord(
      t,
      item,
      dataset,
      mode,
      mode === "naive-rag" ? { retrievals: 1, queries: [item.question] } : {},
    );
    if (judge) {
      try {
        const v = await judge.judge(
          { question: item.question, reference: item.answer, prediction: rec.pred_ans },
          opts.signal,
        );
        rec.gpt4o_output = v.output;
      } catch (err) {
        warnings.push(
          `question ${String(item.idx)}: judge failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    records.push(rec);
    opts.onRecord?.(rec);
    if (appender) {
      writeChain = writeChain.then(() => appender.append(rec));
      await writeChain;
    }
  };

  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
        while (next < todo.length) {
          if (opts.signal?.aborted) return;
          const item = todo[next++];
          await runOne(item);
          progress.tick();
        }
      }),
    );
  } finally {
    await writeChain.catch(() => {});
    await appender?.close();
    if (todo.length > 0) progress.finish();
  }

  const base =
    opts.outFile && existsSync(opts.outFile) ? await summarizeResultsFile(opts.outFile) : summarizeRecords(records);
  const summary: EvalSummary = { ...base, failed, resumed, ran: todo.length };
  let summaryFile: string | undefined;
  if (opts.outFile) {
    summaryFile = summaryFileFor(opts.outFile);
    await atomicWriteJson(summaryFile, {
      dataset,
      mode,
      protocol: protocol.name,
      backend: backend.name,
      // "token-exact" or "chat protocol mode" / "chat tool mode" (chat runs have no token ids).
      run_kind: kind,
      ...(chatMode ? { chat_mode: chatMode } : {}),
      retriever: opts.retriever?.name ?? null,
      count: summary.count,
      em: summary.em,
      cem: summary.cem,
      f1: summary.f1,
      precision: summary.precision,
      recall: summary.recall,
      judge: summary.judge,
      judged: summary.judged,
      retrievals_mean: summary.retrievalsMean,
      ...(chat ? { usage: chatUsageOf(records), cost_usd: chatCostOf(records) } : {}),
      failed,
      written: new Date().toISOString(),
    });
  }
  if (failed > 0) warnings.push(`${failed} question(s) failed and were not written; run again to retry them`);
  return { summary, records, summaryFile, warnings };
}
