/**
 * TEST DOUBLES of paid / external chat APIs, on 127.0.0.1 ephemeral ports. Each implements the real HTTP shape of its
 * provider, streaming included, and applies `stop` sequences as the real servers do (the stop string and everything
 * after it are cut off); what the "model" says is a script of the test:
 *
 * - OpenAI chat completions: `POST /v1/chat/completions` (JSON, or SSE `chat.completion.chunk`s with incremental
 *   `tool_calls[].function.arguments`, `stream_options.include_usage`, `data: [DONE]`), bearer key, 429 with
 *   `retry-after-ms`;
 * - Anthropic messages: `POST /v1/messages` (JSON with `text` / `tool_use` content blocks, `stop_reason`,
 *   `stop_sequence`; SSE `message_start` … `message_stop` with `input_json_delta`), `x-api-key`;
 * - Ollama's OpenAI-compatible chat endpoint (`POST /v1/chat/completions`, what searchrl's `ollama:` spec calls): no
 *   key, `system_fingerprint: "fp_ollama"`, tool calls streamed whole in one chunk;
 * - Gemini: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` (`candidates[].content.parts`
 *   with `text` / `functionCall`, `finishReason: "STOP"`, `usageMetadata`), `x-goog-api-key`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ScriptedToolCall {
  name: string;
  /** Raw JSON text of the arguments (malformed on purpose in some tests). */
  arguments: string;
}

export interface ScriptedReply {
  /** What the model writes (the double cuts it at the first requested stop string). */
  text?: string;
  toolCalls?: ScriptedToolCall[];
  /** HTTP error instead of a reply. */
  status?: number;
  errorBody?: string;
  headers?: Record<string, string>;
  /** Reported cost (OpenAI-compatible routers put `usage.cost`). */
  cost?: number;
}

export interface DoubleRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export type Script = (req: DoubleRequest, n: number) => ScriptedReply;

export interface ChatDouble {
  url: string;
  requests: DoubleRequest[];
  close(): Promise<void>;
}

type Flavor = "openai" | "anthropic" | "ollama" | "google";

function cutAtStop(text: string, stops: readonly string[]): { text: string; stop: string | null } {
  let best: { i: number; s: string } | null = null;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best === null || i < best.i)) best = { i, s };
  }
  return best ? { text: text.slice(0, best.i), stop: best.s } : { text, stop: null };
}

function pieces(s: string, n = 7): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

function stopsOf(flavor: Flavor, body: Record<string, unknown>): string[] {
  const v =
    flavor === "anthropic"
      ? body.stop_sequences
      : flavor === "google"
        ? (body.generationConfig as Record<string, unknown> | undefined)?.stopSequences
        : body.stop;
  if (typeof v === "string") return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function sse(res: http.ServerResponse, data: unknown, event?: string): void {
  if (event) res.write(`event: ${event}\n`);
  res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

function replyOpenAI(flavor: Flavor, res: http.ServerResponse, body: Record<string, unknown>, r: ScriptedReply): void {
  const cut = cutAtStop(r.text ?? "", stopsOf(flavor, body));
  const calls = cut.stop === null ? (r.toolCalls ?? []) : [];
  const finish = cut.stop !== null ? "stop" : calls.length > 0 ? "tool_calls" : "stop";
  const usage = {
    prompt_tokens: 11,
    completion_tokens: Math.ceil(cut.text.length / 4) + calls.length * 5,
    total_tokens: 11 + Math.ceil(cut.text.length / 4) + calls.length * 5,
    ...(r.cost !== undefined ? { cost: r.cost } : {}),
  };
  const base = {
    id: "chatcmpl-double",
    created: 1_700_000_000,
    model: String(body.model),
    ...(flavor === "ollama" ? { system_fingerprint: "fp_ollama" } : {}),
  };
  const toolCalls = calls.map((c, i) => ({
    id: `call_${i}`,
    type: "function",
    function: { name: c.name, arguments: c.arguments },
  }));
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        ...base,
        object: "chat.completion",
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: cut.text === "" && toolCalls.length > 0 ? null : cut.text,
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            finish_reason: finish,
          },
        ],
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    sse(res, { ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finishReason }] });
  chunk({ role: "assistant", content: "" });
  for (const p of pieces(cut.text)) chunk({ content: p });
  toolCalls.forEach((c, i) => {
    if (flavor === "ollama") {
      chunk({ tool_calls: [{ index: i, ...c }] });
      return;
    }
    chunk({
      tool_calls: [{ index: i, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }],
    });
    for (const p of pieces(c.function.arguments, 5)) chunk({ tool_calls: [{ index: i, function: { arguments: p } }] });
  });
  chunk({}, finish);
  const so = body.stream_options as { include_usage?: boolean } | undefined;
  if (so?.include_usage) sse(res, { ...base, object: "chat.completion.chunk", choices: [], usage });
  sse(res, "[DONE]");
  res.end();
}

