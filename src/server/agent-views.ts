/**
 * Recorded trajectories (training samples, `RUN_DIR/samples/step-*.jsonl`) and evaluation results (`results.jsonl`,
 * docs/run-format.md) turned into the same trace the live agent produces (agent-trace.ts), so the UI renders both
 * the same way. The response text is split into steps by the protocol's parser.
 */
import { z } from "zod";
import type { ResponseProtocol } from "../protocol/types.js";
import type { Passage } from "../util/types.js";
import { toAgentPassage } from "./agent-events.js";
import { emptyAgentTrace, type AgentPassage, type AgentTrace, type AgentTraceStep } from "./agent-trace.js";

/** Finds a protocol by name (null when unknown). */
export type ProtocolResolver = (name: string) => ResponseProtocol | null;

/** One recorded trajectory, normalized for browsing and filtering. */
export interface AgentTraceRecord {
  /** Position in its file (0-based). */
  index: number;
  question: string;
  gold: string[];
  answer: string | null;
  /** Correct by the source's own verdict (`correct` of a sample; judge, Cover-EM or EM of a result); null if unknown. */
  correct: boolean | null;
  /** The sample's reward; for evaluation results the F1. */
  reward: number | null;
  retrievals: number;
  dataset: string | null;
  finish: string | null;
  stop_reason: string | null;
  /** Answer metrics of evaluation results (em, cem, f1, judge) when present. */
  metrics: Record<string, number | string>;
  group: string | null;
  response_tokens: number | null;
  trace: AgentTrace;
  response_text: string;
}

const PassageSchema = z
  .object({
    id: z.union([z.string(), z.number()]).transform(String),
    title: z.string().default(""),
    text: z.string().default(""),
    score: z.number().optional(),
  })
  .loose();

const SampleSchema = z
  .object({
    id: z.string().optional(),
    group: z.union([z.string(), z.number()]).transform(String).optional(),
    question: z.string(),
    gold: z.union([z.string(), z.array(z.string())]).optional(),
    protocol: z.string().default(""),
    responseText: z.string().default(""),
    retrievals: z.number().optional(),
    queries: z.array(z.string()).default([]),
    documents: z.array(z.array(PassageSchema)).default([]),
    answer: z.string().nullable().optional(),
    finish: z.string().optional(),
    stopReasonFinal: z.string().optional(),
    responseTokens: z.array(z.number()).optional(),
    mask: z.array(z.number()).optional(),
    timings: z.object({ totalMs: z.number(), backendMs: z.number(), retrievalMs: z.number() }).loose().optional(),
    warnings: z.array(z.string()).optional(),
    error: z.string().optional(),
    reward: z.number().nullable().optional(),
    correct: z.union([z.boolean(), z.number()]).nullable().optional(),
    dataset: z.string().optional(),
  })
  .loose();

const ResultSchema = z
  .object({
    idx: z.union([z.number(), z.string()]).optional(),
    question: z.string(),
    answer: z.union([z.string(), z.array(z.string()), z.number()]).optional(),
    pred_ans: z.string().nullable().optional(),
    stop_reason_final: z.string().optional(),
    gen_text_store: z.string().optional(),
    generated_text: z.string().optional(),
    gpt4o_output: z.unknown().optional(),
    dataset: z.string().optional(),
    retrievals: z.number().optional(),
    queries: z.array(z.string()).optional(),
    response_tokens: z.number().optional(),
    timings: z.record(z.string(), z.number()).optional(),
    em: z.number().optional(),
    cem: z.number().optional(),
    f1: z.number().optional(),
    protocol: z.string().optional(),
  })
  .loose();

/**
 * The passages of an inserted document block when only its text is known (evaluation results): the numbered items
 * `(1)…`, `(2)…` when the block has them, else the whole block as one passage.
 */
