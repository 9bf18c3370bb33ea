/**
 * OpenAI-compatible `/v1/completions` backend (vLLM, SGLang, llama.cpp server, Ollama, ...).
 *
 * Token-in/token-out where the server supports it: the prompt goes out as a list of token ids and the sampled ids come
 * back through vLLM's `return_token_ids` (`choice.token_ids`) or `return_tokens_as_token_ids` (`"token_id:N"` strings in
 * `logprobs.tokens`), or llama.cpp's `logprobs.content[].id`. A server that rejects id prompts, or returns only text,
 * is used text-only: the prompt goes out as text and the returned text is re-tokenized (`tokenIdsExact: false`, with
 * a warning on the result). Without a tokenizer the backend is text-only from the start (ids are UTF-8 bytes).
 *
 * Which stop string ended a segment comes from vLLM's `stop_reason` or SGLang's `matched_stop`. For a server that reports
 * neither, stop strings are matched client-side on a streamed response, which is then closed (`stopMode: "client"`).
 */
import { HttpError, redact } from "../util/http.js";
import { Semaphore } from "../util/concurrency.js";
import type { Tokenizer } from "../util/types.js";
import type { FinishReason, GenerateRequest, GenerateResult, LLMBackend, SamplingParams } from "./types.js";
import { StopStringMatcher } from "./stop.js";
import { TextOnlyTokenizer, isTextOnlyTokenizer } from "./text-tokenizer.js";

export interface OpenAIBackendOptions {
  /** Server URL: `http://host:port`, `http://host:port/v1` or the full `/v1/completions` endpoint. */
  baseUrl: string;
  /** The `model` field of requests. */
  model: string;
  /** The model's tokenizer; without one the backend is text-only (a warning is recorded on every result). */
  tokenizer?: Tokenizer;
  /** API key (sent as a bearer token); default: env `SEARCHRL_LLM_API_KEY`, then `OPENAI_API_KEY`. Never logged. */
  apiKey?: string;
  /** Send token-id prompts and read token ids back: "auto" (try, fall back on refusal), "on" (fail instead), "off". */
  tokenIds?: "auto" | "on" | "off";
  /** Who matches stop strings: the server (needs `stop_reason`/`matched_stop` in responses), the client, or auto-detect. */
  stopMode?: "auto" | "server" | "client";
  /** Stream responses when the caller passes `onText` (default true). */
  stream?: boolean;
  /** Requests in flight at once (default 32). */
  maxConcurrency?: number;
  /** Per-attempt timeout in ms (default 300 s). */
  timeoutMs?: number;
  /** Attempts per call for 408/429/5xx, network errors and timeouts (default 4). */
  attempts?: number;
  /** First backoff in ms, doubled per retry with jitter (default 500). */
  backoffMs?: number;
  /** Extra fields merged into every request body (e.g. `{"repetition_penalty": 1.0}`). */
  extraBody?: Record<string, unknown>;
  /** Called once per distinct warning (capability fallbacks). */
  onWarning?: (message: string) => void;
}

/** Parsed piece of a completion response (one response, or the sum of a stream's chunks). */
interface ChoiceData {
  text: string;
  /** Sampled ids when the server returned them. */
  ids: number[] | null;
  logprobs: Array<number | null> | null;
  finishReason: string | null;
  /** vLLM `stop_reason` / SGLang `matched_stop`: string stop, number = stop token id, null = EOS; undefined = not reported. */
  stopReason: string | number | null | undefined;
}

class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

function endpointFor(baseUrl: string): string {
  const u = baseUrl.replace(/\/+$/, "");
  if (/\/completions$/.test(u)) return u;
  if (/\/v1$/.test(u)) return `${u}/completions`;
  return `${u}/v1/completions`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error("aborted"));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason ?? new Error("aborted"));
      },
      { once: true },
    );
  });
}

const TOKEN_ID_RE = /^token_id:(-?\d+)$/;
/** Most non-SSE text kept from a stream response to read it as one JSON completion instead (chars). */
const FOREIGN_CAP = 64 * 1024 * 1024;