function replyAnthropic(res: http.ServerResponse, body: Record<string, unknown>, r: ScriptedReply): void {
  const cut = cutAtStop(r.text ?? "", stopsOf("anthropic", body));
  const calls = cut.stop === null ? (r.toolCalls ?? []) : [];
  const stopReason = cut.stop !== null ? "stop_sequence" : calls.length > 0 ? "tool_use" : "end_turn";
  const blocks: Array<Record<string, unknown>> = [];
  if (cut.text !== "") blocks.push({ type: "text", text: cut.text });
  calls.forEach((c, i) => {
    let input: unknown;
    try {
      input = JSON.parse(c.arguments);
    } catch {
      input = c.arguments; // sent as raw text in the stream below; the JSON reply cannot hold it otherwise
    }
    blocks.push({ type: "tool_use", id: `toolu_${i}`, name: c.name, input });
  });
  const usage = { input_tokens: 13, output_tokens: Math.ceil(cut.text.length / 4) + calls.length * 5 };
  const message = { id: "msg_double", type: "message", role: "assistant", model: String(body.model) };
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...message, content: blocks, stop_reason: stopReason, stop_sequence: cut.stop, usage }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  sse(
    res,
    {
      type: "message_start",
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 13, output_tokens: 1 },
      },
    },
    "message_start",
  );
  blocks.forEach((b, index) => {
    if (b.type === "text") {
      sse(
        res,
        { type: "content_block_start", index, content_block: { type: "text", text: "" } },
        "content_block_start",
      );
      for (const p of pieces(String(b.text)))
        sse(res, { type: "content_block_delta", index, delta: { type: "text_delta", text: p } }, "content_block_delta");
    } else {
      sse(
        res,
        { type: "content_block_start", index, content_block: { type: "tool_use", id: b.id, name: b.name, input: {} } },
        "content_block_start",
      );
      const raw = typeof b.input === "string" ? b.input : JSON.stringify(b.input);
      for (const p of pieces(raw, 5))
        sse(
          res,
          { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: p } },
          "content_block_delta",
        );
    }
    sse(res, { type: "content_block_stop", index }, "content_block_stop");
  });
  sse(
    res,
    {
      type: "message_delta",
      delta: { stop_reason: stopReason, stop_sequence: cut.stop },
      usage: { output_tokens: usage.output_tokens },
    },
    "message_delta",
  );
  sse(res, { type: "message_stop" }, "message_stop");
  res.end();
}

function replyGoogle(res: http.ServerResponse, body: Record<string, unknown>, r: ScriptedReply, stream: boolean): void {
  const cut = cutAtStop(r.text ?? "", stopsOf("google", body));
  const calls = cut.stop === null ? (r.toolCalls ?? []) : [];
  const parts: Array<Record<string, unknown>> = [];
  if (cut.text !== "") parts.push({ text: cut.text });
  for (const c of calls) {
    let args: unknown;
    try {
      args = JSON.parse(c.arguments);
    } catch {
      args = {};
    }
    parts.push({ functionCall: { name: c.name, args } });
  }
  const usageMetadata = {
    promptTokenCount: 17,
    candidatesTokenCount: Math.ceil(cut.text.length / 4) + 1,
    totalTokenCount: 18 + Math.ceil(cut.text.length / 4),
  };
  const done = { content: { role: "model", parts }, finishReason: "STOP", index: 0 };
  if (!stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ candidates: [done], usageMetadata, modelVersion: "double" }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  const textParts = pieces(cut.text);
  textParts.forEach((t) => sse(res, { candidates: [{ content: { role: "model", parts: [{ text: t }] }, index: 0 }] }));
  const rest = parts.filter((p) => p.functionCall);
  sse(res, {
    candidates: [{ ...done, content: { role: "model", parts: rest.length > 0 ? rest : [{ text: "" }] } }],
    usageMetadata,
  });
  res.end();
}

/** Start a double of `flavor` that answers with `script`. */
export async function startChatDouble(
  flavor: Flavor,
  script: Script,
  opts: { apiKey?: string } = {},
): Promise<ChatDouble> {
  const requests: DoubleRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      const want = flavor === "anthropic" ? "/v1/messages" : "/v1/chat/completions";
      const google = /^\/v1beta\/models\/[^/:]+:(generateContent|streamGenerateContent\?alt=sse)$/.exec(path);
      if (req.method !== "POST" || (flavor === "google" ? !google : path !== want)) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}` } }));
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "invalid JSON body" } }));
        return;
      }
      const dr: DoubleRequest = { path, headers: req.headers, body };
      requests.push(dr);
      if (opts.apiKey !== undefined) {
        const given =
          flavor === "anthropic"
            ? req.headers["x-api-key"]
            : flavor === "google"
              ? req.headers["x-goog-api-key"]
              : req.headers.authorization?.replace(/^Bearer /, "");
        if (given !== opts.apiKey) {
          res.writeHead(401, { "content-type": "application/json" });
          // Real APIs echo (part of) a wrong key in the message: the client must redact it.
          res.end(
            JSON.stringify({
              error: { message: `Incorrect API key provided: ${String(given)}`, type: "invalid_request_error" },
            }),
          );
          return;
        }
      }
      const reply = script(dr, requests.length - 1);
      if (reply.status !== undefined) {
        res.writeHead(reply.status, { "content-type": "application/json", ...(reply.headers ?? {}) });
        res.end(
          reply.errorBody ??
            JSON.stringify({ error: { message: `scripted HTTP ${reply.status}`, type: "rate_limit_error" } }),
        );
        return;
      }
      if (flavor === "google") replyGoogle(res, body, reply, google![1] !== "generateContent");
      else if (flavor === "anthropic") replyAnthropic(res, body, reply);
      else replyOpenAI(flavor, res, body, reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${flavor === "google" ? "v1beta" : "v1"}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The text of the last message of a chat request, whatever the provider's shape. */
export function lastMessageText(body: Record<string, unknown>): string {
  const msgs = (body.messages as Array<Record<string, unknown>>) ?? [];
  const last = msgs[msgs.length - 1];
  if (!last) return "";
  const c = last.content;
  if (typeof c === "string") return c;
  if (Array.isArray(c))
    return c
      .map((p: Record<string, unknown>) =>
        typeof p.text === "string" ? p.text : typeof p.content === "string" ? p.content : JSON.stringify(p),
      )
      .join("");
  return "";
}

/** Every message text of a chat request joined (to look for documents or tool results anywhere). */
export function conversationText(body: Record<string, unknown>): string {
  return JSON.stringify(body.messages ?? body.contents ?? []);
}
