/**
 * The UI's JSON data routes (`searchrl ui --runs DIR` and the agent server) over a real runs folder in the formats of
 * docs/run-format.md: listing, metrics, samples and results as traces, filters, comparison, path validation, auth,
 * and the UI files.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentServer, type RunningAgentServer } from "../src/server/agent.js";
import { loadAgentUi } from "../src/server/agent-ui.js";
import type { AgentTraceRecord } from "../src/server/agent-views.js";
import { writeUiFixtures } from "./ui-fixtures.js";

let root: string;
let outside: string;
let server: RunningAgentServer;
let locked: RunningAgentServer;

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, any> };
}

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), "searchrl-ui-data-"));
  outside = mkdtempSync(path.join(os.tmpdir(), "searchrl-outside-"));
  writeUiFixtures(root);
  // A secret outside the runs folder, reachable only through symbolic links placed inside it.
  writeFileSync(path.join(outside, "metrics.jsonl"), '{"step": 1, "secret": "TOP-SECRET"}\n');
  mkdirSync(path.join(outside, "samples"));
  symlinkSync(outside, path.join(root, "linked-run"));
  mkdirSync(path.join(root, "sneaky"));
  symlinkSync(path.join(outside, "metrics.jsonl"), path.join(root, "sneaky", "metrics.jsonl"));
  server = await startAgentServer({ runsDir: root });
  locked = await startAgentServer({ runsDir: root, token: "s3cret" });
});

afterAll(async () => {
  await server?.close();
  await locked?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe("viewer server: runs", () => {
  it("reports viewer mode and has no agent", async () => {
    const info = await get(`${server.url}/api/info`);
    expect(info.body).toMatchObject({ mode: "viewer", model: null, runs: true, auth: false });
    const chat = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
    });
    expect(chat.status).toBe(404);
    expect(((await chat.json()) as any).error.code).toBe("no_agent");
  });

  it("lists the runs with their last metrics, skipping a half-written line", async () => {
    const { status, body } = await get(`${server.url}/api/runs`);
    expect(status).toBe(200);
    const names = body.runs.map((r: any) => r.name);
    expect(names).toContain("r1-searcher-rl");
    expect(names).toContain("r1-plus-rl");
    expect(names).not.toContain("linked-run"); // symbolic links are not followed
    const run = body.runs.find((r: any) => r.name === "r1-searcher-rl");
    expect(run).toMatchObject({
      steps: 30,
      last_step: 30,
      stage: "rl",
      sample_steps: 2,
      checkpoints: ["step-000020"],
      latest_checkpoint: "step-000020",
    });
    expect(typeof run.last.reward_mean).toBe("number");
  });

  it("serves metrics, all or only after a step", async () => {
    const all = await get(`${server.url}/api/runs/r1-searcher-rl/metrics`);
    expect(all.body.rows).toHaveLength(30);
    expect(all.body.skipped).toBe(1);
    expect(all.body.rows.map((r: any) => r.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const tail = await get(`${server.url}/api/runs/r1-searcher-rl/metrics?since=27`);
    expect(tail.body.rows.map((r: any) => r.step)).toEqual([28, 29, 30]);
  });

  it("returns run details with config and sample steps", async () => {
    const { body } = await get(`${server.url}/api/runs/r1-plus-rl`);
    expect(body.config).toMatchObject({ protocol: "r1-searcher-plus" });
    expect(body.samples.map((s: any) => s.step)).toEqual([10, 20]);
  });

  it("turns sampled trajectories into traces split by the protocol", async () => {
    const { body } = await get(`${server.url}/api/runs/r1-searcher-rl/samples/10?limit=100`);
    expect(body.total).toBe(8);
    const rec = body.items[3] as AgentTraceRecord; // i = 3: two searches
    expect(rec.retrievals).toBe(2);
    const kinds = rec.trace.steps.map((s) => s.kind);
    expect(kinds.filter((k) => k === "query")).toHaveLength(2);
    expect(kinds[kinds.length - 1]).toBe("answer");
    const q0 = rec.trace.steps.find((s) => s.kind === "query")!;
    expect(q0).toMatchObject({ query: "Morrow Tower country", index: 0 });
    expect(q0.kind === "query" && q0.passages?.[0].title).toBe("Morrow Tower");
    // R1-Searcher++ samples carry an internal fact step.
    const plus = await get(`${server.url}/api/runs/r1-plus-rl/samples/10?limit=100`);
    const withInternal = (plus.body.items as AgentTraceRecord[]).filter((r) =>
      r.trace.steps.some((s) => s.kind === "internal"),
    );
    expect(withInternal.length).toBeGreaterThan(0);
  });

  it("filters by correctness, reward, retrievals, dataset and question text", async () => {
    const base = `${server.url}/api/runs/r1-searcher-rl/samples/10`;
    const all = (await get(`${base}?limit=100`)).body.items as AgentTraceRecord[];
    const ok = await get(`${base}?correct=true&limit=100`);
    expect(ok.body.matched).toBe(all.filter((r) => r.correct).length);
    expect(ok.body.items.every((r: AgentTraceRecord) => r.correct)).toBe(true);
    const bad = await get(`${base}?correct=false&limit=100`);
    expect(ok.body.matched + bad.body.matched).toBe(8);
    const hiReward = await get(`${base}?reward_min=0.5&limit=100`);
    expect(hiReward.body.matched).toBe(all.filter((r) => (r.reward ?? -1) >= 0.5).length);
    const two = await get(`${base}?retrievals_min=2&limit=100`);
    expect(two.body.items.every((r: AgentTraceRecord) => r.retrievals >= 2)).toBe(true);
    expect(two.body.matched).toBe(all.filter((r) => r.retrievals >= 2).length);
    const ds = await get(`${base}?dataset=hotpotqa&limit=100`);
    expect(ds.body.matched).toBe(4);
    expect(ds.body.facets.datasets).toEqual(["2wikimultihopqa", "hotpotqa"]);
    const text = await get(`${base}?q=hungary&limit=100`);
    expect(text.body.items.every((r: AgentTraceRecord) => r.question.includes("Hungary"))).toBe(true);
    expect(text.body.matched).toBe(2);
    const paged = await get(`${base}?offset=6&limit=5`);
    expect(paged.body.items).toHaveLength(2);
  });

  it("rejects bad filter values with 400", async () => {
    for (const q of ["correct=maybe", "reward_min=abc", "limit=0", "limit=10000", "retrievals_min=-1"]) {
      const r = await get(`${server.url}/api/runs/r1-searcher-rl/samples/10?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.message).toMatch(/invalid query/);
    }
  });
});

describe("viewer server: results and comparison", () => {
  it("lists result files with their summaries", async () => {
    const { body } = await get(`${server.url}/api/results`);
    const names = body.results.map((r: any) => r.name);
    expect(names).toEqual(["evals/model-a/results.jsonl", "evals/model-b/results.jsonl"]);
    expect(body.results[1].summary).toMatchObject({ count: 4, em: 0.5 });
  });

  it("serves result rows as traces with verdicts from Cover-EM", async () => {
    const { body } = await get(`${server.url}/api/results/${encodeURIComponent("evals/model-b/results.jsonl")}`);
    expect(body.total).toBe(4);
    expect(body.items.map((r: AgentTraceRecord) => r.correct)).toEqual([true, false, true, false]);
    const r0 = body.items[0] as AgentTraceRecord;
    expect(r0.trace.protocol).toBe("r1-searcher");
    expect(r0.trace.steps.filter((s) => s.kind === "query").map((s) => s.kind === "query" && s.query)).toEqual([
      "Citibank founded year",
      "US president 1812",
    ]);
    expect(r0.metrics).toMatchObject({ em: 1, cem: 1, f1: 1 });
    const q = r0.trace.steps.find((s) => s.kind === "query");
    expect(q && q.kind === "query" && q.passages?.[0].text).toContain("Citibank was founded in 1812");
  });

  it("compares two sources on the same questions", async () => {
    const a = encodeURIComponent("results:evals/model-a/results.jsonl");
    const b = encodeURIComponent("results:evals/model-b/results.jsonl");
    const all = await get(`${server.url}/api/compare?a=${a}&b=${b}`);
    expect(all.body.total).toBe(4);
    const differ = await get(`${server.url}/api/compare?a=${a}&b=${b}&only=differ`);
    expect(differ.body.matched).toBe(2);
    for (const p of differ.body.items) expect(p.a.correct).not.toBe(p.b.correct);
    const mixed = await get(`${server.url}/api/compare?a=${a}&b=${encodeURIComponent("run:r1-searcher-rl@10")}`);
    expect(mixed.body.total).toBe(4);
  });
});

describe("path validation", () => {
  it("never resolves a name outside the runs folder", async () => {
    for (const name of [
      "..",
      "../..",
      "../etc/passwd",
      "..%2F..%2Fetc",
      "%2Fetc",
      "linked-run",
      "a/../../x",
      "r1-searcher-rl/../../",
    ]) {
      const r = await get(`${server.url}/api/runs/${name.includes("%") ? name : encodeURIComponent(name)}/metrics`);
      expect([400, 404], name).toContain(r.status);
      expect(JSON.stringify(r.body)).not.toContain("TOP-SECRET");
    }
    const res = await get(`${server.url}/api/results/${encodeURIComponent("../../etc/passwd")}`);
    expect(res.status).toBe(400);
    const src = await get(`${server.url}/api/trajectories?source=${encodeURIComponent("results:../x/results.jsonl")}`);
    expect(src.status).toBe(400);
    const bad = await get(`${server.url}/api/trajectories?source=file:/etc/passwd`);
    expect(bad.status).toBe(400);
  });

  it("does not read a metrics file that links outside the folder", async () => {
    const r = await get(`${server.url}/api/runs/sneaky/metrics`);
    expect(r.status).toBe(200);
    expect(r.body.rows).toEqual([]);
    expect(JSON.stringify(r.body)).not.toContain("TOP-SECRET");
  });

  it("answers unknown runs and steps with 404", async () => {
    expect((await get(`${server.url}/api/runs/nope/metrics`)).status).toBe(404);
    expect((await get(`${server.url}/api/runs/r1-searcher-rl/samples/11`)).status).toBe(404);
    expect((await get(`${server.url}/api/runs/r1-searcher-rl/samples/x1`)).status).toBe(400);
  });
});

describe("auth and UI files", () => {
  it("requires the bearer token on data routes but not on /api/info, /health and the page", async () => {
    expect((await get(`${locked.url}/api/runs`)).status).toBe(401);
    const wrong = await get(`${locked.url}/api/runs`, { authorization: "Bearer nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.type).toBe("authentication_error");
    expect((await get(`${locked.url}/api/runs`, { authorization: "Bearer s3cret" })).status).toBe(200);
    expect((await get(`${locked.url}/api/info`)).body.auth).toBe(true);
    expect((await get(`${locked.url}/health`)).status).toBe(200);
    expect((await fetch(`${locked.url}/`)).status).toBe(200);
  });

  it("serves the UI page and its assets, nothing else", async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('src="ui/app.js"');
    const js = await fetch(`${server.url}/ui/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    for (const p of ["/ui/../package.json", "/ui/%2e%2e/package.json", "/ui/nope.js", "/package.json"]) {
      expect((await fetch(`${server.url}${p}`)).status, p).toBe(404);
    }
  });
});

describe("locating the UI files", () => {
  it("bundles ui/src in memory with the build script (a source checkout without a build)", async () => {
    const { buildUi } = (await import(path.resolve(__dirname, "..", "ui", "build.mjs"))) as {
      buildUi: (o: { write: false }) => Promise<Array<{ path: string; contents: Uint8Array }>>;
    };
    const files = await buildUi({ write: false });
    const names = files.map((f) => f.path).sort();
    expect(names).toEqual(["app.css", "app.js", "app.js.map", "index.html"]);
    const js = new TextDecoder().decode(files.find((f) => f.path === "app.js")!.contents);
    expect(js).toContain("/v1/chat/completions");
  });

  it("serves a UI folder given explicitly, and refuses one without index.html", async () => {
    const custom = mkdtempSync(path.join(os.tmpdir(), "searchrl-ui-dir-"));
    writeFileSync(path.join(custom, "index.html"), "<!doctype html><title>custom</title>");
    writeFileSync(path.join(custom, "app.js"), "console.log(1)");
    const bundle = await loadAgentUi(custom);
    expect([...bundle!.files.keys()].sort()).toEqual(["/app.js", "/index.html"]);
    const srv = await startAgentServer({ runsDir: root, uiDir: custom });
    try {
      expect(await (await fetch(`${srv.url}/`)).text()).toContain("<title>custom</title>");
    } finally {
      await srv.close();
    }
    await expect(loadAgentUi(outside)).rejects.toThrow(/no index.html/);
    rmSync(custom, { recursive: true, force: true });
  });
});
