/**
 * Server hardening (issue 16), on the real servers over loopback: every bad request of bench/reliability/bad-input.ts
 * (wrong types, missing fields, invalid JSON, wrong content types, bodies over the limit, 200k-query batches,
 * out-of-range values, NUL bytes, lone surrogates) gets a 4xx JSON error naming the problem and the server stays
 * healthy; loopback binding by default; optional bearer tokens on the retrieval and reward servers; the agent server
 * queues a burst of 64 clients with its defaults and answers 429 with Retry-After past its limits (never a 5xx or a
 * dropped connection). Real components: BM25 index, scripted GGUF models on node-llama-cpp (test/agent-fixtures.ts).
 * The bench (npm run bench:reliability) runs the same cases at the servers' default limits and publishes the figures.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  agentSpec,
  badCases,
  retrievalSpecs,
  rewardSpec,
  runBadCases,
  sendRaw,
} from "../bench/reliability/bad-input.js";
import { buildProgram } from "../src/cli/main.js";
import type { Retriever } from "../src/retrieval/types.js";
import { startAgentServer, type RunningAgentServer } from "../src/server/agent.js";
import { serveRetrieval } from "../src/server/retrieval.js";
import { startRewardServer } from "../src/server/reward.js";
import { answeringAgent, loopingAgent, openTestRetriever } from "./agent-fixtures.js";

let dir: string;
let retriever: Retriever;
let answer: Awaited<ReturnType<typeof answeringAgent>>;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-hardening-"));
  retriever = await openTestRetriever(path.join(dir, "index"));
  answer = await answeringAgent(dir, retriever);
});
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await answer?.backend.close();
  await retriever?.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

function expectAll4xx(results: Awaited<ReturnType<typeof runBadCases>>): void {
  const bad = results.filter((r) => !r.ok).map((r) => `${r.c.name}: ${r.why}`);
  expect(bad).toEqual([]);
  expect(results.length).toBeGreaterThanOrEqual(100);
}

describe("bad HTTP input: 4xx JSON naming the problem, then still healthy", () => {
  it("retrieval server (/queries, /retrieve)", async () => {
    const limits = { maxK: 20, maxQueries: 1024, bodyLimit: 1024 * 1024 };
    const srv = await serveRetrieval({ retriever, port: 0, ...limits });
    closers.push(() => srv.close());
    for (const spec of retrievalSpecs(limits)) {
      const ok = await post(srv.url + spec.route, spec.valid);
      expect(ok.status).toBe(200);
      expectAll4xx(await runBadCases(srv.url, spec.route, badCases(spec)));
      expect((await post(srv.url + spec.route, spec.valid)).status).toBe(200);
    }
    expect(((await (await fetch(srv.url + "/health")).json()) as { status: string }).status).toBe("ok");
  });

  it("reward server (/get_reward)", async () => {
    const srv = await startRewardServer({ preset: "r1-searcher-qwen", bodyLimit: 1024 * 1024 });
    closers.push(() => srv.close());
    const spec = rewardSpec({ bodyLimit: 1024 * 1024, question: "What is the capital of France?", answer: "Paris" });
    expect((await post(srv.url + spec.route, spec.valid)).status).toBe(200);
    expectAll4xx(await runBadCases(srv.url, spec.route, badCases(spec)));
    expect((await post(srv.url + spec.route, spec.valid)).status).toBe(200);
    expect((await fetch(srv.url + "/health")).status).toBe(200);
  });

  it("agent server (/v1/chat/completions)", async () => {
    const limits = { maxSearches: 4, maxTokens: 2048, timeoutMs: 60_000, topK: 3 };
    const srv = await startAgentServer({ agent: answer.agent, concurrency: 2, limits });
    closers.push(() => srv.close());
    const spec = agentSpec({ bodyLimit: 4 * 1024 * 1024, maxTokens: 2048, maxSearches: 4, timeoutS: 60 });
    expectAll4xx(await runBadCases(srv.url, spec.route, badCases(spec)));
    const ok = await post(srv.url + spec.route, spec.valid);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).choices[0].message.content).toBe(" Paris");
  });
});

describe("exposure: loopback by default, optional bearer tokens", () => {
  it("every server and every serve command binds 127.0.0.1 by default", async () => {
    const r = await serveRetrieval({ retriever, port: 0 });
    const w = await startRewardServer({ preset: "r1-searcher-qwen" });
    const a = await startAgentServer({ agent: answer.agent });
    closers.push(
      () => r.close(),
      () => w.close(),
      () => a.close(),
    );
    for (const url of [r.url, w.url, a.url]) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const program = buildProgram();
    const serve = program.commands.find((c) => c.name() === "serve")!;
    for (const name of ["retrieval", "reward", "agent"]) {
      const cmd = serve.commands.find((c) => c.name() === name)!;
      expect(cmd.options.find((o) => o.long === "--host")!.defaultValue, name).toBe("127.0.0.1");
      expect(
        cmd.options.find((o) => o.long === "--token"),
        name,
      ).toBeDefined();
    }
    const ui = program.commands.find((c) => c.name() === "ui")!;
    expect(ui.options.find((o) => o.long === "--host")!.defaultValue).toBe("127.0.0.1");
  });

  it("the retrieval and reward servers take an optional bearer token (off by default)", async () => {
    const open = await serveRetrieval({ retriever, port: 0 });
    const r = await serveRetrieval({ retriever, port: 0, token: "retrieval-s3cret" });
    const w = await startRewardServer({ preset: "r1-searcher-qwen", token: "reward-s3cret" });
    closers.push(
      () => open.close(),
      () => r.close(),
      () => w.close(),
    );
    const q = { queries: ["capital of France"] };
    expect((await post(open.url + "/queries", q)).status).toBe(200); // veRL / R1-Searcher clients send no header
    for (const [url, body, secret] of [
      [r.url + "/queries", q, "retrieval-s3cret"],
      [r.url + "/retrieve", q, "retrieval-s3cret"],
      [w.url + "/get_reward", { query: ["x <answer> Paris </answer>"], labels: ["Paris"] }, "reward-s3cret"],
    ] as const) {
      const none = await post(url, body);
      expect(none.status).toBe(401);
      const msg = ((await none.json()) as { error: string }).error;
      expect(msg).toMatch(/missing bearer token/);
      const wrong = await post(url, body, { authorization: "Bearer nope" });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).not.toContain(secret);
      expect((await post(url, body, { authorization: `Bearer ${secret}` })).status).toBe(200);
    }
    // /health stays open (probes), everything else is guarded
    expect((await fetch(r.url + "/health")).status).toBe(200);
    expect((await fetch(w.url + "/health")).status).toBe(200);
    expect((await fetch(r.url + "/openapi.json")).status).toBe(401);
  });
});

describe("agent server under bursts", () => {
  const ask = (url: string, content = "What is the capital of France?", extra: Record<string, unknown> = {}) =>
    sendRaw(url + "/v1/chat/completions", {
      contentType: "application/json",
      body: JSON.stringify({ messages: [{ role: "user", content }], ...extra }),
    });

  it("queues a burst of 32 concurrent clients with its default queue (no 429; the bench runs 64)", async () => {
    // concurrency 2 = what `serve agent` picks for this backend (2 llama.cpp sequences); the queue is the default
    const srv = await startAgentServer({ agent: answer.agent, concurrency: 2 });
    closers.push(() => srv.close());
    const res = await Promise.all(Array.from({ length: 32 }, () => ask(srv.url)));
    expect(res.map((r) => r.status)).toEqual(res.map(() => 200));
    for (const r of res) expect(JSON.parse(r.text).choices[0].message.content).toBe(" Paris");
  }, 120_000);

  it("past its limits answers 429 with Retry-After: never a 5xx or a dropped connection", async () => {
    const srv = await startAgentServer({ agent: answer.agent, concurrency: 1, queueSize: 2 });
    closers.push(() => srv.close());
    const res = await Promise.all(
      Array.from({ length: 24 }, () =>
        fetch(srv.url + "/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ messages: [{ role: "user", content: "What is the capital of France?" }] }),
        }).then(async (r) => ({ status: r.status, retryAfter: r.headers.get("retry-after"), body: await r.json() })),
      ),
    );
    const statuses = res.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    for (const r of res.filter((x) => x.status === 429)) {
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect((r.body as any).error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
    }
  }, 120_000);

  it("a request that cannot get a slot within its time limit gets 429 with Retry-After, not a 5xx", async () => {
    const loop = await loopingAgent(dir, retriever);
    let srv: RunningAgentServer | null = null;
    try {
      srv = await startAgentServer({
        agent: loop.agent,
        concurrency: 1,
        limits: { maxSearches: 1, maxTokens: 30_000, timeoutMs: 60_000 },
      });
      const ac = new AbortController();
      const hog = await fetch(srv.url + "/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "loop" }], stream: true }),
        signal: ac.signal,
      });
      const reader = hog.body!.getReader();
      let got = "";
      while (!got.includes('"segment":"reasoning"')) got += new TextDecoder().decode((await reader.read()).value);
      const waited = await ask(srv.url, "second", { timeout: 0.5 });
      expect(waited.status).toBe(429);
      expect(JSON.parse(waited.text).error).toMatchObject({ type: "rate_limit_error", code: "queue_timeout" });
      ac.abort();
    } finally {
      await srv?.close();
      await loop.backend.close();
    }
  }, 60_000);
});
