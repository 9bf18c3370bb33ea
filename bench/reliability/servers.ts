/**
 * Server sections of the reliability bench: bad HTTP input on every route of the retrieval, reward and agent servers
 * (at their default limits), load on the retrieval and reward servers (10 k requests at 64 concurrent, the client in
 * its own process), and the agent server under a burst of 64 clients (`searchrl serve agent` with its defaults, and
 * past its limits).
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import path from "node:path";
import { PROTOCOLS } from "../../src/protocol/index.js";
import { buildIndex, openRetriever } from "../../src/retrieval/index.js";
import type { Retriever } from "../../src/retrieval/types.js";
import { serveRetrieval } from "../../src/server/retrieval.js";
import { startRewardServer } from "../../src/server/reward.js";
import { startAgentServer, createRolloutAgent } from "../../src/server/agent.js";
import { createLlamaCppBackend } from "../../src/llm/llamacpp.js";
import { R1_SCRIPT, writeScriptedGguf } from "../../src/llm/testing/scripted-gguf.js";
import { agentSpec, badCases, retrievalSpecs, rewardSpec, runBadCases, type CaseResult } from "./bad-input.js";
import { collect, evalQuestions, kiltSample, QUICK, ROOT, spawnCli, type Row } from "./common.js";
import { spawn } from "node:child_process";

export interface ServerFixture {
  dir: string;
  /** BM25 index of the bundled KILT sample (retrieval server figures). */
  indexDir: string;
  /** BM25 index of a few one-line passages (agent figures: the scripted model reads them fast). */
  smallIndexDir: string;
  retriever: Retriever;
  gguf: string;
}

const SMALL_CORPUS = [
  { id: "1", title: "Paris", text: "Paris is the capital and largest city of France." },
  { id: "2", title: "Lyon", text: "Lyon is the third-largest city of France." },
  { id: "3", title: "Berlin", text: "Berlin is the capital of Germany." },
  { id: "4", title: "Madrid", text: "Madrid is the capital of Spain." },
];

export async function serverFixture(dir: string): Promise<ServerFixture> {
  const indexDir = path.join(dir, "kilt-index");
  await buildIndex({ corpus: kiltSample(), out: indexDir, progress: false });
  const smallIndexDir = path.join(dir, "small-index");
  await buildIndex({ corpus: SMALL_CORPUS, out: smallIndexDir, progress: false });
  const gguf = path.join(dir, "r1.gguf");
  writeScriptedGguf(gguf, R1_SCRIPT);
  return { dir, indexDir, smallIndexDir, retriever: await openRetriever(indexDir), gguf };
}

