/**
 * The agent server: an OpenAI-compatible chat endpoint in front of a search agent (generate → query → retrieve →
 * insert → continue), which returns the final answer as the message content and the reasoning trace beside it
 * (streamed as SSE in the order things happen), plus the web UI and its JSON data routes.
 *
 * Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`, `GET /api/info`, the data routes of
 * agent-data.ts, and the UI at `/` (agent-ui.ts). Event format: docs/api.md.
 *
 * The server is thin: validation, admission (bounded queue, limits, timeout, auth), then `SearchAgent.run`, whose
 * events it forwards. `createRolloutAgent` (agent-rollout.ts) is the real agent over the rollout engine.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ResponseProtocol } from "../protocol/types.js";
import type { RolloutEvent } from "../rollout/types.js";
import { VERSION } from "../version.js";
import { createServer, errorBody, HttpStatusError, listen, validate } from "./common.js";
import { registerAgentDataRoutes } from "./agent-data.js";
import { AgentEventTranslator } from "./agent-events.js";
import { AgentQueueFullError, AgentRequestQueue } from "./agent-queue.js";
import { applyAgentEvent, emptyAgentTrace, type AgentTrace, type AgentTraceEvent } from "./agent-trace.js";
import { registerAgentUiRoutes } from "./agent-ui.js";

/** Options of one agent run, after the server applied its limits. */
export interface SearchAgentRunOptions {
  /** Aborts on client disconnect or timeout; the agent must stop promptly. */
  signal: AbortSignal;
  /** Maximum retrievals (search calls) of this trajectory. */
  maxSearches: number;
  /** Response-token budget of the trajectory (generated tokens plus inserted documents). */
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Documents per query (retriever top-k). */
  topK?: number;
}

/** What the server calls: a question in, rollout events out (in order, ending with `done` or `error`). */
export interface SearchAgent {
  /** The id `GET /v1/models` lists and responses carry. */
  readonly modelId: string;
  /** The response protocol, used to split generated text into reasoning / query / internal / answer. */
  readonly protocol: ResponseProtocol | null;
  run(question: string, opts: SearchAgentRunOptions): AsyncIterable<RolloutEvent>;
  /** Extra facts for `/health` and `/v1/models` (backend, retriever, ...). */
  describe?(): Record<string, unknown>;
  close(): Promise<void>;
}

export interface AgentLimits {
  /** Default and maximum retrievals per request. */
  maxSearches: number;
  /** Default and maximum response tokens per request (generated tokens plus inserted documents). */
  maxTokens: number;
  /** Default and maximum wall time per request (queue wait included), milliseconds. */
  timeoutMs: number;
  /** Documents per query. */
  topK: number;
}

/** Upstream local-evaluation limits (9 retrievals, 5 documents per query), a response budget and a time limit. */
/** Requests that may wait for a slot by default. */
export const DEFAULT_AGENT_QUEUE_SIZE = 256;

export const DEFAULT_AGENT_LIMITS: AgentLimits = { maxSearches: 9, maxTokens: 8192, timeoutMs: 120_000, topK: 5 };

export interface AgentServerOptions {
  /** The agent; null/absent = a viewer server (`searchrl ui`): UI and data routes only. */
  agent?: SearchAgent | null;
  /** Folder of training runs and evaluation results the UI browses. */
  runsDir?: string | null;
  /** Require `Authorization: Bearer TOKEN` on `/v1/*` and `/api/*` (not on `/health`, `/api/info` and the UI files). */
  token?: string | null;
  /** Requests that run at once (default 1). */
  concurrency?: number;
  /**
   * Requests that may wait for a slot (default 256, so a burst of clients is queued rather than refused); more get 429
   * with a `Retry-After` header.
   */
  queueSize?: number;
  limits?: Partial<AgentLimits>;
  /** Folder of the built UI (default: located next to the package, see agent-ui.ts). */
  uiDir?: string | null;
  /** Origins allowed to call the API from a browser page served elsewhere (CORS); default none. */
  corsOrigins?: string[];
  /** Keep-alive comment interval on idle SSE streams, ms (default 15 s). */
  keepAliveMs?: number;
  logger?: boolean;
}

export interface AgentServerStats {
  requests: number;
  completed: number;
  /** Rollouts aborted because the client went away. */
  aborted: number;
  timeouts: number;
  /** Requests refused with 429. */
  rejected: number;
  errors: number;
}

