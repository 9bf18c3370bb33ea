/**
 * A scripted OpenAI-compatible `/v1/completions` server on 127.0.0.1 for tests. It implements the real request and
 * response shapes of two flavours:
 *
 * - "vllm": token-id prompts, `return_token_ids` (`choice.token_ids`), `return_tokens_as_token_ids` (`"token_id:N"`
 *   strings in `logprobs.tokens`), `logprobs.token_logprobs`, `stop_reason` (matched stop string, or null for EOS),
 *   vLLM stop semantics (text cut before the stop string; token ids include the tokens that spelled it), SSE streaming.
 * - "text": an Ollama-like server: string prompts only (a list of ids gets HTTP 400), text only, no `stop_reason`,
 *   no token ids.
 *
 * The "model" is a script: a function from the prompt text to the continuation it would generate. The server
 * tokenizes the continuation with the given tokenizer and emits it token by token, applying stop strings, `max_tokens`
 * and EOS (the marker {@link EOS} in a script ends generation with the EOS token). Log-probs are a deterministic
 * function of (position, token id) so tests can check that they are carried through.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Tokenizer } from "../../util/types.js";

/** Put this in a scripted continuation to make the model emit EOS there. */
export const EOS = "\u0000EOS\u0000";

export type ScriptFn = (prompt: string, request: Record<string, unknown>) => string;

export interface ScriptedServerOptions {
  tokenizer: Tokenizer;
  script: ScriptFn;
  flavor?: "vllm" | "text";
  /** Respond with these statuses to the first N requests (e.g. [503, 429]) before answering normally. */
  failFirst?: number[];
  /** Delay before each response, ms. */
  delayMs?: number;
  /** Delay between streamed chunks, ms. */
  chunkDelayMs?: number;
  /**
   * Answer `stream: true` requests with one plain JSON completion, as some servers do, sent with this content type
   * (default application/json).
   */
  ignoreStream?: boolean | { contentType: string };
  /** Answer every request with HTTP 200 and this body verbatim (a broken or foreign server). */
  rawReply?: { contentType: string; body: string };
}

export interface RecordedRequest {
  body: Record<string, unknown>;
  promptText: string;
  authorization: string | undefined;
}

export interface ScriptedServer {
  url: string;
  /** Requests that reached the script (failures injected by `failFirst` and rejected bodies are not recorded). */
  requests: RecordedRequest[];
  /** Every HTTP request received; requests being answered now; the most answered at once. */
  stats: { received: number; inFlight: number; peak: number };
  close(): Promise<void>;
}

/** The log-prob the scripted model reports for token `id` at position `i` of a completion. */
export function scriptedLogprob(i: number, id: number): number {
  return -((i * 7 + id) % 13) / 10 - 0.01;
}

interface Step {
  id: number;
  /** Cumulative text after this token. */
  text: string;
}

function generate(
  tok: Tokenizer,
  continuation: string,
  maxTokens: number,
  stops: string[],
): {
  ids: number[];
  text: string;
  finish: "stop" | "length";
  stopReason: string | null;
  steps: Step[];
} {
  const eosAt = continuation.indexOf(EOS);
  const body = eosAt >= 0 ? continuation.slice(0, eosAt) : continuation;
  const ids = tok.encode(body);
  if (eosAt >= 0) ids.push(tok.eosTokenIds[0] ?? -1);
  const out: number[] = [];
  const steps: Step[] = [];
  for (let i = 0; i < ids.length && out.length < maxTokens; i++) {
    const id = ids[i];
    out.push(id);
    if (tok.eosTokenIds.includes(id)) {
      const text = tok.decode(out);
      steps.push({ id, text });
      return { ids: out, text, finish: "stop", stopReason: null, steps };
    }
    const text = tok.decode(out);
    steps.push({ id, text });
    let best: { index: number; stop: string } | null = null;
    for (const s of stops) {
      const k = text.indexOf(s);
      if (k >= 0 && (best === null || k < best.index)) best = { index: k, stop: s };
    }
    if (best) {
      return { ids: out, text: text.slice(0, best.index), finish: "stop", stopReason: best.stop, steps };
    }
  }
  const text = tok.decode(out);
  if (out.length >= maxTokens) return { ids: out, text, finish: "length", stopReason: null, steps };
  // Script ran out without EOS: behave as EOS (a real model would emit it).
  return { ids: out, text, finish: "stop", stopReason: null, steps };
}