function badInputRow(server: string, route: string, results: CaseResult[], healthy: boolean): Row {
  const ok = results.filter((r) => r.ok).length;
  const fails = results.filter((r) => !r.ok);
  return {
    figure: `bad input: ${server} ${route}`,
    target: "≥ 100 cases, 100 % 4xx JSON naming the problem, still healthy",
    measured: `${ok}/${results.length} (${((100 * ok) / results.length).toFixed(1)} %)${healthy ? ", healthy after" : ", NOT healthy after"}`,
    met: results.length >= 100 && fails.length === 0 && healthy,
    ...(fails.length
      ? {
          note: fails
            .slice(0, 3)
            .map((f) => `${f.c.name}: ${f.why}`)
            .join("; "),
        }
      : {}),
  };
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

export async function badInputSection(fx: ServerFixture): Promise<Row[]> {
  const rows: Row[] = [];
  const limits = { maxK: 100, maxQueries: 1024, bodyLimit: 4 * 1024 * 1024 };
  const r = await serveRetrieval({ retriever: fx.retriever, port: 0 });
  try {
    for (const spec of retrievalSpecs(limits)) {
      const res = await runBadCases(r.url, spec.route, badCases(spec));
      const healthy = (await fetch(r.url + "/health")).ok && (await post(r.url + spec.route, spec.valid)).ok;
      rows.push(badInputRow("retrieval", spec.route, res, healthy));
    }
  } finally {
    await r.close();
  }
  const w = await startRewardServer({ preset: "r1-searcher-qwen" });
  try {
    const spec = rewardSpec({
      bodyLimit: 16 * 1024 * 1024,
      question: "What is the capital of France?",
      answer: "Paris",
    });
    const res = await runBadCases(w.url, spec.route, badCases(spec));
    const healthy = (await fetch(w.url + "/health")).ok && (await post(w.url + spec.route, spec.valid)).ok;
    rows.push(badInputRow("reward", spec.route, res, healthy));
  } finally {
    await w.close();
  }
  const backend = await createLlamaCppBackend({ modelPath: fx.gguf, sequences: 2, contextSize: 2048 });
  const small = await openRetriever(fx.smallIndexDir);
  const agent = createRolloutAgent({
    backend,
    retriever: small,
    protocol: PROTOCOLS["r1-searcher"],
    closeComponents: false,
  });
  const a = await startAgentServer({ agent, concurrency: 2 });
  try {
    const spec = agentSpec({ bodyLimit: 4 * 1024 * 1024, maxTokens: 8192, maxSearches: 9, timeoutS: 120 });
    const res = await runBadCases(a.url, spec.route, badCases(spec));
    const ok = await post(a.url + spec.route, spec.valid);
    const healthy = (await fetch(a.url + "/health")).ok && ok.ok;
    rows.push(badInputRow("agent", spec.route, res, healthy));
  } finally {
    await a.close();
    await backend.close();
    await small.close();
  }
  return rows;
}

interface LoadReport {
  requests: number;
  failed: number;
  statuses: Record<string, number>;
  errors: string[];
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Run the load client in its own process. */
async function loadClient(url: string, bodies: unknown[], n: number, c: number, dir: string): Promise<LoadReport> {
  const file = path.join(dir, `bodies-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(bodies));
  const p = spawn(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "bench", "reliability", "load-client.ts"), url, file, String(n), String(c)],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  const r = await collect(p).done;
  if (r.code !== 0) throw new Error(`load client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as LoadReport;
}

/** Server-side view during a load run (the server runs in this process): event-loop delay and GC pauses. */
function serverProbe(): {
  stop: () => { loopP99: number; loopMax: number; gcMax: number; gcTotal: number; cpuShare: number };
} {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  let gcMax = 0;
  let gcTotal = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMax = Math.max(gcMax, e.duration);
      gcTotal += e.duration;
    }
  });
  obs.observe({ entryTypes: ["gc"] });
  return {
    stop: () => {
      h.disable();
      obs.disconnect();
      const ms = (ns: number) => Math.max(0, ns / 1e6 - 5);
      const cpu = process.cpuUsage(cpu0);
      const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
      return { loopP99: ms(h.percentile(99)), loopMax: ms(h.max), gcMax, gcTotal, cpuShare };
    },
  };
}

function loadRow(server: string, r: LoadReport, probe: ReturnType<ReturnType<typeof serverProbe>["stop"]>): Row {
  const ratio = r.p99 / r.p50;
  return {
    figure: `load: ${server}, ${r.requests} requests at 64 concurrent`,
    target: "0 errors, p99 ≤ 5× p50",
    measured:
      `${r.failed} errors, ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms (${ratio.toFixed(1)}×), max ${r.max.toFixed(0)} ms; ` +
      `server event-loop delay p99 ${probe.loopP99.toFixed(1)} ms / max ${probe.loopMax.toFixed(0)} ms, longest GC pause ${probe.gcMax.toFixed(1)} ms (GC ${probe.gcTotal.toFixed(0)} ms in all), server CPU ${(100 * probe.cpuShare).toFixed(0)} % of a core, load average ${os.loadavg()[0].toFixed(1)}`,
    met: r.failed === 0 && ratio <= 5,
    ...(r.errors.length ? { note: r.errors.join("; ") } : {}),
  };
}