const TextPart = z.object({ type: z.string(), text: z.string().optional() }).loose();
const ChatMessage = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
    content: z.union([z.string(), z.array(TextPart), z.null()]).optional(),
  })
  .loose();

const ChatBody = z
  .object({
    model: z.string().optional(),
    messages: z.array(ChatMessage).min(1, "at least one message is required"),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullish(),
    max_tokens: z.number().int().positive().nullish(),
    max_completion_tokens: z.number().int().positive().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().gt(0).max(1).nullish(),
    seed: z.number().int().nullish(),
    n: z.literal(1, { message: "only n = 1 is supported" }).nullish(),
    /** Extension: maximum retrievals for this request. */
    max_searches: z.number().int().min(0).nullish(),
    /** Extension: documents per query. */
    top_k: z.number().int().min(1).max(50).nullish(),
    /** Extension: wall-time limit for this request, seconds. */
    timeout: z.number().positive().nullish(),
    /** Extension: include the full trajectory (token ids, mask, log-probs) in the non-streaming trace. */
    include_trajectory: z.boolean().nullish(),
  })
  .loose();
type ChatBody = z.infer<typeof ChatBody>;

/** The question of a chat request: the text of the last user message. */
export function agentQuestionFromMessages(messages: ChatBody["messages"]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role !== "user") continue;
    const c = m.content;
    const text =
      typeof c === "string"
        ? c
        : Array.isArray(c)
          ? c
              .filter((p) => p.type === "text" && typeof p.text === "string")
              .map((p) => p.text)
              .join("\n")
          : "";
    if (text.trim() === "")
      throw new HttpStatusError(
        400,
        `invalid body: messages.${i}.content: the last user message has no text`,
        undefined,
        "invalid_request",
      );
    return text;
  }
  throw new HttpStatusError(
    400,
    'invalid body: messages: no message with role "user" (its text is the question)',
    undefined,
    "invalid_request",
  );
}