export function passagesFromBlock(block: string): AgentPassage[] {
  const t = block.trim();
  if (!/^\(\d+\)/.test(t)) return t === "" ? [] : [{ id: "", title: "", text: t }];
  return t.split(/\n(?=\(\d+\))/).map((item) => ({ id: "", title: "", text: item.replace(/^\(\d+\)/, "").trim() }));
}

/** Split a response into trace steps with the protocol's parser; documents come from `documents` when recorded. */
export function traceStepsFromResponse(
  protocol: ResponseProtocol | null,
  text: string,
  queries: readonly string[],
  documents: readonly AgentPassage[][],
): AgentTraceStep[] {
  const steps: AgentTraceStep[] = [];
  if (!protocol) {
    if (text !== "") steps.push({ kind: "reasoning", text });
    queries.forEach((q, i) =>
      steps.push({ kind: "query", index: i, query: q, ...(documents[i] ? { passages: documents[i] } : {}) }),
    );
    return steps;
  }
  const parsed = protocol.parse(text);
  let qi = 0;
  let lastQuery: Extract<AgentTraceStep, { kind: "query" }> | null = null;
  for (const seg of parsed.segments) {
    switch (seg.kind) {
      case "reasoning":
        if (seg.text !== "") steps.push({ kind: "reasoning", text: seg.text });
        break;
      case "query": {
        const q: Extract<AgentTraceStep, { kind: "query" }> = {
          kind: "query",
          index: qi,
          query: parsed.queries[qi] ?? queries[qi] ?? seg.text.trim(),
        };
        if (documents[qi]) q.passages = documents[qi];
        steps.push(q);
        lastQuery = q;
        qi++;
        break;
      }
      case "documents":
        if (lastQuery && !lastQuery.passages) lastQuery.passages = passagesFromBlock(seg.text);
        break;
      case "internal":
        steps.push({ kind: "internal", text: seg.text, complete: seg.closed });
        break;
      case "answer":
        steps.push({ kind: "answer", text: seg.text, complete: seg.closed });
        break;
    }
  }
  return steps;
}

function goldList(g: unknown): string[] {
  if (Array.isArray(g)) return g.map(String);
  if (g === undefined || g === null) return [];
  return [String(g)];
}

/** A recorded training sample (Trajectory + reward + correct) as a trace record; null when the row is not one. */
export function agentRecordFromSample(row: unknown, index: number, resolve: ProtocolResolver): AgentTraceRecord | null {
  const r = SampleSchema.safeParse(row);
  if (!r.success) return null;
  const s = r.data;
  const protocol = s.protocol ? resolve(s.protocol) : null;
  const documents = s.documents.map((ps) => ps.map((p) => toAgentPassage(p as Passage)));
  const trace = emptyAgentTrace(s.question);
  trace.id = s.id ?? String(index);
  trace.protocol = s.protocol;
  trace.steps = traceStepsFromResponse(protocol, s.responseText, s.queries, documents);
  trace.answer = s.answer ?? null;
  trace.retrievals = s.retrievals ?? s.queries.length;
  trace.queries = s.queries;
  trace.done = true;
  trace.finish = s.finish ?? null;
  trace.stop_reason = s.stopReasonFinal ?? null;
  trace.warnings = s.warnings ?? [];
  trace.error = s.error ?? null;
  if (s.timings)
    trace.timings = {
      total_ms: s.timings.totalMs,
      backend_ms: s.timings.backendMs,
      retrieval_ms: s.timings.retrievalMs,
    };
  if (s.mask && s.responseTokens) {
    const generated = s.mask.reduce((a, m) => a + (m === 1 ? 1 : 0), 0);
    trace.usage = {
      prompt_tokens: 0,
      completion_tokens: generated,
      total_tokens: generated,
      inserted_tokens: s.responseTokens.length - generated,
    };
  }
  const correct =
    s.correct === undefined || s.correct === null ? null : typeof s.correct === "boolean" ? s.correct : s.correct > 0;
  return {
    index,
    question: s.question,
    gold: goldList(s.gold),
    answer: trace.answer,
    correct,
    reward: s.reward ?? null,
    retrievals: trace.retrievals,
    dataset: s.dataset ?? null,
    finish: trace.finish,
    stop_reason: trace.stop_reason,
    metrics: {},
    group: s.group ?? null,
    response_tokens: s.responseTokens ? s.responseTokens.length : null,
    trace,
    response_text: s.responseText,
  };
}