export async function startScriptedOpenAIServer(opts: ScriptedServerOptions): Promise<ScriptedServer> {
  const flavor = opts.flavor ?? "vllm";
  const requests: RecordedRequest[] = [];
  const failures = [...(opts.failFirst ?? [])];
  const tok = opts.tokenizer;
  let counter = 0;

  const stats = { received: 0, inFlight: 0, peak: 0 };
  const server = http.createServer((req, res) => {
    stats.received++;
    stats.inFlight++;
    stats.peak = Math.max(stats.peak, stats.inFlight);
    res.on("close", () => stats.inFlight--);
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      void (async () => {
        const send = (status: number, obj: unknown): void => {
          if (!res.hasHeader("content-type")) res.setHeader("content-type", "application/json");
          res.writeHead(status);
          res.end(JSON.stringify(obj));
        };
        if (req.method !== "POST" || !req.url?.endsWith("/v1/completions"))
          return send(404, { error: { message: "not found" } });
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          return send(400, { error: { message: "invalid JSON" } });
        }
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
        if (opts.rawReply) {
          res.writeHead(200, { "content-type": opts.rawReply.contentType });
          return res.end(opts.rawReply.body);
        }
        const fail = failures.shift();
        if (fail !== undefined) {
          if (fail === 429) res.setHeader("retry-after", "0");
          return send(fail, { error: { message: `scripted failure ${fail}` } });
        }
        const prompt = body.prompt;
        let promptText: string;
        if (typeof prompt === "string") promptText = prompt;
        else if (Array.isArray(prompt) && prompt.every((x) => typeof x === "number")) {
          if (flavor === "text") return send(400, { error: { message: "prompt must be a string" } });
          promptText = tok.decode(prompt as number[]);
        } else return send(400, { error: { message: "invalid prompt" } });
        requests.push({ body, promptText, authorization: req.headers.authorization });
        const maxTokens = typeof body.max_tokens === "number" ? body.max_tokens : 16;
        const stops = Array.isArray(body.stop)
          ? (body.stop as string[])
          : typeof body.stop === "string"
            ? [body.stop]
            : [];
        let continuation: string;
        try {
          continuation = opts.script(promptText, body);
        } catch (err) {
          // a script may pick the status by throwing an error with a numeric `status` (default 500)
          const status =
            typeof (err as { status?: unknown }).status === "number" ? (err as { status: number }).status : 500;
          return send(status, { error: { message: String(err) } });
        }
        const g = generate(tok, continuation, maxTokens, stops);
        const wantLogprobs = typeof body.logprobs === "number";
        const asIds = body.return_tokens_as_token_ids === true;
        const withIds = body.return_token_ids === true && flavor === "vllm";
        const id = `cmpl-${++counter}`;
        const logprobsFor = (from: number, ids: number[]): Record<string, unknown> | null =>
          wantLogprobs && flavor === "vllm"
            ? {
                tokens: ids.map((t) => (asIds ? `token_id:${t}` : tok.decode([t]))),
                token_logprobs: ids.map((t, j) => scriptedLogprob(from + j, t)),
                top_logprobs: ids.map((t, j) => ({
                  [asIds ? `token_id:${t}` : tok.decode([t])]: scriptedLogprob(from + j, t),
                })),
                text_offset: ids.map(() => 0),
              }
            : null;
        const extra = (finish: boolean): Record<string, unknown> =>
          flavor === "vllm" ? { stop_reason: finish ? g.stopReason : null } : {};

        if (body.stream === true && !opts.ignoreStream) {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          let sentText = "";
          let closed = false;
          res.on("close", () => (closed = true));
          for (let i = 0; i < g.steps.length; i++) {
            if (closed) return;
            // Text deltas follow the final (stop-cut) text; vLLM holds back text that may belong to a stop string.
            const upto =
              i === g.steps.length - 1
                ? g.text
                : g.steps[i].text.slice(0, Math.min(g.steps[i].text.length, g.text.length));
            const delta = upto.startsWith(sentText) ? upto.slice(sentText.length) : "";
            sentText += delta;
            const last = i === g.steps.length - 1;
            const choice: Record<string, unknown> = {
              index: 0,
              text: delta,
              logprobs: logprobsFor(i, [g.steps[i].id]),
              finish_reason: last ? g.finish : null,
              ...extra(last),
            };
            if (withIds) choice.token_ids = [g.steps[i].id];
            res.write(
              `data: ${JSON.stringify({ id, object: "text_completion", created: 0, model: body.model, choices: [choice] })}\n\n`,
            );
            if (opts.chunkDelayMs) await new Promise((r) => setTimeout(r, opts.chunkDelayMs));
          }
          if (g.steps.length === 0) {
            const choice = { index: 0, text: "", logprobs: null, finish_reason: g.finish, ...extra(true) };
            res.write(
              `data: ${JSON.stringify({ id, object: "text_completion", created: 0, model: body.model, choices: [choice] })}\n\n`,
            );
          }
          if (!closed) res.end("data: [DONE]\n\n");
          return;
        }
        const choice: Record<string, unknown> = {
          index: 0,
          text: g.text,
          logprobs: logprobsFor(0, g.ids),
          finish_reason: g.finish,
          ...extra(true),
        };
        if (withIds) choice.token_ids = g.ids;
        if (body.stream === true && typeof opts.ignoreStream === "object")
          res.setHeader("content-type", opts.ignoreStream.contentType);
        send(200, {
          id,
          object: "text_completion",
          created: 0,
          model: body.model,
          choices: [choice],
          usage: { prompt_tokens: 0, completion_tokens: g.ids.length, total_tokens: g.ids.length },
        });
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