function sha(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** OpenAI finish_reason for a trajectory finish. */
export function agentFinishReason(finish: string | null | undefined): "stop" | "length" {
  return finish === "length" || finish === "max_total_tokens" ? "length" : "stop";
}

function newRequestId(): string {
  return "chatcmpl-" + Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
}

interface Admission {
  question: string;
  runOpts: Omit<SearchAgentRunOptions, "signal">;
  timeoutMs: number;
}

function admit(body: ChatBody, limits: AgentLimits): Admission {
  const question = agentQuestionFromMessages(body.messages);
  const over = (name: string, v: number, cap: number) => {
    if (v > cap)
      throw new HttpStatusError(
        400,
        `invalid body: ${name}: ${v} exceeds this server's limit ${cap}`,
        undefined,
        "limit_exceeded",
      );
  };
  const maxSearches = body.max_searches ?? limits.maxSearches;
  over("max_searches", maxSearches, limits.maxSearches);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? limits.maxTokens;
  over(body.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens", maxTokens, limits.maxTokens);
  const topK = body.top_k ?? limits.topK;
  const timeoutMs = body.timeout != null ? Math.round(body.timeout * 1000) : limits.timeoutMs;
  over("timeout", timeoutMs / 1000, limits.timeoutMs / 1000);
  return {
    question,
    timeoutMs,
    runOpts: {
      maxSearches,
      maxTokens,
      topK,
      ...(body.temperature != null ? { temperature: body.temperature } : {}),
      ...(body.top_p != null ? { topP: body.top_p } : {}),
      ...(body.seed != null ? { seed: body.seed } : {}),
    },
  };
}

/** Build the agent server (not listening yet). */
export async function createAgentServer(opts: AgentServerOptions = {}): Promise<FastifyInstance> {
  const agent = opts.agent ?? null;
  const limits: AgentLimits = { ...DEFAULT_AGENT_LIMITS, ...(opts.limits ?? {}) };
  const queue = new AgentRequestQueue(opts.concurrency ?? 1, opts.queueSize ?? DEFAULT_AGENT_QUEUE_SIZE);
  /** Mean time a request holds a slot (moving average, ms): the `Retry-After` estimate of a 429. */
  let serviceMs = 1000;
  const retryAfterS = () =>
    String(Math.min(60, Math.max(1, Math.ceil(((serviceMs / 1000) * (queue.waiting + 1)) / queue.concurrency))));
  const stats: AgentServerStats = { requests: 0, completed: 0, aborted: 0, timeouts: 0, rejected: 0, errors: 0 };
  const started = Date.now();
  const token = opts.token ? sha(opts.token) : null;
  const cors = new Set(opts.corsOrigins ?? []);
  const keepAliveMs = opts.keepAliveMs ?? 15_000;

  /** Abort controllers of the requests in progress: closing the server aborts their rollouts. */
  const inflight = new Set<AbortController>();
  const app = createServer({ errorShape: "openai", logger: opts.logger ?? false, bodyLimit: 4 * 1024 * 1024 });

  const corsHeaders = (req: FastifyRequest): Record<string, string> => {
    const origin = req.headers.origin;
    if (typeof origin !== "string" || !(cors.has(origin) || cors.has("*"))) return {};
    return {
      "access-control-allow-origin": cors.has("*") ? "*" : origin,
      "access-control-allow-headers": "authorization, content-type",
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-max-age": "600",
      vary: "Origin",
    };
  };

  app.addHook("onRequest", async (req, reply) => {
    const h = corsHeaders(req);
    for (const [k, v] of Object.entries(h)) reply.header(k, v);
    if (req.method === "OPTIONS") {
      reply.status(204).send();
      return reply;
    }
    const url = req.url.split("?")[0];
    const guarded = (url.startsWith("/v1/") || url.startsWith("/api/")) && url !== "/api/info";
    if (token && guarded) {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
      if (!m || !timingSafeEqual(sha(m[1].trim()), token)) {
        throw new HttpStatusError(
          401,
          m ? "invalid bearer token" : "missing bearer token: send the header 'Authorization: Bearer <token>'",
          undefined,
          "invalid_api_key",
        );
      }
    }
    return undefined;
  });
  // Preflight requests reach no route otherwise.
  app.options("/*", async (_req, reply) => reply.status(204).send());

  const describe = () => (agent?.describe ? agent.describe() : {});

  app.get("/health", async () => ({
    status: "ok",
    mode: agent ? "agent" : "viewer",
    model: agent?.modelId ?? null,
    protocol: agent?.protocol?.name ?? null,
    version: VERSION,
    uptime_s: Math.round((Date.now() - started) / 1000),
    queue: {
      active: queue.active,
      waiting: queue.waiting,
      concurrency: queue.concurrency,
      max_waiting: queue.maxWaiting,
    },
    stats,
    agent: agent ? describe() : null,
  }));

  app.get("/api/info", async () => ({
    mode: agent ? "agent" : "viewer",
    model: agent?.modelId ?? null,
    protocol: agent?.protocol?.name ?? null,
    auth: token !== null,
    runs: opts.runsDir != null,
    version: VERSION,
    limits: {
      max_searches: limits.maxSearches,
      max_tokens: limits.maxTokens,
      timeout_s: limits.timeoutMs / 1000,
      top_k: limits.topK,
    },
  }));

  app.get("/v1/models", async () => ({
    object: "list",
    data: agent
      ? [
          {
            id: agent.modelId,
            object: "model",
            created: Math.floor(started / 1000),
            owned_by: "searchrl",
            protocol: agent.protocol?.name ?? null,
            agent: describe(),
          },
        ]
      : [],
  }));

  app.post("/v1/chat/completions", async (req, reply) => {
    if (!agent)
      throw new HttpStatusError(
        404,
        "this server has no agent (it was started as a viewer: use `searchrl serve agent`)",
        undefined,
        "no_agent",
      );
    const body = validate(ChatBody, req.body);
    const adm = admit(body, limits);
    stats.requests++;

    const ac = new AbortController();
    inflight.add(ac);
    let clientGone = false;
    let timedOut = false;
    const onClose = () => {
      if (!reply.raw.writableFinished) {
        clientGone = true;
        ac.abort(new Error("client disconnected"));
      }
    };
    reply.raw.on("close", onClose);
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new Error(`request timed out after ${adm.timeoutMs / 1000} s`));
    }, adm.timeoutMs);
    let release: (() => void) | null = null;
    let slotSince = 0;
    try {
      try {
        release = await queue.acquire(ac.signal);
        slotSince = performance.now();
      } catch (err) {
        if (err instanceof AgentQueueFullError) {
          stats.rejected++;
          reply.header("retry-after", retryAfterS());
          throw new HttpStatusError(429, err.message, undefined, "queue_full");
        }
        if (timedOut) {
          // The server was too busy to start it in time: a rate limit (retry later), not a server fault.
          stats.rejected++;
          reply.header("retry-after", retryAfterS());
          throw new HttpStatusError(
            429,
            `server busy: no free slot within the request's time limit (${adm.timeoutMs / 1000} s); retry later`,
            undefined,
            "queue_timeout",
          );
        }
        if (clientGone) {
          stats.aborted++;
          reply.hijack();
          return;
        }
        throw err;
      }
      const run: RunContext = {
        agent,
        question: adm.question,
        runOpts: { ...adm.runOpts, signal: ac.signal },
        body,
        timeoutMs: adm.timeoutMs,
        state: {
          get clientGone() {
            return clientGone;
          },
          get timedOut() {
            return timedOut;
          },
        },
      };
      if (body.stream) await streamCompletion(reply, run, stats, corsHeaders(req), keepAliveMs);
      else return await jsonCompletion(reply, run, stats);
    } finally {
      clearTimeout(timer);
      reply.raw.off("close", onClose);
      inflight.delete(ac);
      if (release) serviceMs = 0.8 * serviceMs + 0.2 * (performance.now() - slotSince);
      release?.();
    }
  });

  app.addHook("preClose", async () => {
    for (const ac of inflight) ac.abort(new Error("the server is shutting down"));
  });

  if (opts.runsDir != null) registerAgentDataRoutes(app, { runsDir: opts.runsDir });
  else
    app.get("/api/*", async (req) => {
      throw new HttpStatusError(
        404,
        `no route GET ${req.url} (this server was started without --runs)`,
        undefined,
        "no_runs",
      );
    });
  await registerAgentUiRoutes(app, { uiDir: opts.uiDir ?? null });

  return app;
}