/** Extract ids/logprobs from the shapes servers use; `null` ids when the response carries none. */
function parseChoice(choice: Record<string, unknown>): ChoiceData {
  const text = typeof choice.text === "string" ? choice.text : "";
  let ids: number[] | null = null;
  let logprobs: Array<number | null> | null = null;
  if (Array.isArray(choice.token_ids) && choice.token_ids.every((x) => typeof x === "number")) {
    ids = choice.token_ids as number[];
  }
  const lp = choice.logprobs as Record<string, unknown> | null | undefined;
  if (lp && typeof lp === "object") {
    if (Array.isArray(lp.token_logprobs)) {
      logprobs = (lp.token_logprobs as unknown[]).map((x) => (typeof x === "number" ? x : null));
      if (ids === null && Array.isArray(lp.tokens)) {
        const parsed = (lp.tokens as unknown[]).map((t) => (typeof t === "string" ? TOKEN_ID_RE.exec(t) : null));
        if (parsed.length > 0 && parsed.every((m) => m !== null)) ids = parsed.map((m) => Number(m![1]));
      }
    } else if (Array.isArray(lp.content)) {
      // llama.cpp server: logprobs.content = [{id, token, logprob, ...}]
      const content = lp.content as Array<Record<string, unknown>>;
      logprobs = content.map((c) => (typeof c.logprob === "number" ? c.logprob : null));
      if (ids === null && content.length > 0 && content.every((c) => typeof c.id === "number"))
        ids = content.map((c) => c.id as number);
    }
  }
  let stopReason: string | number | null | undefined = undefined;
  if ("stop_reason" in choice) stopReason = choice.stop_reason as string | number | null;
  else if ("matched_stop" in choice) stopReason = choice.matched_stop as string | number | null;
  const finishReason = typeof choice.finish_reason === "string" ? choice.finish_reason : null;
  return { text, ids, logprobs, finishReason, stopReason };
}

export class OpenAIBackend implements LLMBackend {
  readonly name: string;
  readonly tokenizer: Tokenizer;
  readonly maxConcurrency: number;
  private readonly endpoint: string;
  /** The endpoint as shown in messages (API key redacted). */
  private readonly shownEndpoint: string;
  private readonly apiKey: string | undefined;
  private readonly sem: Semaphore;
  private readonly textOnlyTokenizer: boolean;
  /** Current capability state (changes once on fallback). */
  private idPrompts: boolean;
  private stopMode: "auto" | "server" | "client";
  private readonly warned = new Set<string>();

  constructor(private readonly opts: OpenAIBackendOptions) {
    this.endpoint = endpointFor(opts.baseUrl);
    this.apiKey = opts.apiKey ?? process.env.SEARCHRL_LLM_API_KEY ?? process.env.OPENAI_API_KEY;
    this.name = redact(`openai:${opts.baseUrl}#${opts.model}`, [this.apiKey]);
    this.shownEndpoint = redact(this.endpoint, [this.apiKey]);
    this.tokenizer = opts.tokenizer ?? new TextOnlyTokenizer();
    this.textOnlyTokenizer = isTextOnlyTokenizer(this.tokenizer);
    this.maxConcurrency = opts.maxConcurrency ?? 32;
    this.sem = new Semaphore(this.maxConcurrency);
    const mode = opts.tokenIds ?? "auto";
    this.idPrompts = mode !== "off" && !this.textOnlyTokenizer;
    if (mode === "on" && this.textOnlyTokenizer) throw new Error("OpenAIBackend: tokenIds 'on' needs a tokenizer");
    this.stopMode = opts.stopMode ?? "auto";
  }

  private warn(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.opts.onWarning?.(msg);
  }

