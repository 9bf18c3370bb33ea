/**
 * A chat backend over any Vercel AI SDK language model (`generateText` / `streamText`): OpenAI chat completions,
 * Anthropic messages, Gemini, and OpenAI-compatible chat servers (vLLM, SGLang, Ollama) through the providers' own
 * packages, or a model the caller built. Retries (429/5xx, `retry-after` honoured) are the SDK's; API keys live in the
 * provider objects and are redacted from every message this backend writes.
 */
import {
  APICallError,
  generateText,
  jsonSchema,
  RetryError,
  streamText,
  type LanguageModel,
  type ModelMessage,
} from "ai";
import { redact } from "../../util/http.js";
import { Semaphore } from "../../util/concurrency.js";
import type { Tokenizer } from "../../util/types.js";
import { StopStringMatcher } from "../stop.js";
import { TextOnlyTokenizer } from "../text-tokenizer.js";
import type { GenerateRequest, GenerateResult } from "../types.js";
import type {
  ChatBackend,
  ChatFinishReason,
  ChatMessage,
  ChatRequest,
  ChatResult,
  ChatResultToolCall,
  ChatSearchMode,
  ChatUsage,
} from "./types.js";

export interface AiSdkChatBackendOptions {
  /** An AI SDK language model, e.g. `createOpenAI({ apiKey }).chat("gpt-4o-mini")`. */
  model: LanguageModel;
  /** Shown name (default `provider:modelId`). */
  name?: string;
  /** Provider label (default: the model's `provider` field, else "custom"). */
  provider?: string;
  /** Model id (default: the model's `modelId`, else the string model). */
  modelId?: string;
  /** Default search mode of rollouts with this backend (default "protocol"). */
  searchMode?: ChatSearchMode;
  /** Calls in flight at once (default 8). */
  maxConcurrency?: number;
  /** Retries of a failed call (429, 5xx, network), the SDK's exponential backoff honouring retry-after (default 4). */
  maxRetries?: number;
  /** Per-call timeout in ms (default 300 s). */
  timeoutMs?: number;
  /**
   * Stop strings: "server" sends them (and still cuts client-side if the server ignored them), "client" never sends
   * them (for models that reject `stop`), "auto" sends them and switches to "client" when the server refuses (default).
   */
  stopMode?: "auto" | "server" | "client";
  /** Secrets (API keys) to redact from messages, in addition to the key variables of the known providers. */
  secrets?: string[];
  /** Called once per distinct warning. */
  onWarning?: (message: string) => void;
}

/** Environment variables whose values are never written into a message. */
const KEY_VARIABLES = [
  "OPENAI_API_KEY",
  "ANTHROPIC_API_KEY",
  "GOOGLE_GENERATIVE_AI_API_KEY",
  "GEMINI_API_KEY",
  "OLLAMA_API_KEY",
  "SEARCHRL_LLM_API_KEY",
];

function mapFinish(r: string | undefined): ChatFinishReason {
  switch (r) {
    case "stop":
    case "length":
    case "tool-calls":
    case "content-filter":
      return r;
    default:
      return "other";
  }
}

function num(x: unknown): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

function usageOf(u: { inputTokens?: number; outputTokens?: number; totalTokens?: number } | undefined): ChatUsage {
  const inputTokens = num(u?.inputTokens);
  const outputTokens = num(u?.outputTokens);
  const total = num(u?.totalTokens);
  return {
    inputTokens,
    outputTokens,
    totalTokens: total ?? (inputTokens !== null && outputTokens !== null ? inputTokens + outputTokens : null),
  };
}

/** A cost the provider reported: `usage.cost` / `cost` in the provider metadata or the raw response body. */
export function reportedCost(...sources: unknown[]): number | null {
  for (const src of sources) {
    if (!src || typeof src !== "object") continue;
    const o = src as Record<string, unknown>;
    const direct = num(o.cost) ?? num((o.usage as Record<string, unknown> | undefined)?.cost);
    if (direct !== null) return direct;
    for (const v of Object.values(o)) {
      if (!v || typeof v !== "object") continue;
      const inner = v as Record<string, unknown>;
      const c = num(inner.cost) ?? num((inner.usage as Record<string, unknown> | undefined)?.cost);
      if (c !== null) return c;
    }
  }
  return null;
}