/** The judge's verdict of a result row (`gpt4o_output`), when it says yes or no. */
function judgeVerdict(v: unknown): boolean | null {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v > 0;
  if (typeof v !== "string") return null;
  const s = v.trim().toLowerCase();
  if (s.startsWith("yes") || s === "correct" || s === "true") return true;
  if (s.startsWith("no") || s === "incorrect" || s === "false") return false;
  return null;
}

/** Guess the protocol of a result row from its text: the first protocol whose query-opening tag appears. */
export function guessProtocol(text: string, candidates: readonly ResponseProtocol[]): ResponseProtocol | null {
  for (const p of candidates) if (text.includes(p.queryOpen)) return p;
  return candidates[0] ?? null;
}

/** An evaluation result row (upstream `eval_search_loacl.py` fields + ours) as a trace record; null when not one. */
export function agentRecordFromResult(
  row: unknown,
  index: number,
  resolve: ProtocolResolver,
  candidates: readonly ResponseProtocol[],
): AgentTraceRecord | null {
  const r = ResultSchema.safeParse(row);
  if (!r.success) return null;
  const x = r.data;
  const text = x.gen_text_store || x.generated_text || "";
  const protocol = (x.protocol ? resolve(x.protocol) : null) ?? guessProtocol(text, candidates);
  const queries = x.queries ?? [];
  const trace = emptyAgentTrace(x.question);
  trace.id = String(x.idx ?? index);
  trace.protocol = protocol?.name ?? "";
  trace.steps = traceStepsFromResponse(protocol, text, queries, []);
  const answer = x.pred_ans ?? null;
  if (answer !== null && !trace.steps.some((s) => s.kind === "answer"))
    trace.steps.push({ kind: "answer", text: answer, complete: true });
  trace.answer = answer;
  trace.retrievals = x.retrievals ?? (protocol ? protocol.countRetrievals(text) : queries.length);
  trace.queries = queries.length > 0 ? queries : trace.steps.flatMap((s) => (s.kind === "query" ? [s.query] : []));
  trace.done = true;
  trace.stop_reason = x.stop_reason_final ?? null;
  trace.finish = x.stop_reason_final ?? null;
  if (x.timings) {
    const t = x.timings;
    trace.timings = {
      total_ms: t.totalMs ?? t.total_ms ?? 0,
      backend_ms: t.backendMs ?? t.backend_ms ?? 0,
      retrieval_ms: t.retrievalMs ?? t.retrieval_ms ?? 0,
    };
  }
  const metrics: Record<string, number | string> = {};
  for (const k of ["em", "cem", "f1"] as const) if (typeof x[k] === "number") metrics[k] = x[k] as number;
  const judge = judgeVerdict(x.gpt4o_output);
  if (typeof x.gpt4o_output === "string") metrics.judge = x.gpt4o_output;
  const correct = judge ?? (typeof x.cem === "number" ? x.cem > 0 : typeof x.em === "number" ? x.em > 0 : null);
  return {
    index,
    question: x.question,
    gold: goldList(x.answer),
    answer,
    correct,
    reward: typeof x.f1 === "number" ? x.f1 : null,
    retrievals: trace.retrievals,
    dataset: x.dataset ?? null,
    finish: trace.finish,
    stop_reason: trace.stop_reason,
    metrics,
    group: null,
    response_tokens: x.response_tokens ?? null,
    trace,
    response_text: text,
  };
}