interface RunContext {
  agent: SearchAgent;
  question: string;
  runOpts: SearchAgentRunOptions;
  body: ChatBody;
  timeoutMs: number;
  state: { readonly clientGone: boolean; readonly timedOut: boolean };
}

async function jsonCompletion(reply: FastifyReply, run: RunContext, stats: AgentServerStats) {
  const id = newRequestId();
  const created = Math.floor(Date.now() / 1000);
  const tr = new AgentEventTranslator(run.agent.protocol, run.agent.modelId);
  const trace = emptyAgentTrace(run.question);
  let trajectory: unknown = null;
  let failure: string | null = null;
  try {
    for await (const ev of run.agent.run(run.question, run.runOpts)) {
      if (ev.type === "done") trajectory = ev.trajectory;
      for (const te of tr.translate(ev).events) {
        applyAgentEvent(trace, te);
        if (te.type === "error") failure = te.message;
      }
    }
  } catch (err) {
    if (!run.state.clientGone && !run.state.timedOut) failure = err instanceof Error ? err.message : String(err);
  }
  if (run.state.clientGone) {
    stats.aborted++;
    reply.hijack();
    reply.raw.destroy();
    return;
  }
  const traceOut = {
    ...trace,
    response_text: tr.responseText,
    ...(run.body.include_trajectory && trajectory ? { trajectory } : {}),
  };
  if (run.state.timedOut) {
    stats.timeouts++;
    return reply
      .status(504)
      .send(
        errorBody("openai", 504, `request timed out after ${run.timeoutMs / 1000} s`, { trace: traceOut }, "timeout"),
      );
  }
  if (failure !== null || trace.finish === "error" || !trace.done) {
    stats.errors++;
    const msg = failure ?? trace.error ?? "the agent ended without a result";
    return reply.status(502).send(errorBody("openai", 502, `agent failed: ${msg}`, { trace: traceOut }, "agent_error"));
  }
  stats.completed++;
  const usage = trace.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, inserted_tokens: 0 };
  return reply.send({
    id,
    object: "chat.completion",
    created,
    model: run.agent.modelId,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: trace.answer ?? "", reasoning_content: tr.responseText },
        finish_reason: agentFinishReason(trace.finish),
      },
    ],
    usage: {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.total_tokens,
    },
    trace: traceOut,
  });
}

