/**
 * The agent server's trace: the wire format of its trace events (docs/api.md) and a reducer that folds them into a
 * trace (reasoning text, queries with their documents, internal facts, the answer, counts and timings).
 *
 * This file has no Node imports: the server, the typed client and the web UI share it (the UI bundles it).
 */

/** Kind of generated text a `text` event belongs to (tags removed). */
export type AgentSegmentKind = "reasoning" | "query" | "internal" | "answer";

/** A retrieved passage as the agent server sends it. */
export interface AgentPassage {
  id: string;
  title: string;
  text: string;
  score?: number;
}

export interface AgentUsage {
  prompt_tokens: number;
  /** Tokens sampled from the model. */
  completion_tokens: number;
  total_tokens: number;
  /** Tokens inserted by the environment (document blocks) into the response. */
  inserted_tokens: number;
}

export interface AgentTimings {
  total_ms: number;
  backend_ms: number;
  retrieval_ms: number;
}

/** One event of the trace stream, in the order things happen. `id` is the trajectory id of the request. */
export type AgentTraceEvent =
  | { type: "start"; id: string; question: string; protocol: string; model: string; created: number }
  /** Generated text; `segment` says whether it is reasoning, a query being written, an internal fact or the answer. */
  | { type: "text"; id: string; segment: AgentSegmentKind; delta: string }
  /** A query was issued (sanitized as the retriever receives it); `index` counts from 0. */
  | { type: "query"; id: string; index: number; query: string }
  /** The documents retrieved for query `index`, and how long retrieval took. */
  | { type: "documents"; id: string; index: number; query: string; passages: AgentPassage[]; latency_ms: number }
  /** A fact the model recalled from its own memory (R1-Searcher++ `<internal>`), complete. */
  | { type: "internal"; id: string; text: string }
  /** The final answer (the protocol's extraction). */
  | { type: "answer"; id: string; text: string }
  | {
      type: "done";
      id: string;
      /** Trajectory finish reason (`answer`, `eos`, `length`, `max_searches`, `aborted`, ...). */
      finish: string;
      /** Upstream evaluation label when known (`finished`, `many_retrieve`, `shot_down`, `query_inst_error`). */
      stop_reason: string | null;
      answer: string | null;
      retrievals: number;
      queries: string[];
      usage: AgentUsage;
      timings: AgentTimings;
      warnings: string[];
      error?: string;
    }
  | { type: "error"; id: string; message: string; code?: string };

export type AgentTraceStep =
  | { kind: "reasoning"; text: string }
  | {
      kind: "query";
      /** Index of the query (0-based); -1 while it is still being written. */
      index: number;
      query: string;
      /** Undefined until the documents arrive. */
      passages?: AgentPassage[];
      latency_ms?: number;
    }
  | { kind: "internal"; text: string; /** False while it is still being written. */ complete: boolean }
  | { kind: "answer"; text: string; complete: boolean };

export interface AgentTrace {
  id: string;
  question: string;
  protocol: string;
  model: string;
  steps: AgentTraceStep[];
  answer: string | null;
  retrievals: number;
  queries: string[];
  done: boolean;
  finish: string | null;
  stop_reason: string | null;
  usage: AgentUsage | null;
  timings: AgentTimings | null;
  warnings: string[];
  error: string | null;
}

export function emptyAgentTrace(question = ""): AgentTrace {
  return {
    id: "",
    question,
    protocol: "",
    model: "",
    steps: [],
    answer: null,
    retrievals: 0,
    queries: [],
    done: false,
    finish: null,
    stop_reason: null,
    usage: null,
    timings: null,
    warnings: [],
    error: null,
  };
}

function last<T>(xs: T[]): T | undefined {
  return xs.length > 0 ? xs[xs.length - 1] : undefined;
}

/** The query step still being written (index -1), if it is the last step. */
function draftQuery(trace: AgentTrace): Extract<AgentTraceStep, { kind: "query" }> | undefined {
  const s = last(trace.steps);
  return s && s.kind === "query" && s.index < 0 ? s : undefined;
}

/**
 * Fold one event into the trace (mutates and returns `trace`). Text deltas build the steps live; the `query`,
 * `internal` and `answer` events then fix the final text of the step they close.
 */
export function applyAgentEvent(trace: AgentTrace, ev: AgentTraceEvent): AgentTrace {
  switch (ev.type) {
    case "start":
      trace.id = ev.id;
      trace.question = ev.question;
      trace.protocol = ev.protocol;
      trace.model = ev.model;
      break;
    case "text": {
      const s = last(trace.steps);
      if (ev.segment === "reasoning") {
        if (s && s.kind === "reasoning") s.text += ev.delta;
        else trace.steps.push({ kind: "reasoning", text: ev.delta });
      } else if (ev.segment === "query") {
        const d = draftQuery(trace);
        if (d) d.query += ev.delta;
        else trace.steps.push({ kind: "query", index: -1, query: ev.delta });
      } else {
        if (s && s.kind === ev.segment && !s.complete) s.text += ev.delta;
        else trace.steps.push({ kind: ev.segment, text: ev.delta, complete: false });
      }
      break;
    }
    case "query": {
      const d = draftQuery(trace);
      if (d) {
        d.index = ev.index;
        d.query = ev.query;
      } else {
        trace.steps.push({ kind: "query", index: ev.index, query: ev.query });
      }
      trace.queries.push(ev.query);
      break;
    }
    case "documents": {
      let step = trace.steps.find(
        (s): s is Extract<AgentTraceStep, { kind: "query" }> => s.kind === "query" && s.index === ev.index,
      );
      if (!step) {
        step = { kind: "query", index: ev.index, query: ev.query };
        trace.steps.push(step);
      }
      step.passages = ev.passages;
      step.latency_ms = ev.latency_ms;
      trace.retrievals = Math.max(trace.retrievals, ev.index + 1);
      break;
    }
    case "internal":
    case "answer": {
      const kind = ev.type;
      // The last open step of this kind (a few tags may follow it, e.g. whitespace reasoning) gets the final text.
      let open: Extract<AgentTraceStep, { kind: "internal" | "answer" }> | undefined;
      for (let i = trace.steps.length - 1; i >= 0; i--) {
        const s = trace.steps[i];
        if ((s.kind === "internal" || s.kind === "answer") && s.kind === kind && !s.complete) {
          open = s;
          break;
        }
        if (s.kind !== "reasoning") break;
      }
      if (open) {
        open.text = ev.text;
        open.complete = true;
      } else {
        trace.steps.push({ kind, text: ev.text, complete: true });
      }
      if (kind === "answer") trace.answer = ev.text;
      break;
    }
    case "done":
      trace.done = true;
      trace.finish = ev.finish;
      trace.stop_reason = ev.stop_reason;
      trace.answer = ev.answer;
      trace.retrievals = ev.retrievals;
      trace.queries = ev.queries.slice();
      trace.usage = ev.usage;
      trace.timings = ev.timings;
      trace.warnings = ev.warnings.slice();
      if (ev.error) trace.error = ev.error;
      // A query that never got a closing tag stays a draft; mark it so renderers do not wait for documents.
      for (const s of trace.steps) {
        if ((s.kind === "internal" || s.kind === "answer") && !s.complete) s.complete = true;
      }
      break;
    case "error":
      trace.done = true;
      trace.error = ev.message;
      break;
  }
  return trace;
}

/** Fold a whole event list into a trace. */
export function buildAgentTrace(events: Iterable<AgentTraceEvent>, question = ""): AgentTrace {
  const t = emptyAgentTrace(question);
  for (const ev of events) applyAgentEvent(t, ev);
  return t;
}
