/**
 * The OpenAI-compatible backend against a scripted `/v1/completions` server on loopback (a test double implementing
 * vLLM's and an Ollama-like server's real response shapes; see testing/scripted-openai-server.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { createOpenAIBackend } from "./openai.js";
import {
  EOS,
  scriptedLogprob,
  startScriptedOpenAIServer,
  type ScriptedServer,
} from "./testing/scripted-openai-server.js";
import { TEST_PIECES, VocabTokenizer } from "./testing/vocab-tokenizer.js";
import type { SamplingParams } from "./types.js";

const tok = new VocabTokenizer(TEST_PIECES);
const STOP_Q = "<|end_of_query|>";
const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 0,
  topP: 1,
  maxTokens: 64,
  stop: [STOP_Q, "</answer>"],
  ...over,
});

let servers: ScriptedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function start(...args: Parameters<typeof startScriptedOpenAIServer>): Promise<ScriptedServer> {
  const s = await startScriptedOpenAIServer(...args);
  servers.push(s);
  return s;
}

describe("OpenAIBackend (vLLM flavour)", () => {
  it("sends token ids, keeps sampled ids across a stop string split over several tokens", async () => {
    const srv = await start({
      tokenizer: tok,
      script: () => " Let me search <|begin_of_query|> capital of France<|end_of_query|>\n\nmore text",
    });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok });
    const prompt = "Question? <think>";
    const res = await be.generate({ tokens: tok.encode(prompt), text: prompt, params: params() });
    expect(srv.requests[0].body.prompt).toEqual(tok.encode(prompt));
    expect(srv.requests[0].body.return_token_ids).toBe(true);
    expect(res.finishReason).toBe("stop");
    expect(res.stopString).toBe(STOP_Q);
    expect(res.text).toBe(" Let me search <|begin_of_query|> capital of France");
    expect(res.tokenIdsExact).toBe(true);
    // The ids include the stop string's tokens ("<|", "end", "_of", "_query", then "|>\n\n" completes it).
    const decoded = tok.decode(res.tokens);
    expect(decoded.startsWith(res.text + STOP_Q)).toBe(true);
    expect(tok.piece(res.tokens[res.tokens.length - 1])).toBe("|>\n\n");
    expect(res.logprobs).toEqual(res.tokens.map((t, i) => scriptedLogprob(i, t)));
  });

  it("reports EOS (token included) and length", async () => {
    const srv = await start({
      tokenizer: tok,
      script: (p) => (p.includes("long") ? " the the the the the the" : ` Paris${EOS}ignored`),
    });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok });
    const eos = await be.generate({ tokens: tok.encode("q"), text: "q", params: params() });
    expect(eos.finishReason).toBe("eos");
    expect(eos.text).toBe(" Paris");
    expect(eos.tokens[eos.tokens.length - 1]).toBe(tok.eosTokenIds[0]);
    const len = await be.generate({ tokens: tok.encode("long"), text: "long", params: params({ maxTokens: 3 }) });
    expect(len.finishReason).toBe("length");
    expect(len.tokens).toHaveLength(3);
    expect(len.text).toBe(" the the the");
  });

  it("retries 503 and 429 with backoff, then succeeds; gives up after the attempts", async () => {
    const srv = await start({ tokenizer: tok, script: () => ` Paris${EOS}`, failFirst: [503, 429] });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, backoffMs: 5 });
    const res = await be.generate({ tokens: tok.encode("q"), text: "q", params: params() });
    expect(res.text).toBe(" Paris");
    expect(srv.requests).toHaveLength(1); // the failed attempts were answered before being recorded
    const srv2 = await start({ tokenizer: tok, script: () => "x", failFirst: [500, 500, 500] });
    const be2 = createOpenAIBackend({ baseUrl: srv2.url, model: "m", tokenizer: tok, backoffMs: 1, attempts: 3 });
    await expect(be2.generate({ tokens: [1], text: "q", params: params() })).rejects.toThrow(
      /3 attempts failed.*HTTP 500/,
    );
  });

  it("does not retry a 400, sends the API key as a bearer token and keeps it out of errors", async () => {
    const key = "sk-secret-key-123";
    const srv = await start({ tokenizer: tok, flavor: "text", script: () => "x" });
    const be = createOpenAIBackend({
      baseUrl: srv.url + "/v1",
      model: "m",
      tokenizer: tok,
      apiKey: key,
      tokenIds: "on",
      backoffMs: 1,
    });
    await expect(be.generate({ tokens: [1, 2], text: "q", params: params() })).rejects.toThrow(/HTTP 400/);
    expect(srv.stats.received).toBe(1);
    const ok = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, apiKey: key, tokenIds: "off" });
    await ok.generate({ tokens: [1], text: "q", params: params() });
    expect(srv.requests[0].authorization).toBe(`Bearer ${key}`);
    const bad = createOpenAIBackend({
      baseUrl: `http://127.0.0.1:1/${key}`,
      model: "m",
      tokenizer: tok,
      apiKey: key,
      attempts: 1,
    });
    const err = await bad.generate({ tokens: [1], text: "q", params: params() }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).not.toContain(key);
  });

  it("streams text deltas without leaking a partial stop string", async () => {
    const srv = await start({
      tokenizer: tok,
      script: () => " I need to search <|begin_of_query|> the capital<|end_of_query|> rest",
      chunkDelayMs: 1,
    });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok });
    const deltas: string[] = [];
    const res = await be.generate({
      tokens: tok.encode("q"),
      text: "q",
      params: params(),
      onText: (d) => deltas.push(d),
    });
    expect(srv.requests[0].body.stream).toBe(true);
    expect(deltas.join("")).toBe(res.text);
    expect(res.text).toBe(" I need to search <|begin_of_query|> the capital");
    expect(deltas.length).toBeGreaterThan(3);
    for (const d of deltas) expect(d).not.toContain("<|end");
    expect(res.tokenIdsExact).toBe(true);
    expect(tok.decode(res.tokens)).toBe(res.text + STOP_Q);
  });

  it("bounds the requests in flight", async () => {
    const srv = await start({ tokenizer: tok, delayMs: 20, script: () => ` Paris${EOS}` });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, maxConcurrency: 3 });
    await Promise.all(Array.from({ length: 10 }, () => be.generate({ tokens: [1], text: "q", params: params() })));
    expect(srv.requests).toHaveLength(10);
    expect(srv.stats.peak).toBe(3);
  });

  it("honours an AbortSignal", async () => {
    const srv = await start({ tokenizer: tok, delayMs: 500, script: () => "x" });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("cancelled by test")), 20);
    await expect(be.generate({ tokens: [1], text: "q", params: params(), signal: ac.signal })).rejects.toThrow(
      /cancelled by test/,
    );
  });
});

describe("OpenAIBackend (text-only server)", () => {
  it("falls back to text prompts, matches stops client-side and re-tokenizes, with warnings", async () => {
    const srv = await start({
      tokenizer: tok,
      flavor: "text",
      script: () => " Let me search <|begin_of_query|> capital<|end_of_query|> and then more</answer>",
    });
    const warnings: string[] = [];
    const be = createOpenAIBackend({
      baseUrl: srv.url,
      model: "m",
      tokenizer: tok,
      onWarning: (w) => warnings.push(w),
    });
    const prompt = "Q <think>";
    const res = await be.generate({ tokens: tok.encode(prompt), text: prompt, params: params() });
    expect(res.finishReason).toBe("stop");
    expect(res.stopString).toBe(STOP_Q);
    expect(res.text).toBe(" Let me search <|begin_of_query|> capital");
    expect(res.tokenIdsExact).toBe(false);
    expect(res.logprobs).toBeNull();
    expect(tok.decode(res.tokens)).toBe(res.text + STOP_Q);
    expect(warnings.some((w) => /refused a token-id prompt/.test(w))).toBe(true);
    expect(warnings.some((w) => /no stop_reason/.test(w))).toBe(true);
    // Every request the server recorded after the fallback carried a text prompt and, in client mode, no stop list.
    const last = srv.requests[srv.requests.length - 1].body;
    expect(last.prompt).toBe(prompt);
    expect(last.stop).toBeUndefined();
    expect(last.stream).toBe(true);
    // A later call goes straight to client-side matching; EOS is still EOS.
    const srv2Script = await be.generate({ tokens: [], text: "x", params: params({ stop: ["</answer>"] }) });
    expect(srv2Script.stopString).toBe("</answer>");
  });

  it("re-issues with client-side stops the calls already in flight when another switched the mode", async () => {
    const srv = await start({
      tokenizer: tok,
      flavor: "text",
      delayMs: 5,
      script: () => " Let me search <|begin_of_query|> capital<|end_of_query|> and then more</answer>",
    });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, tokenIds: "off" });
    const all = await Promise.all(
      Array.from({ length: 8 }, () => be.generate({ tokens: [], text: "Q", params: params() })),
    );
    for (const r of all) {
      expect(r.stopString).toBe(STOP_Q);
      expect(r.finishReason).toBe("stop");
    }
  });

  it("runs text-only with byte ids when no tokenizer is given", async () => {
    const srv = await start({ tokenizer: tok, flavor: "text", script: () => ` Paris${EOS}` });
    const warnings: string[] = [];
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", onWarning: (w) => warnings.push(w) });
    const res = await be.generate({ tokens: be.tokenizer.encode("q"), text: "q", params: params() });
    expect(res.text).toBe(" Paris");
    expect(res.finishReason).toBe("eos");
    expect(be.tokenizer.decode(res.tokens)).toBe(" Paris");
    expect(warnings.some((w) => /no tokenizer/.test(w))).toBe(true);
    expect(srv.requests[0].body.prompt).toBe("q");
  });
});

describe("OpenAIBackend (servers that ignore stream, or send what it cannot read)", () => {
  const SCRIPT = " Let me search <|begin_of_query|> capital<|end_of_query|> and more</answer>";

  it("reads a plain JSON completion sent in reply to a stream request (vLLM-like, JSON content type)", async () => {
    const srv = await start({ tokenizer: tok, ignoreStream: true, script: () => SCRIPT });
    const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok });
    const deltas: string[] = [];
    const res = await be.generate({
      tokens: tok.encode("q"),
      text: "q",
      params: params(),
      onText: (d) => deltas.push(d),
    });
    expect(srv.requests[0].body.stream).toBe(true);
    expect(res.text).toBe(" Let me search <|begin_of_query|> capital");
    expect(res.stopString).toBe(STOP_Q);
    expect(deltas.join("")).toBe(res.text);
  });

  it("reads it with client-side stops too, even when the JSON comes labelled as an event stream", async () => {
    for (const contentType of ["application/json; charset=utf-8", "text/event-stream", "text/plain"]) {
      const srv = await start({ tokenizer: tok, flavor: "text", ignoreStream: { contentType }, script: () => SCRIPT });
      const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, stopMode: "client" });
      const res = await be.generate({ tokens: tok.encode("q"), text: "q", params: params() });
      expect(srv.requests.at(-1)!.body.stream).toBe(true);
      expect(res.text, contentType).toBe(" Let me search <|begin_of_query|> capital");
      expect(res.finishReason).toBe("stop");
      expect(res.stopString).toBe(STOP_Q);
    }
  });

  it("fails with a clear error, never an empty generation, when the reply cannot be read", async () => {
    const replies = [
      { contentType: "text/event-stream", body: "this is not a stream\n" },
      { contentType: "text/event-stream", body: "data: {not json\n\n" },
      { contentType: "text/event-stream", body: "data: [DONE]\n\n" },
      { contentType: "text/event-stream", body: "" },
      { contentType: "application/json", body: '{"choices": []}' },
      { contentType: "application/json", body: "<html>502 Bad Gateway</html>" },
      // a chat-completions stream (delta.content) sent to the completions client
      {
        contentType: "text/event-stream",
        body: 'data: {"choices":[{"index":0,"delta":{"content":"Paris"}}]}\n\ndata: [DONE]\n\n',
      },
    ];
    for (const rawReply of replies) {
      for (const onText of [undefined, () => {}]) {
        const srv = await start({ tokenizer: tok, rawReply, script: () => "x" });
        const be = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, tokenIds: "off", backoffMs: 1 });
        const err = await be.generate({ tokens: [1], text: "q", params: params(), ...(onText ? { onText } : {}) }).then(
          (r) => new Error(`resolved with ${JSON.stringify(r.text)}`),
          (e: Error) => e,
        );
        // a non-stream request to a stream-only body is still unreadable JSON; either way: a named error
        expect(err.message, rawReply.body).toMatch(
          /not JSON|no choices|neither an SSE stream|unreadable event|without any completion|no completion text/,
        );
        expect(err.message).not.toMatch(/^resolved/);
      }
    }
  });
});