export async function loadSection(fx: ServerFixture): Promise<Row[]> {
  const n = QUICK ? 2000 : 10_000;
  const rows: Row[] = [];
  const qs = evalQuestions(500);
  const r = await serveRetrieval({ retriever: fx.retriever, port: 0 });
  try {
    const bodies = qs.map((q) => ({ queries: [q.question], k: 3 }));
    const probe = serverProbe();
    const rep = await loadClient(r.url + "/queries", bodies, n, 64, fx.dir);
    rows.push(loadRow("retrieval server /queries", rep, probe.stop()));
  } finally {
    await r.close();
  }
  const w = await startRewardServer({ preset: "r1-searcher-qwen" });
  try {
    const p = PROTOCOLS["r1-searcher"];
    const bodies = qs.map((q, i) => ({
      query: [
        p.buildPrompt(q.question, { variant: "train-base" }) +
          ` I know this. </think>\n\n<answer> ${i % 2 ? q.answer : "something else"} </answer><|endoftext|>`,
      ],
      labels: [q.answer],
    }));
    const probe = serverProbe();
    const rep = await loadClient(w.url + "/get_reward", bodies, n, 64, fx.dir);
    rows.push(loadRow("reward server /get_reward", rep, probe.stop()));
  } finally {
    await w.close();
  }
  return rows;
}

/** Start `searchrl serve agent` and wait for its URL. */
async function serveAgent(fx: ServerFixture, extra: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const p = spawnCli([
    "serve",
    "agent",
    "--llm",
    fx.gguf,
    "--retriever",
    fx.smallIndexDir,
    "--protocol",
    "r1-searcher",
    "--port",
    "0",
    ...extra,
  ]);
  const c = collect(p);
  const url = await new Promise<string>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /searchrl agent: (http:\/\/[^/\s]+)/.exec(c.out());
      if (m) {
        clearInterval(t);
        resolve(m[1]);
      }
    }, 50);
    void c.done.then((e) => {
      clearInterval(t);
      reject(new Error(`serve agent exited: ${e.stderr}`));
    });
  });
  return {
    url,
    stop: async () => {
      p.kill("SIGTERM");
      await c.done.catch(() => {});
    },
  };
}

async function burst(
  url: string,
  n: number,
): Promise<{ statuses: Record<string, number>; retryAfterOk: boolean; dropped: number }> {
  const res = await Promise.all(
    Array.from({ length: n }, () =>
      fetch(url + "/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "What is the capital of France?" }] }),
      }).then(
        async (r) => ({ status: r.status, retryAfter: r.headers.get("retry-after"), ok: (await r.text()).length > 0 }),
        () => ({ status: 0, retryAfter: null, ok: false }),
      ),
    ),
  );
  const statuses: Record<string, number> = {};
  for (const r of res) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return {
    statuses,
    retryAfterOk: res.filter((r) => r.status === 429).every((r) => Number(r.retryAfter) >= 1),
    dropped: res.filter((r) => r.status === 0).length,
  };
}

export async function agentBurstSection(fx: ServerFixture): Promise<Row[]> {
  const rows: Row[] = [];
  const fmt = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${v}× ${k === "0" ? "dropped" : k}`)
      .join(", ");
  const def = await serveAgent(fx, []);
  try {
    const b = await burst(def.url, 64);
    rows.push({
      figure: "agent server: burst of 64 concurrent clients, `serve agent` defaults",
      target: "queued, not rejected (all 200)",
      measured: fmt(b.statuses),
      met: b.statuses["200"] === 64,
    });
  } finally {
    await def.stop();
  }
  const tight = await serveAgent(fx, ["--concurrency", "1", "--queue", "4"]);
  try {
    const b = await burst(tight.url, 64);
    const bad = Object.keys(b.statuses).filter((s) => s !== "200" && s !== "429");
    rows.push({
      figure: "agent server: 64 clients past its limits (--concurrency 1 --queue 4)",
      target: "429 with Retry-After, never a 5xx or a dropped connection",
      measured: `${fmt(b.statuses)}; Retry-After on every 429: ${b.retryAfterOk ? "yes" : "NO"}`,
      met: bad.length === 0 && b.retryAfterOk && (b.statuses["429"] ?? 0) > 0,
    });
  } finally {
    await tight.stop();
  }
  return rows;
}
