/**
 * A small typed client for the agent server (docs/api.md). It runs in Node 20+ and in browsers: it uses only
 * `fetch`, `ReadableStream` and `TextDecoder`.
 *
 *   const client = new AgentClient({ baseUrl: "http://127.0.0.1:8000", token });
 *   const { answer, trace } = await client.ask("Who was president when Citibank was founded?");
 *   const stream = client.stream("...");
 *   for await (const ev of stream) if (ev.type === "query") console.log("search:", ev.query);
 *   const result = await stream.result();
 *
 * Against a plain OpenAI-compatible server (no trace events) it still works: the answer is built from the content
 * deltas and the trace stays empty.
 */
import {
  applyAgentEvent,
  emptyAgentTrace,
  type AgentTrace,
  type AgentTraceEvent,
  type AgentUsage,
} from "./agent-trace.js";

export interface AgentClientOptions {
  /** Server base URL, e.g. `http://127.0.0.1:8000`; "" = same origin (browser). */
  baseUrl?: string;
  /** Bearer token when the server was started with `--token`. */
  token?: string;
  /** Model name sent in requests (the server answers with its own). */
  model?: string;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

export interface AgentAskOptions {
  maxSearches?: number;
  /** Maximum tokens the model may generate over the whole answer. */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Documents per query. */
  topK?: number;
  /** Server-side time limit, seconds. */
  timeout?: number;
  /** Include the full trajectory (token ids, mask, log-probs) in the trace (non-streaming only). */
  includeTrajectory?: boolean;
  signal?: AbortSignal;
}

export interface AgentAnswer {
  /** The final answer (message content). */
  answer: string;
  /** OpenAI finish reason: "stop" or "length". */
  finishReason: string | null;
  trace: AgentTrace;
  usage: Pick<AgentUsage, "prompt_tokens" | "completion_tokens" | "total_tokens"> | null;
  /** The response text (reasoning, queries, inserted documents, answer) as the model saw it. */
  responseText: string;
  id: string;
  model: string;
  /** Full trajectory when `includeTrajectory` was set. */
  trajectory?: unknown;
}

/** An HTTP or stream error from the server, with the OpenAI error fields. */
export class AgentClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    readonly type: string | null = null,
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = "AgentClientError";
  }
}

/** The `data:` payloads of a server-sent-event stream, in order (comments and other fields skipped). */
export async function* agentSseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let data: string[] = [];
  const takeLine = (line: string): string | null => {
    if (line === "") {
      if (data.length === 0) return null;
      const out = data.join("\n");
      data = [];
      return out;
    }
    if (line.startsWith(":")) return null;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    return null;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === "\r" && buf[nl + 1] === "\n" ? 2 : 1));
        const out = takeLine(line);
        if (out !== null) yield out;
      }
    }
    buf += decoder.decode();
    if (buf !== "") {
      const out = takeLine(buf);
      if (out !== null) yield out;
    }
    const out = takeLine("");
    if (out !== null) yield out;
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => undefined);
  }
}

interface OpenAiErrorBody {
  error?: { message?: string; code?: string | null; type?: string | null } | string;
}

function errorFrom(status: number, body: unknown, fallback: string): AgentClientError {
  const e = (body as OpenAiErrorBody | null)?.error;
  if (typeof e === "string") return new AgentClientError(e, status, null, null, body);
  if (e && typeof e === "object")
    return new AgentClientError(e.message ?? fallback, status, e.code ?? null, e.type ?? null, body);
  return new AgentClientError(fallback, status, null, null, body);
}

/** A streaming answer: iterate it for trace events as they happen; `result()` waits for the end. */
export interface AgentStream extends AsyncIterable<AgentTraceEvent> {
  /** The trace so far (updated as events arrive). */
  readonly trace: AgentTrace;
  /** The answer so far (content deltas). */
  readonly answer: string;
  /** Resolves when the stream ends (drains it if nobody iterates). */
  result(): Promise<AgentAnswer>;
  /** Cancel the request (the server aborts the rollout). */
  abort(): void;
}

