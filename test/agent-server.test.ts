/**
 * The agent server over loopback with real components: node-llama-cpp running GGUF models written by the test
 * (scripted llama models, test/agent-fixtures.ts) and a BM25 index built with the retrieval library. Covers the
 * non-streaming and streaming chat API, the typed client, auth, bad input, limits, the bounded queue (429), timeouts
 * and client disconnects aborting the rollout.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LLMBackend } from "../src/llm/types.js";
import type { Retriever } from "../src/retrieval/types.js";
import { startAgentServer, type RunningAgentServer } from "../src/server/agent.js";
import { AgentClient, AgentClientError, agentSseData } from "../src/server/agent-client.js";
import type { RolloutAgent } from "../src/server/agent-rollout.js";
import { buildAgentTrace, type AgentTraceEvent } from "../src/server/agent-trace.js";
import { answeringAgent, loopingAgent, openTestRetriever } from "./agent-fixtures.js";

let dir: string;
let retriever: Retriever;
let answer: { agent: RolloutAgent; backend: LLMBackend };
let loop: { agent: RolloutAgent; backend: LLMBackend };
let server: RunningAgentServer;
let locked: RunningAgentServer;
let busy: RunningAgentServer;

const QUESTION = "What is the capital of France?";

function chat(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

async function health(url: string) {
  return (await (await fetch(`${url}/health`)).json()) as {
    queue: { active: number; waiting: number };
    stats: Record<string, number>;
  };
}

async function waitFor(cond: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not reached in time");
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-agent-"));
  retriever = await openTestRetriever(path.join(dir, "index"));
  answer = await answeringAgent(dir, retriever);
  loop = await loopingAgent(dir, retriever);
  server = await startAgentServer({
    agent: answer.agent,
    concurrency: 2,
    queueSize: 4,
    limits: { maxSearches: 4, maxTokens: 2048, timeoutMs: 60_000, topK: 3 },
  });
  locked = await startAgentServer({ agent: answer.agent, token: "s3cret" });
  busy = await startAgentServer({
    agent: loop.agent,
    concurrency: 1,
    queueSize: 0,
    limits: { maxSearches: 2, maxTokens: 30_000, timeoutMs: 60_000 },
    keepAliveMs: 200,
  });
});

afterAll(async () => {
  await server?.close();
  await locked?.close();
  await busy?.close();
  await answer?.backend.close();
  await loop?.backend.close();
  await retriever?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("agent server: answers", () => {
  it("reports health and the served model", async () => {
    const h = await fetch(`${server.url}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({
      status: "ok",
      mode: "agent",
      model: "scripted-r1",
      protocol: "r1-searcher",
      queue: { active: 0, waiting: 0, concurrency: 2 },
    });
    const m = (await (await fetch(`${server.url}/v1/models`)).json()) as {
      object: string;
      data: Array<Record<string, unknown>>;
    };
    expect(m.object).toBe("list");
    expect(m.data).toHaveLength(1);
    expect(m.data[0]).toMatchObject({
      id: "scripted-r1",
      object: "model",
      owned_by: "searchrl",
      protocol: "r1-searcher",
      agent: { mode: "eval", retriever: expect.any(String) },
    });
  });

  it("answers a question without streaming, with the trace beside the answer", async () => {
    const res = await chat(server.url, {
      model: "whatever",
      messages: [
        { role: "system", content: "ignored" },
        { role: "user", content: QUESTION },
      ],
      include_trajectory: true,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.object).toBe("chat.completion");
    expect(body.model).toBe("scripted-r1");
    expect(body.choices[0].message).toMatchObject({ role: "assistant", content: " Paris" });
    expect(body.choices[0].finish_reason).toBe("stop");
    const trace = body.trace;
    expect(trace).toMatchObject({
      question: QUESTION,
      protocol: "r1-searcher",
      answer: " Paris",
      retrievals: 1,
      finish: "answer",
      stop_reason: "finished",
      done: true,
      error: null,
    });
    expect(trace.steps.map((s: any) => s.kind)).toEqual(["reasoning", "query", "answer"]);
    const q = trace.steps[1];
    expect(q.query.trim()).toBe("capital France");
    // The real BM25 index ranks the Paris passage first for "capital France"; top_k = 3 (server default).
    expect(q.passages).toHaveLength(3);
    expect(q.passages[0]).toMatchObject({ id: "1", title: "Paris" });
    expect(q.passages[0].score).toBeGreaterThan(q.passages[1].score);
    expect(q.latency_ms).toBeGreaterThanOrEqual(0);
    // The response text is the trajectory's, and usage counts its sampled tokens.
    const traj = trace.trajectory;
    expect(traj.responseText).toBe(trace.response_text);
    expect(body.choices[0].message.reasoning_content).toBe(traj.responseText);
    expect(traj.responseText).toContain(
      "<|begin_of_documents|>\n(1)Paris   Paris is the capital and largest city of France.\n",
    );
    const generated = traj.mask.filter((m: number) => m === 1).length;
    expect(body.usage).toEqual({
      prompt_tokens: traj.promptTokens.length,
      completion_tokens: generated,
      total_tokens: traj.promptTokens.length + generated,
    });
    expect(trace.usage.inserted_tokens).toBe(traj.responseTokens.length - generated);
  });

  it("streams standard chunks in order, with trace events and the answer as content", async () => {
    const res = await chat(server.url, {
      messages: [{ role: "user", content: QUESTION }],
      stream: true,
      stream_options: { include_usage: true },
      top_k: 2,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const datas: string[] = [];
    for await (const d of agentSseData(res.body!)) datas.push(d);
    expect(datas[datas.length - 1]).toBe("[DONE]");
    const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
    const ids = new Set(chunks.map((c) => c.id));
    expect(ids.size).toBe(1);
    for (const c of chunks) expect(c.object).toBe("chat.completion.chunk");
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    const content = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(content).toBe(" Paris");
    const events: AgentTraceEvent[] = chunks.filter((c) => c.trace_event).map((c) => c.trace_event);
    const order = events.map((e) => e.type).filter((t, i, a) => t !== "text" || a[i - 1] !== "text");
    expect(order).toEqual(["start", "text", "query", "documents", "text", "answer", "done"]);
    const docs = events.find((e) => e.type === "documents");
    expect(docs && docs.type === "documents" && docs.passages.map((p) => p.title)).toEqual([
      "Paris",
      expect.any(String),
    ]);
    // The query is typed out by text events before the query event.
    const queryText = events
      .filter((e) => e.type === "text" && e.segment === "query")
      .map((e) => (e as { delta: string }).delta)
      .join("");
    expect(queryText.trim()).toBe("capital France");
    // Folding the events gives the non-streaming trace; reasoning_content rebuilds the response text.
    const trace = buildAgentTrace(events);
    expect(trace.steps.map((s) => s.kind)).toEqual(["reasoning", "query", "answer"]);
    const reasoning = chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? "").join("");
    expect(reasoning).toMatch(
      /^ Let me search <\|begin_of_query\|> capital France<\|end_of_query\|>\n\n<\|begin_of_documents\|>\n\(1\)Paris {3}/,
    );
    expect(reasoning.endsWith("<answer> Paris</answer>")).toBe(true);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish).toHaveLength(1);
    expect(finish[0].choices[0].finish_reason).toBe("stop");
    const usage = chunks[chunks.length - 1];
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBeGreaterThan(0);
  });

  it("serves the typed client, streaming and not", async () => {
    const client = new AgentClient({ baseUrl: server.url });
    const a = await client.ask(QUESTION, { maxSearches: 2 });
    expect(a.answer).toBe(" Paris");
    expect(a.trace.retrievals).toBe(1);
    expect(a.usage?.completion_tokens).toBeGreaterThan(0);

    const stream = client.stream(QUESTION);
    const seen: string[] = [];
    for await (const ev of stream) seen.push(ev.type);
    const r = await stream.result();
    expect(r.answer).toBe(" Paris");
    expect(r.finishReason).toBe("stop");
    expect(seen[0]).toBe("start");
    expect(seen[seen.length - 1]).toBe("done");
    expect(r.trace.steps.map((s) => s.kind)).toEqual(a.trace.steps.map((s) => s.kind));
    expect(r.responseText).toBe(a.responseText);
    // result() alone drains the stream.
    expect((await client.stream(QUESTION).result()).answer).toBe(" Paris");
  });

  it("honours max_searches = 0: no retrieval, no answer", async () => {
    const res = await chat(server.url, { messages: [{ role: "user", content: QUESTION }], max_searches: 0 });
    const body = (await res.json()) as any;
    expect(res.status).toBe(200);
    expect(body.choices[0].message.content).toBe("");
    expect(body.trace).toMatchObject({ retrievals: 0, finish: "max_searches", stop_reason: "many_retrieve" });
  });

  it("serves concurrent requests", async () => {
    const client = new AgentClient({ baseUrl: server.url });
    const answers = await Promise.all([1, 2, 3].map(() => client.ask(QUESTION)));
    expect(answers.map((a) => a.answer)).toEqual([" Paris", " Paris", " Paris"]);
  });
});

describe("agent server: bad input and auth", () => {
  const bad: Array<[string, unknown, RegExp]> = [
    ["malformed JSON", "{not json", /not valid JSON/],
    ["no messages", { model: "m" }, /messages/],
    ["empty messages", { messages: [] }, /at least one message/],
    ["no user message", { messages: [{ role: "system", content: "x" }] }, /no message with role "user"/],
    ["empty question", { messages: [{ role: "user", content: "  " }] }, /no text/],
    ["unknown role", { messages: [{ role: "robot", content: "x" }] }, /messages\.0\.role/],
    ["wrong type", { messages: [{ role: "user", content: "x" }], stream: "yes" }, /stream/],
    ["n > 1", { messages: [{ role: "user", content: "x" }], n: 2 }, /only n = 1/],
    ["negative max_searches", { messages: [{ role: "user", content: "x" }], max_searches: -1 }, /max_searches/],
    [
      "max_searches above the cap",
      { messages: [{ role: "user", content: "x" }], max_searches: 5 },
      /max_searches: 5 exceeds this server's limit 4/,
    ],
    [
      "max_tokens above the cap",
      { messages: [{ role: "user", content: "x" }], max_tokens: 5000 },
      /max_tokens: 5000 exceeds/,
    ],
    ["timeout above the cap", { messages: [{ role: "user", content: "x" }], timeout: 600 }, /timeout: 600 exceeds/],
    ["temperature out of range", { messages: [{ role: "user", content: "x" }], temperature: 7 }, /temperature/],
  ];
  for (const [name, body, msg] of bad) {
    it(`answers 400 in the OpenAI error shape: ${name}`, async () => {
      const res = await chat(server.url, body);
      expect(res.status).toBe(400);
      const e = ((await res.json()) as any).error;
      expect(e.type).toBe("invalid_request_error");
      expect(e.message).toMatch(msg);
      expect(e).toHaveProperty("param");
      expect(e).toHaveProperty("code");
    });
  }

  it("answers 400 to a text body, 415 to another media type, 413 to a huge body, 404 to an unknown route", async () => {
    const t = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "hello",
    });
    expect(t.status).toBe(400);
    expect(((await t.json()) as any).error.message).toMatch(/invalid body: \(root\)/);
    const x = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/xml" },
      body: "<a/>",
    });
    expect(x.status).toBe(415);
    expect(((await x.json()) as any).error.message).toMatch(/content-type must be application\/json/);
    const big = await chat(server.url, { messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }] });
    expect(big.status).toBe(413);
    const nf = await fetch(`${server.url}/v1/nope`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as any).error.type).toBe("invalid_request_error");
  });

  it("requires the bearer token when set", async () => {
    const none = await chat(locked.url, { messages: [{ role: "user", content: QUESTION }] });
    expect(none.status).toBe(401);
    expect(((await none.json()) as any).error).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
    const wrong = await chat(
      locked.url,
      { messages: [{ role: "user", content: QUESTION }] },
      { authorization: "Bearer nope" },
    );
    expect(wrong.status).toBe(401);
    expect((await fetch(`${locked.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${locked.url}/health`)).status).toBe(200);
    const ok = await chat(
      locked.url,
      { messages: [{ role: "user", content: QUESTION }] },
      { authorization: "Bearer s3cret" },
    );
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).choices[0].message.content).toBe(" Paris");
    await expect(new AgentClient({ baseUrl: locked.url }).ask(QUESTION)).rejects.toMatchObject({
      status: 401,
      code: "invalid_api_key",
    });
    expect((await new AgentClient({ baseUrl: locked.url, token: "s3cret" }).ask(QUESTION)).answer).toBe(" Paris");
  });
});

describe("agent server: queue, timeouts, disconnects", () => {
  it("refuses a request with 429 while the only slot is busy, and a disconnect aborts the rollout", async () => {
    const before = (await health(busy.url)).stats;
    const ac = new AbortController();
    const res = await chat(busy.url, { messages: [{ role: "user", content: "loop" }], stream: true }, {}, ac.signal);
    expect(res.status).toBe(200);
    // Read until the model is generating.
    const reader = res.body!.getReader();
    let got = "";
    while (!got.includes('"segment":"reasoning"')) got += new TextDecoder().decode((await reader.read()).value);
    expect((await health(busy.url)).queue.active).toBe(1);

    const refused = await chat(busy.url, { messages: [{ role: "user", content: "second" }] });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as any).error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
    await expect(new AgentClient({ baseUrl: busy.url }).ask("third")).rejects.toBeInstanceOf(AgentClientError);

    // The client goes away: the server aborts the rollout and frees the slot long before the 30,000-token budget.
    const t0 = Date.now();
    ac.abort();
    await waitFor(async () => (await health(busy.url)).queue.active === 0);
    expect(Date.now() - t0).toBeLessThan(8000);
    const after = (await health(busy.url)).stats;
    expect(after.aborted).toBe(before.aborted + 1);
    expect(after.rejected).toBe(before.rejected + 2);
    expect(after.completed).toBe(before.completed);
  });

  it("aborts a non-streaming request whose client disconnects", async () => {
    const before = (await health(busy.url)).stats;
    const ac = new AbortController();
    const pending = chat(busy.url, { messages: [{ role: "user", content: "loop" }] }, {}, ac.signal).catch(
      (e: unknown) => e,
    );
    await waitFor(async () => (await health(busy.url)).queue.active === 1);
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(async () => (await health(busy.url)).queue.active === 0);
    expect((await health(busy.url)).stats.aborted).toBe(before.aborted + 1);
  });

  it("stops a request at its timeout with 504 and the partial trace", async () => {
    const t0 = Date.now();
    const res = await chat(busy.url, { messages: [{ role: "user", content: "loop" }], timeout: 0.8 });
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(8000);
    const e = ((await res.json()) as any).error;
    expect(e.code).toBe("timeout");
    expect(e.message).toMatch(/timed out after 0.8 s/);
    expect(e.details.trace.finish).toBe("aborted");
    expect(e.details.trace.response_text).toMatch(/^( la)+/);
    expect((await health(busy.url)).queue.active).toBe(0);
  });

  it("ends a timed-out stream with an error chunk and [DONE]", async () => {
    const res = await chat(busy.url, { messages: [{ role: "user", content: "loop" }], stream: true, timeout: 0.8 });
    expect(res.status).toBe(200);
    const datas: string[] = [];
    for await (const d of agentSseData(res.body!)) datas.push(d);
    expect(datas[datas.length - 1]).toBe("[DONE]");
    const err = JSON.parse(datas[datas.length - 2]);
    expect(err.error).toMatchObject({ code: "timeout" });
    const done = datas
      .slice(0, -2)
      .map((d) => JSON.parse(d))
      .find((c) => c.trace_event?.type === "done");
    expect(done.trace_event.finish).toBe("aborted");
    await expect(new AgentClient({ baseUrl: busy.url }).ask("loop", { timeout: 0.5 })).rejects.toMatchObject({
      status: 504,
      code: "timeout",
    });
  });

  it("a client's abort() cancels a stream and frees the slot", async () => {
    const before = (await health(busy.url)).stats;
    const stream = new AgentClient({ baseUrl: busy.url }).stream("loop");
    let texts = 0;
    await expect(
      (async () => {
        for await (const ev of stream) {
          if (ev.type === "text" && ++texts === 3) stream.abort();
        }
      })(),
    ).rejects.toThrow();
    await waitFor(async () => (await health(busy.url)).queue.active === 0);
    expect((await health(busy.url)).stats.aborted).toBe(before.aborted + 1);
    expect(stream.trace.steps[0]).toMatchObject({ kind: "reasoning" });
  });
  it("closing the server aborts the rollouts in progress", async () => {
    const own = await startAgentServer({ agent: loop.agent, limits: { maxTokens: 30_000 } });
    const res = await chat(own.url, { messages: [{ role: "user", content: "loop" }], stream: true });
    const datas: string[] = [];
    const reading = (async () => {
      for await (const d of agentSseData(res.body!)) datas.push(d);
    })();
    await waitFor(async () => datas.some((d) => d.includes('"segment":"reasoning"')));
    const t0 = Date.now();
    await own.close();
    await reading;
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(datas[datas.length - 1]).toBe("[DONE]");
    expect(JSON.parse(datas[datas.length - 2]).error.message).toMatch(/shutting down/);
  });
});