function errorText(err: unknown): string {
  if (RetryError.isInstance(err)) {
    const last = err.lastError;
    return `${err.errors.length} attempts failed; last: ${errorText(last)}`;
  }
  if (APICallError.isInstance(err)) {
    const body = typeof err.responseBody === "string" ? err.responseBody.slice(0, 300) : "";
    return `HTTP ${err.statusCode ?? "?"}: ${err.message}${body && !err.message.includes(body) ? ` (${body})` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Does this error say the server does not take stop sequences? */
function refusesStop(err: unknown): boolean {
  const e = RetryError.isInstance(err) ? err.lastError : err;
  if (!APICallError.isInstance(e) || e.statusCode !== 400) return false;
  const text = `${e.message} ${typeof e.responseBody === "string" ? e.responseBody : ""}`;
  return /\bstop/i.test(text) && /(unsupported|not supported|unrecognized|unknown|not allowed|invalid)/i.test(text);
}

function toModelMessages(messages: readonly ChatMessage[]): { system?: string; messages: ModelMessage[] } {
  let system: string | undefined;
  const out: ModelMessage[] = [];
  messages.forEach((m, i) => {
    switch (m.role) {
      case "system":
        if (i === 0) system = m.content;
        else out.push({ role: "system", content: m.content });
        break;
      case "user":
        out.push({ role: "user", content: m.content });
        break;
      case "assistant": {
        if (!m.toolCalls || m.toolCalls.length === 0) {
          out.push({ role: "assistant", content: m.content });
          break;
        }
        out.push({
          role: "assistant",
          content: [
            ...(m.content ? [{ type: "text" as const, text: m.content }] : []),
            ...m.toolCalls.map((c) => ({
              type: "tool-call" as const,
              toolCallId: c.id,
              toolName: c.name,
              // A malformed call is sent back as an empty object (providers require an object); the error is in the result.
              input: c.input !== null && typeof c.input === "object" && !Array.isArray(c.input) ? c.input : {},
            })),
          ],
        });
        break;
      }
      case "tool": {
        // Consecutive tool results go into one tool message (one per assistant turn).
        const part = {
          type: "tool-result" as const,
          toolCallId: m.toolCallId,
          toolName: m.toolName,
          output: m.isError
            ? { type: "error-text" as const, value: m.content }
            : { type: "text" as const, value: m.content },
        };
        const last = out[out.length - 1];
        if (last && last.role === "tool") last.content.push(part);
        else out.push({ role: "tool", content: [part] });
        break;
      }
    }
  });
  return { system, messages: out };
}

export class AiSdkChatBackend implements ChatBackend {
  readonly kind = "chat" as const;
  readonly name: string;
  readonly provider: string;
  readonly modelId: string;
  readonly searchMode: ChatSearchMode;
  readonly tokenizer: Tokenizer = new TextOnlyTokenizer();
  readonly maxConcurrency: number;
  private readonly sem: Semaphore;
  private stopMode: "auto" | "server" | "client";
  private readonly secrets: string[];
  private readonly warned = new Set<string>();

  constructor(private readonly opts: AiSdkChatBackendOptions) {
    const m = opts.model;
    const fromModel = typeof m === "string" ? { provider: "gateway", modelId: m } : m;
    this.provider = opts.provider ?? fromModel.provider?.split(".")[0] ?? "custom";
    this.modelId = opts.modelId ?? fromModel.modelId ?? "model";
    this.secrets = [
      ...(opts.secrets ?? []),
      ...KEY_VARIABLES.map((k) => process.env[k]).filter((v): v is string => !!v),
    ];
    this.name = this.clean(opts.name ?? `${this.provider}:${this.modelId}`);
    this.searchMode = opts.searchMode ?? "protocol";
    this.maxConcurrency = Math.max(1, opts.maxConcurrency ?? 8);
    this.sem = new Semaphore(this.maxConcurrency);
    this.stopMode = opts.stopMode ?? "auto";
  }

  /** Redact API keys. */
  clean(s: string): string {
    return redact(s, this.secrets);
  }

  private warn(msg: string, into: string[]): void {
    into.push(msg);
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.opts.onWarning?.(msg);
  }

  async generate(_req: GenerateRequest): Promise<GenerateResult> {
    throw new Error(
      `${this.name} is a chat backend: it takes messages, not a raw token prompt, and returns no token ids. ` +
        "Run it through the rollout engine (searchrl eval, serve agent, runRollouts); training needs a token-in/token-out backend.",
    );
  }

  async close(): Promise<void> {}

  async chat(req: ChatRequest): Promise<ChatResult> {
    const release = await this.sem.acquire();
    const t0 = performance.now();
    const warnings: string[] = [];
    try {
      for (;;) {
        const clientStops = this.stopMode === "client";
        try {
          const r = await this.callOnce(req, clientStops, warnings);
          if (this.stopMode === "auto" && req.params.stop.length > 0) this.stopMode = "server";
          r.backendMs = performance.now() - t0;
          return r;
        } catch (err) {
          if (req.signal?.aborted) throw req.signal.reason ?? err;
          if (!clientStops && this.stopMode === "auto" && req.params.stop.length > 0 && refusesStop(err)) {
            this.stopMode = "client";
            this.warn(`${this.name}: the server refuses stop sequences; matching them client-side`, warnings);
            continue;
          }
          throw new Error(`${this.name}: ${this.clean(errorText(err))}`);
        }
      }
    } finally {
      release();
    }
  }

  private settings(req: ChatRequest, clientStops: boolean) {
    const { system, messages } = toModelMessages(req.messages);
    const p = req.params;
    const tools =
      req.tools && req.tools.length > 0
        ? Object.fromEntries(
            req.tools.map((t) => [
              t.name,
              { description: t.description, inputSchema: jsonSchema(t.parameters as Parameters<typeof jsonSchema>[0]) },
            ]),
          )
        : undefined;
    return {
      model: this.opts.model,
      ...(system !== undefined ? { system } : {}),
      messages,
      ...(tools ? { tools } : {}),
      maxOutputTokens: p.maxTokens,
      temperature: p.temperature,
      // top-p only matters when sampling; several providers refuse temperature and top-p together.
      ...(p.temperature > 0 && p.topP !== undefined && p.topP < 1 ? { topP: p.topP } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      ...(!clientStops && p.stop.length > 0 ? { stopSequences: [...p.stop] } : {}),
      maxRetries: this.opts.maxRetries ?? 4,
      abortSignal: req.signal,
      timeout: this.opts.timeoutMs ?? 300_000,
    };
  }

  private async callOnce(req: ChatRequest, clientStops: boolean, warnings: string[]): Promise<ChatResult> {
    const matcher = new StopStringMatcher(req.params.stop);
    let text = "";
    let finish: ChatFinishReason;
    let usage: ChatUsage;
    let cost: number | null;
    let providerStop: string | null = null;
    let calls: ChatResultToolCall[];
    let cutByClient: string | null = null;
    const settings = this.settings(req, clientStops);
    if (!req.onText) {
      const r = await generateText(settings);
      text = r.text;
      finish = mapFinish(r.finishReason);
      usage = usageOf(r.usage);
      cost = reportedCost(r.providerMetadata, r.response?.body);
      providerStop = stopFromMetadata(r.providerMetadata);
      calls = r.toolCalls.map((c) => toolCallOf(c));
      for (const w of r.warnings ?? []) this.warn(`${this.name}: ${sdkWarningText(w)}`, warnings);
    } else {
      const local = new AbortController();
      const signal = req.signal ? AbortSignal.any([req.signal, local.signal]) : local.signal;
      const s = streamText({ ...settings, abortSignal: signal });
      let emitted = 0;
      finish = "other";
      let streamUsage: ChatUsage | null = null;
      const streamed: ChatResultToolCall[] = [];
      for await (const part of s.fullStream) {
        if (part.type === "text-delta") {
          const before = text.length;
          text += part.text;
          const m = clientStops ? matcher.find(text, before) : null;
          if (m) {
            text = text.slice(0, m.index);
            cutByClient = m.stop;
            local.abort();
            break;
          }
          const upto = matcher.safeLength(text);
          if (upto > emitted) {
            req.onText(text.slice(emitted, upto));
            emitted = upto;
          }
        } else if (part.type === "tool-call" || part.type === "tool-error") {
          // An invalid call comes as a tool-call marked invalid and/or a tool-error: one entry per call id.
          const c = toolCallOf(part.type === "tool-error" ? { ...part, invalid: true } : part);
          const seen = streamed.find((x) => x.id === c.id);
          if (!seen) streamed.push(c);
          else if (c.error !== undefined && seen.error === undefined) seen.error = c.error;
        } else if (part.type === "finish-step") {
          providerStop = stopFromMetadata(part.providerMetadata) ?? providerStop;
        } else if (part.type === "finish") {
          finish = mapFinish(part.finishReason);
          streamUsage = usageOf(part.totalUsage);
        } else if (part.type === "error") {
          throw part.error;
        }
      }
      calls = streamed;
      if (cutByClient !== null) {
        finish = "stop";
        usage = { inputTokens: null, outputTokens: null, totalTokens: null };
        cost = null;
      } else {
        usage = streamUsage ?? { inputTokens: null, outputTokens: null, totalTokens: null };
        cost = reportedCost(await s.providerMetadata);
        for (const w of (await s.warnings) ?? []) this.warn(`${this.name}: ${sdkWarningText(w)}`, warnings);
      }
      if (text.length > emitted && cutByClient === null) {
        // The held-back tail: cut at a stop string the server did not apply, else flush.
        const m = matcher.find(text, 0);
        const end = m ? m.index : text.length;
        if (end > emitted) req.onText(text.slice(emitted, end));
      }
    }
    let stopString = cutByClient ?? providerStop;
    if (cutByClient === null) {
      // A server that ignored (or was not sent) the stop strings: cut at the earliest one.
      const m = matcher.find(text, 0);
      if (m) {
        text = text.slice(0, m.index);
        stopString = m.stop;
        finish = "stop";
        calls = [];
        if (!clientStops)
          this.warn(`${this.name}: the server did not apply the stop strings; cut client-side`, warnings);
      }
    }
    if (stopString !== null && !req.params.stop.includes(stopString)) stopString = null;
    return { text, toolCalls: calls, finishReason: finish, stopString, usage, costUsd: cost, backendMs: 0, warnings };
  }
}

/** An AI SDK call warning as one line. */
function sdkWarningText(w: unknown): string {
  const o = (w ?? {}) as { type?: string; feature?: string; details?: string; message?: string };
  if (o.type === "unsupported" || o.type === "unsupported-setting" || o.type === "unsupported-tool")
    return `"${o.feature ?? "a setting"}" is not supported${o.details ? `: ${o.details}` : ""}`;
  if (o.type === "compatibility")
    return `"${o.feature ?? "a feature"}" runs in a compatibility mode${o.details ? `: ${o.details}` : ""}`;
  return o.message ?? JSON.stringify(w);
}

function stopFromMetadata(meta: unknown): string | null {
  if (!meta || typeof meta !== "object") return null;
  for (const v of Object.values(meta as Record<string, unknown>)) {
    if (v && typeof v === "object") {
      const s = (v as Record<string, unknown>).stopSequence;
      if (typeof s === "string" && s.length > 0) return s;
    }
  }
  return null;
}

function toolCallOf(c: {
  toolCallId: string;
  toolName: string;
  input: unknown;
  invalid?: boolean;
  error?: unknown;
}): ChatResultToolCall {
  const out: ChatResultToolCall = { id: c.toolCallId, name: c.toolName, input: c.input };
  if (c.invalid) out.error = c.error instanceof Error ? c.error.message : String(c.error ?? "invalid tool call");
  return out;
}

/** A chat backend over an AI SDK model. */
export function createAiSdkChatBackend(opts: AiSdkChatBackendOptions): AiSdkChatBackend {
  return new AiSdkChatBackend(opts);
}