export class AgentClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: AgentClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? "").replace(/\/+$/, "");
    const f = opts.fetch ?? (globalThis.fetch as typeof fetch | undefined);
    if (!f) throw new Error("AgentClient needs fetch (Node 18+ or a browser), or pass options.fetch");
    this.fetchImpl = f.bind(globalThis);
  }

  private headers(json: boolean): Record<string, string> {
    return {
      ...(json ? { "content-type": "application/json" } : {}),
      ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
      ...(this.opts.headers ?? {}),
    };
  }

  private body(question: string, o: AgentAskOptions, stream: boolean): string {
    const b: Record<string, unknown> = {
      model: this.opts.model ?? "searchrl",
      messages: [{ role: "user", content: question }],
      stream,
    };
    if (o.maxSearches !== undefined) b.max_searches = o.maxSearches;
    if (o.maxTokens !== undefined) b.max_tokens = o.maxTokens;
    if (o.temperature !== undefined) b.temperature = o.temperature;
    if (o.topP !== undefined) b.top_p = o.topP;
    if (o.seed !== undefined) b.seed = o.seed;
    if (o.topK !== undefined) b.top_k = o.topK;
    if (o.timeout !== undefined) b.timeout = o.timeout;
    if (o.includeTrajectory) b.include_trajectory = true;
    if (stream) b.stream_options = { include_usage: true };
    return JSON.stringify(b);
  }

  private async getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    const res = await this.fetchImpl(this.baseUrl + path, { headers: this.headers(false), signal });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw errorFrom(res.status, body, `HTTP ${res.status} from ${path}`);
    return body as T;
  }

  health(signal?: AbortSignal): Promise<Record<string, unknown>> {
    return this.getJson("/health", signal);
  }

  models(
    signal?: AbortSignal,
  ): Promise<{ object: "list"; data: Array<{ id: string; object: string; [k: string]: unknown }> }> {
    return this.getJson("/v1/models", signal);
  }

  /** Ask and wait for the whole answer (non-streaming request). */
  async ask(question: string, o: AgentAskOptions = {}): Promise<AgentAnswer> {
    const res = await this.fetchImpl(this.baseUrl + "/v1/chat/completions", {
      method: "POST",
      headers: this.headers(true),
      body: this.body(question, o, false),
      signal: o.signal,
    });
    const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (!res.ok || !body) throw errorFrom(res.status, body, `HTTP ${res.status} from /v1/chat/completions`);
    const choice = (
      body.choices as
        Array<{ message?: { content?: string | null; reasoning_content?: string }; finish_reason?: string }> | undefined
    )?.[0];
    const trace: AgentTrace & { response_text?: string; trajectory?: unknown } =
      (body.trace as AgentTrace | undefined) ?? emptyAgentTrace(question);
    const usage = (body.usage as AgentAnswer["usage"]) ?? null;
    return {
      answer: choice?.message?.content ?? "",
      finishReason: choice?.finish_reason ?? null,
      trace,
      usage,
      responseText: trace.response_text ?? choice?.message?.reasoning_content ?? "",
      id: String(body.id ?? ""),
      model: String(body.model ?? ""),
      ...(trace.trajectory !== undefined ? { trajectory: trace.trajectory } : {}),
    };
  }

  /** Ask with streaming: trace events as they happen, then the answer. */
  stream(question: string, o: AgentAskOptions = {}): AgentStream {
    const ac = new AbortController();
    if (o.signal) {
      if (o.signal.aborted) ac.abort(o.signal.reason);
      else o.signal.addEventListener("abort", () => ac.abort(o.signal?.reason), { once: true });
    }
    const trace = emptyAgentTrace(question);
    const state = {
      answer: "",
      responseText: "",
      finishReason: null as string | null,
      usage: null as AgentAnswer["usage"],
      id: "",
      model: "",
    };
    const fetchImpl = this.fetchImpl;
    const url = this.baseUrl + "/v1/chat/completions";
    const init: RequestInit = {
      method: "POST",
      headers: this.headers(true),
      body: this.body(question, o, true),
      signal: ac.signal,
    };

    async function* events(): AsyncGenerator<AgentTraceEvent> {
      const res = await fetchImpl(url, init);
      if (!res.ok || !res.body) {
        const body = await res.json().catch(() => null);
        throw errorFrom(res.status, body, `HTTP ${res.status} from /v1/chat/completions`);
      }
      for await (const data of agentSseData(res.body)) {
        if (data === "[DONE]") break;
        let chunk: Record<string, unknown>;
        try {
          chunk = JSON.parse(data) as Record<string, unknown>;
        } catch {
          throw new AgentClientError(`invalid stream chunk: ${data.slice(0, 200)}`, res.status);
        }
        if (chunk.error) throw errorFrom(res.status, chunk, "stream error");
        if (typeof chunk.id === "string") state.id = chunk.id;
        if (typeof chunk.model === "string") state.model = chunk.model;
        if (chunk.usage) state.usage = chunk.usage as AgentAnswer["usage"];
        const choice = (
          chunk.choices as
            | Array<{
                delta?: { content?: string | null; reasoning_content?: string | null };
                finish_reason?: string | null;
              }>
            | undefined
        )?.[0];
        const te = chunk.trace_event as AgentTraceEvent | undefined;
        if (choice?.delta?.reasoning_content) state.responseText += choice.delta.reasoning_content;
        // With trace events the answer comes from the `answer` event; without, from the content deltas.
        if (choice?.delta?.content && !te) state.answer += choice.delta.content;
        if (choice?.finish_reason) state.finishReason = choice.finish_reason;
        if (te) {
          applyAgentEvent(trace, te);
          if (te.type === "answer") state.answer = te.text;
          if (te.type === "done" && te.answer !== null) state.answer = te.answer;
          yield te;
        }
      }
    }

    let iterating = false;
    let finished: Promise<AgentAnswer> | null = null;
    let resolveDone!: (a: AgentAnswer) => void;
    let rejectDone!: (e: unknown) => void;
    const done = new Promise<AgentAnswer>((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    done.catch(() => undefined);
    const answerOf = (): AgentAnswer => ({
      answer: state.answer,
      finishReason: state.finishReason,
      trace,
      usage: state.usage,
      responseText: state.responseText,
      id: state.id,
      model: state.model,
    });
    async function* wrapped(): AsyncGenerator<AgentTraceEvent> {
      let settled = false;
      try {
        yield* events();
        settled = true;
        resolveDone(answerOf());
      } catch (err) {
        settled = true;
        rejectDone(err);
        throw err;
      } finally {
        if (!settled) {
          // The consumer stopped early: cancel the request and settle `result()`.
          ac.abort(new Error("stream closed by the consumer"));
          rejectDone(new AgentClientError("the stream was closed before it ended", 0, "closed"));
        }
      }
    }
    const gen = wrapped();

    return {
      get trace() {
        return trace;
      },
      get answer() {
        return state.answer;
      },
      [Symbol.asyncIterator]() {
        if (iterating) throw new Error("an AgentStream can be iterated once");
        iterating = true;
        return gen;
      },
      result() {
        if (!iterating && !finished) {
          iterating = true;
          finished = (async () => {
            for await (const _ of gen) void _;
            return done;
          })();
          return finished;
        }
        return done;
      },
      abort() {
        ac.abort(new Error("aborted by the client"));
      },
    };
  }
}

export * from "./agent-trace.js";