  async close(): Promise<void> {}

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const release = await this.sem.acquire();
    const t0 = performance.now();
    try {
      const result = await this.generateWithFallbacks(req);
      result.backendMs = performance.now() - t0;
      return result;
    } finally {
      release();
    }
  }

  private async generateWithFallbacks(req: GenerateRequest): Promise<GenerateResult> {
    for (;;) {
      const useIds = this.idPrompts;
      const clientStops = this.stopMode === "client" && req.params.stop.length > 0;
      let data: ChoiceData;
      try {
        data = await this.call(req, useIds, clientStops);
      } catch (err) {
        if (
          useIds &&
          (this.opts.tokenIds ?? "auto") === "auto" &&
          err instanceof HttpError &&
          [400, 415, 422].includes(err.status)
        ) {
          this.idPrompts = false;
          this.warn(
            `${this.name}: the server refused a token-id prompt (HTTP ${err.status}); sending text prompts from now on`,
          );
          continue;
        }
        throw err;
      }
      if (!clientStops && data.finishReason === "stop" && data.stopReason === undefined) {
        // The server does not say which stop string matched (or whether it was EOS).
        if (this.stopMode === "auto") {
          this.stopMode = "client";
          this.warn(
            `${this.name}: the server reports no stop_reason; matching stop strings client-side on streamed responses`,
          );
        }
        if (this.stopMode === "client") {
          // Also when a concurrent call switched the mode while this one was in flight: its text may end at a stop
          // string the server cut without saying so, so it cannot be reported as EOS.
          if (req.params.stop.length > 0) continue; // re-issue this call with client-side stop matching
        } else if (this.stopMode === "server") {
          this.warn(`${this.name}: stop reason not reported by the server; treating finish "stop" as EOS`);
        }
      } else if (this.stopMode === "auto" && data.stopReason !== undefined) {
        this.stopMode = "server";
      }
      return this.toResult(req, data, useIds, clientStops);
    }
  }

  private buildBody(
    req: GenerateRequest,
    useIds: boolean,
    clientStops: boolean,
    stream: boolean,
  ): Record<string, unknown> {
    const p: SamplingParams = req.params;
    const body: Record<string, unknown> = {
      model: this.opts.model,
      prompt: useIds ? Array.from(req.tokens) : req.text,
      max_tokens: p.maxTokens,
      temperature: p.temperature,
      top_p: p.topP,
      n: 1,
      echo: false,
      stream,
    };
    if (p.topK && p.topK > 0) body.top_k = p.topK;
    if (p.seed !== undefined) body.seed = p.seed;
    if (!clientStops && p.stop.length > 0) body.stop = [...p.stop];
    if (p.logprobs !== false) body.logprobs = 1;
    if (useIds) {
      body.return_token_ids = true;
      body.return_tokens_as_token_ids = true;
    }
    return { ...body, ...this.opts.extraBody };
  }

  /** One logical call with retries on transient failures. */
  private async call(req: GenerateRequest, useIds: boolean, clientStops: boolean): Promise<ChoiceData> {
    const stream = clientStops || (req.onText !== undefined && this.opts.stream !== false);
    const attempts = Math.max(1, this.opts.attempts ?? 4);
    let lastErr: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) {
        const base = (this.opts.backoffMs ?? 500) * 2 ** (i - 1);
        const wait =
          lastErr instanceof RetryableError && lastErr.retryAfterMs !== null
            ? Math.min(lastErr.retryAfterMs, 60_000)
            : base * (0.5 + Math.random() * 0.5);
        await sleep(wait, req.signal);
      }
      try {
        return await this.attempt(req, useIds, clientStops, stream);
      } catch (err) {
        if (req.signal?.aborted) throw req.signal.reason ?? err;
        if (!(err instanceof RetryableError)) throw err;
        lastErr = err;
      }
    }
    const e = lastErr instanceof Error ? lastErr : new Error(String(lastErr));
    throw new Error(`${this.name}: ${attempts} attempts failed: ${this.clean(e.message)}`);
  }

  private async attempt(
    req: GenerateRequest,
    useIds: boolean,
    clientStops: boolean,
    stream: boolean,
  ): Promise<ChoiceData> {
    const body = this.buildBody(req, useIds, clientStops, stream);
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 300_000);
    const local = new AbortController();
    const signal = AbortSignal.any([timeout, local.signal, ...(req.signal ? [req.signal] : [])]);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let res: Response;
    try {
      res = await fetch(this.endpoint, { method: "POST", headers, body: JSON.stringify(body), signal });
    } catch (err) {
      if (req.signal?.aborted) throw err;
      throw new RetryableError(
        `request to ${this.shownEndpoint} failed: ${this.clean(err instanceof Error ? err.message : String(err))}`,
        null,
      );
    }
    if (!res.ok) {
      const text = this.clean(await res.text().catch(() => ""));
      if ([408, 429, 500, 502, 503, 504].includes(res.status)) {
        const ra = Number(res.headers.get("retry-after"));
        throw new RetryableError(
          `HTTP ${res.status} from ${this.shownEndpoint}: ${text.slice(0, 300)}`,
          Number.isFinite(ra) && ra > 0 ? ra * 1000 : null,
        );
      }
      throw new HttpError(res.status, this.shownEndpoint, text);
    }
    try {
      // Some servers ignore `stream: true` and answer with one JSON completion: read it as such.
      const contentType = res.headers.get("content-type") ?? "";
      if (!stream || /\bjson\b/i.test(contentType)) {
        const data = this.parseCompletion(await res.text());
        return stream ? this.finishUnstreamed(data, req, clientStops) : data;
      }
      return await this.readStream(res, req, clientStops, local);
    } catch (err) {
      if (req.signal?.aborted) throw err;
      if (timeout.aborted) throw new RetryableError(`timeout after ${this.opts.timeoutMs ?? 300_000} ms`, null);
      if (err instanceof TypeError)
        throw new RetryableError(`stream from ${this.shownEndpoint} broke: ${err.message}`, null);
      throw err;
    }
  }

  /** Parse a non-streamed completion body; a body without a readable choice is an error, never an empty generation. */
  private parseCompletion(raw: string): ChoiceData {
    let json: { choices?: unknown; error?: unknown };
    try {
      json = JSON.parse(raw) as { choices?: unknown; error?: unknown };
    } catch {
      throw new Error(
        `response from ${this.shownEndpoint} is not JSON (nor an SSE stream): ${JSON.stringify(this.clean(raw.slice(0, 200)))}`,
      );
    }
    if (json && typeof json === "object" && json.error)
      throw new Error(`error from ${this.shownEndpoint}: ${this.clean(JSON.stringify(json.error)).slice(0, 300)}`);
    const choice = Array.isArray(json?.choices) ? (json.choices[0] as unknown) : undefined;
    if (!choice || typeof choice !== "object")
      throw new Error(
        `response from ${this.shownEndpoint} has no choices: ${JSON.stringify(this.clean(raw.slice(0, 200)))}`,
      );
    const c = choice as Record<string, unknown>;
    if (typeof c.text !== "string")
      throw new Error(
        `response from ${this.shownEndpoint} has no completion text (choices[0].text): ${JSON.stringify(this.clean(raw.slice(0, 200)))}`,
      );
    return parseChoice(c);
  }

  /** A whole completion received for a stream request: apply client-side stops and emit its text at once. */
  private finishUnstreamed(d: ChoiceData, req: GenerateRequest, clientStops: boolean): ChoiceData {
    if (clientStops) {
      const m = new StopStringMatcher(req.params.stop).find(d.text, 0);
      if (m) {
        d = { ...d, text: d.text.slice(0, m.index), ids: null, finishReason: "stop", stopReason: m.stop };
      } else {
        if (d.finishReason === "stop") d = { ...d, stopReason: null }; // EOS
        d = { ...d, ids: null }; // ids may run past a stop the server did not know about
      }
    }
    if (req.onText && d.text.length > 0) req.onText(d.text);
    return d;
  }

  /** Read an SSE completion stream; with client-side stops, close it as soon as a stop string appears. */
  private async readStream(
    res: Response,
    req: GenerateRequest,
    clientStops: boolean,
    local: AbortController,
  ): Promise<ChoiceData> {
    if (!res.body) throw new Error(`empty stream body from ${this.shownEndpoint}`);
    const matcher = new StopStringMatcher(req.params.stop);
    const acc: ChoiceData = { text: "", ids: null, logprobs: null, finishReason: null, stopReason: undefined };
    let idsSeen = true;
    let emitted = 0;
    let clientStop: string | null = null;
    const decoder = new TextDecoder();
    let buf = "";
    const reader = res.body.getReader();
    let chunks = 0;
    let sawDone = false;
    let textChunks = 0;
    let foreign = "";
    const emit = (final: boolean): void => {
      if (!req.onText) return;
      const upto = final ? acc.text.length : matcher.safeLength(acc.text);
      if (upto > emitted) {
        req.onText(acc.text.slice(emitted, upto));
        emitted = upto;
      }
    };
    outer: for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (!line.startsWith("data:")) {
          // SSE field lines (event:, id:, retry:, comments) are fine; anything else is not a stream.
          if (line !== "" && !/^(event|id|retry):|^:/.test(line) && chunks === 0) {
            if (foreign.length > FOREIGN_CAP)
              throw new Error(`response from ${this.shownEndpoint} is not an SSE stream`);
            foreign += line + "\n";
          }
          continue;
        }
        const payload = line.slice(5).trim();
        if (payload === "[DONE]") {
          sawDone = true;
          break outer;
        }
        if (payload === "") continue;
        let chunk: { choices?: Array<Record<string, unknown>>; error?: unknown };
        try {
          chunk = JSON.parse(payload) as { choices?: Array<Record<string, unknown>>; error?: unknown };
        } catch {
          throw new Error(
            `stream from ${this.shownEndpoint} sent an unreadable event: ${JSON.stringify(this.clean(payload.slice(0, 200)))}`,
          );
        }
        if (chunk.error)
          throw new Error(`stream error from ${this.shownEndpoint}: ${this.clean(JSON.stringify(chunk.error))}`);
        const choice = chunk.choices?.[0];
        if (!choice || typeof choice !== "object") continue;
        chunks++;
        if (typeof choice.text === "string") textChunks++;
        const part = parseChoice(choice);
        const before = acc.text.length;
        acc.text += part.text;
        if (part.ids) acc.ids = (acc.ids ?? []).concat(part.ids);
        else if (part.text.length > 0) idsSeen = false;
        if (part.logprobs) acc.logprobs = (acc.logprobs ?? []).concat(part.logprobs);
        if (part.finishReason) acc.finishReason = part.finishReason;
        if (part.stopReason !== undefined) acc.stopReason = part.stopReason;
        if (clientStops) {
          const m = matcher.find(acc.text, before);
          if (m) {
            acc.text = acc.text.slice(0, m.index);
            clientStop = m.stop;
            acc.finishReason = "stop";
            acc.stopReason = m.stop;
            local.abort();
            break outer;
          }
        }
        emit(false);
      }
    }
    await reader.cancel().catch(() => {});
    if (chunks === 0 && clientStop === null) {
      // Nothing readable came back: a whole JSON completion without a JSON content type, or something else.
      const rest = (foreign + buf + decoder.decode()).trim();
      if (rest !== "") {
        if (rest.startsWith("{")) return this.finishUnstreamed(this.parseCompletion(rest), req, clientStops);
        throw new Error(
          `response from ${this.shownEndpoint} to a stream request is neither an SSE stream nor a JSON completion: ${JSON.stringify(this.clean(rest.slice(0, 200)))}`,
        );
      }
      throw new Error(
        `stream from ${this.shownEndpoint} ended without any completion event${sawDone ? " (only [DONE])" : ""}`,
      );
    }
    if (chunks > 0 && textChunks === 0)
      throw new Error(
        `stream from ${this.shownEndpoint} carries no completion text (choices[].text): is it a /v1/completions endpoint?`,
      );
    if (!idsSeen || clientStop !== null) acc.ids = null; // partial or cut id lists cannot be trusted
    if (clientStops && clientStop === null && acc.finishReason === "stop") acc.stopReason = null; // EOS
    emit(true);
    return acc;
  }

  private clean(s: string): string {
    return redact(s, [this.apiKey]);
  }

  private toResult(req: GenerateRequest, d: ChoiceData, useIds: boolean, clientStops: boolean): GenerateResult {
    const stops = req.params.stop;
    let finishReason: FinishReason;
    let stopString: string | null = null;
    if (d.finishReason === "length") finishReason = "length";
    else if (typeof d.stopReason === "string" && stops.includes(d.stopReason)) {
      finishReason = "stop";
      stopString = d.stopReason;
    } else finishReason = "eos";
    let tokens: number[];
    let logprobs: number[] | null = null;
    let exact = false;
    if (useIds && !clientStops && d.ids !== null) {
      tokens = d.ids;
      exact = true;
      if (d.logprobs && d.logprobs.length === tokens.length)
        logprobs = d.logprobs.map((x) => (x === null ? Number.NaN : x));
    } else {
      // Text-only: re-tokenize what the server returned (plus the stop string it consumed, plus EOS).
      tokens = this.tokenizer.encode(d.text + (stopString ?? ""));
      if (finishReason === "eos" && this.tokenizer.eosTokenIds.length > 0) tokens.push(this.tokenizer.eosTokenIds[0]);
      if (this.textOnlyTokenizer)
        this.warn(`${this.name}: no tokenizer given: token ids are UTF-8 bytes, not model ids (text-only)`);
      else
        this.warn(
          `${this.name}: the server returned no token ids: response text re-tokenized (token ids are not exact)`,
        );
    }
    return { tokens, text: d.text, logprobs, finishReason, stopString, tokenIdsExact: exact, backendMs: 0 };
  }
}

/** Create an OpenAI-compatible backend. */
export function createOpenAIBackend(opts: OpenAIBackendOptions): OpenAIBackend {
  return new OpenAIBackend(opts);
}