async function streamCompletion(
  reply: FastifyReply,
  run: RunContext,
  stats: AgentServerStats,
  extraHeaders: Record<string, string>,
  keepAliveMs: number,
): Promise<void> {
  const id = newRequestId();
  const created = Math.floor(Date.now() / 1000);
  const model = run.agent.modelId;
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    // One stream per connection: the socket closes with the stream, so a server shutdown never waits on it.
    connection: "close",
    "x-accel-buffering": "no",
    ...extraHeaders,
  });
  const send = (obj: unknown) => {
    if (!res.destroyed && !res.writableEnded) res.write(`data: ${JSON.stringify(obj)}\n\n`);
  };
  const chunk = (delta: Record<string, unknown>, traceEvent?: AgentTraceEvent, finishReason: string | null = null) =>
    send({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
      ...(traceEvent ? { trace_event: traceEvent } : {}),
    });
  const ping = setInterval(() => {
    if (!res.destroyed && !res.writableEnded) res.write(": keep-alive\n\n");
  }, keepAliveMs);
  ping.unref();

  chunk({ role: "assistant", content: "" });
  const tr = new AgentEventTranslator(run.agent.protocol, model);
  let finish: string | null = null;
  let usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null = null;
  let failure: string | null = null;
  try {
    for await (const ev of run.agent.run(run.question, run.runOpts)) {
      if (run.state.clientGone) break;
      const { events, responseDelta } = tr.translate(ev);
      let pendingReasoning = responseDelta;
      if (events.length === 0 && pendingReasoning !== "") chunk({ reasoning_content: pendingReasoning });
      for (const te of events) {
        const delta: Record<string, unknown> = {};
        if (pendingReasoning !== "") {
          delta.reasoning_content = pendingReasoning;
          pendingReasoning = "";
        }
        if (te.type === "answer") delta.content = te.text;
        if (te.type === "done") {
          finish = te.finish;
          usage = {
            prompt_tokens: te.usage.prompt_tokens,
            completion_tokens: te.usage.completion_tokens,
            total_tokens: te.usage.total_tokens,
          };
          if (te.finish === "error") failure = te.error ?? "backend or retriever error";
        }
        if (te.type === "error") failure = te.message;
        chunk(delta, te);
      }
    }
  } catch (err) {
    if (!run.state.clientGone && !run.state.timedOut) failure = err instanceof Error ? err.message : String(err);
  } finally {
    clearInterval(ping);
  }
  if (run.state.clientGone) {
    stats.aborted++;
    res.destroy();
    return;
  }
  if (run.state.timedOut) {
    stats.timeouts++;
    send(errorBody("openai", 504, `request timed out after ${run.timeoutMs / 1000} s`, undefined, "timeout"));
  } else if (failure !== null || finish === null) {
    stats.errors++;
    send(
      errorBody(
        "openai",
        502,
        `agent failed: ${failure ?? "the agent ended without a result"}`,
        undefined,
        "agent_error",
      ),
    );
  } else {
    stats.completed++;
    chunk({}, undefined, agentFinishReason(finish));
    if (run.body.stream_options?.include_usage && usage)
      send({ id, object: "chat.completion.chunk", created, model, choices: [], usage });
  }
  res.write("data: [DONE]\n\n");
  res.end();
}

export interface RunningAgentServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Build and listen (port 0 = ephemeral). `close` stops the server; it does not close the agent. */
export async function startAgentServer(
  opts: AgentServerOptions & { host?: string; port?: number } = {},
): Promise<RunningAgentServer> {
  const app = await createAgentServer(opts);
  const url = await listen(app, opts.host ?? "127.0.0.1", opts.port ?? 0);
  return { url, app, close: () => app.close() };
}

// The rest of the agent server's public API (the client and the trace types come from agent-client.ts).
export { createRolloutAgent, RolloutAgent, type RolloutAgentOptions } from "./agent-rollout.js";
export {
  AgentRunsStore,
  agentCompareRecords,
  agentRecordMatches,
  registerAgentDataRoutes,
  type AgentDataOptions,
  type AgentResultsSummary,
  type AgentRunSummary,
} from "./agent-data.js";
export {
  agentRecordFromResult,
  agentRecordFromSample,
  traceStepsFromResponse as agentTraceStepsFromResponse,
  type AgentTraceRecord,
  type ProtocolResolver as AgentProtocolResolver,
} from "./agent-views.js";
export {
  AgentEventTranslator,
  agentTrajectoryUsage,
  toAgentPassage,
  type TranslatedEvent as AgentTranslatedEvent,
} from "./agent-events.js";
export { AgentQueueFullError, AgentRequestQueue } from "./agent-queue.js";
export {
  agentPackageRoot,
  loadAgentUi,
  registerAgentUiRoutes,
  type AgentUiAsset,
  type AgentUiBundle,
} from "./agent-ui.js";
