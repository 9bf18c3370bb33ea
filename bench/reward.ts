/**
 * Reward throughput: rewards/s of each preset on ≥10k realistic trajectories, scored in-process (`scoreBatch`) and
 * through the reward server over loopback HTTP (a separate process running the same server as `searchrl serve reward`), one query per request as
 * OpenRLHF sends them and batched, side by side with the ratios.
 *
 * Trajectories: every question of the bundled eval sets (HotpotQA, 2Wiki, Musique, Bamboogle: 1,625) × 7 responses with
 * 0–3 retrievals of 3 KILT-style passages (`id\ttitle   100 words`), rendered with the preset's training prompt and the
 * upstream document block; answers correct, partial, wrong, too long, or missing.
 *
 *   npm run bench:reward            (SEARCHRL_BENCH_QUICK=1 for a smaller run)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PROTOCOLS } from "../src/protocol/index.js";
import type { ResponseProtocol } from "../src/protocol/types.js";
import {
  GoldTable,
  loadGoldTable,
  REWARD_PRESET_NAMES,
  scoreBatch,
  type RewardPresetName,
} from "../src/reward/index.js";
import { startRewardServer } from "../src/server/reward.js";
import { mapLimit } from "../src/util/concurrency.js";
import { Rng } from "../src/util/rng.js";
import type { Passage } from "../src/util/types.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const QUICK = process.env.SEARCHRL_BENCH_QUICK === "1";
const SAMPLES_PER_QUESTION = 7;
const SINGLE_CONCURRENCY = 64;
const BATCH_SIZE = 256;

interface Row {
  question: string;
  answer: string;
}

function loadRows(): Row[] {
  const rows: Row[] = [];
  for (const f of ["hotpotqa_500.jsonl", "2wiki_500.jsonl", "musique_500.jsonl", "bamboogle.jsonl"]) {
    for (const line of readFileSync(path.join(ROOT, "data", "r1-searcher", "eval_set", f), "utf8").split("\n")) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as Row;
      rows.push({ question: r.question, answer: String(r.answer) });
    }
  }
  return QUICK ? rows.slice(0, 300) : rows;
}

function buildTrajectories(preset: RewardPresetName, rows: Row[]): string[] {
  const rng = new Rng(`bench-reward-${preset}`);
  const vocab = rows.flatMap((r) => `${r.question} ${r.answer}`.split(/\s+/)).filter((w) => w.length > 0);
  const words = (n: number) => Array.from({ length: n }, () => vocab[rng.int(vocab.length)]).join(" ");
  let nextId = 1000;
  const passage = (): Passage => {
    const id = String(nextId++);
    const title = words(2);
    const text = words(100);
    return { id, title, text, raw: `${id}\t${title}   ${text}` };
  };
  const plus = preset === "r1-searcher-plus";
  const proto: ResponseProtocol = plus ? PROTOCOLS["r1-searcher-plus"] : PROTOCOLS["r1-searcher"];
  const prompt = (q: string) =>
    plus
      ? proto.buildPrompt(q)
      : preset === "r1-searcher-qwen"
        ? proto.buildPrompt(q, { variant: "train-base" })
        : proto.buildPrompt(q, { variant: "train-chat" });
  const eos = plus ? "<|im_end|>" : preset === "r1-searcher-qwen" ? "<|endoftext|>" : "<|eot_id|>";
  const out: string[] = [];
  for (const row of rows) {
    for (let k = 0; k < SAMPLES_PER_QUESTION; k++) {
      const searches = k % 4;
      let text = ` ${words(20)}.`;
      if (plus && k % 3 === 0) text += ` <internal> ${words(12)} </internal>`;
      for (let s = 0; s < searches; s++) {
        const seg = `${text} I need to search. ${proto.queryOpen} ${words(4)} `.trim();
        text = seg + proto.renderDocumentBlock([passage(), passage(), passage()]) + `${words(25)}.`;
      }
      const answer =
        k === 0 || k === 4
          ? row.answer
          : k === 1
            ? `${row.answer} ${words(2)}`
            : k === 2
              ? words(3)
              : k === 3
                ? `${words(9)} ${row.answer}`
                : k === 5
                  ? row.answer.split(" ")[0]
                  : "";
      text +=
        k === 6
          ? ` ${words(10)}</think>\n\nno answer tags`
          : ` So the answer is clear.</think>\n\n<answer> ${answer} </answer>`;
      out.push(prompt(row.question) + text + eos);
    }
  }
  return out;
}

/**
 * The server runs in a separate process: this same file started with SEARCHRL_BENCH_REWARD_CHILD set (it calls the
 * same `startRewardServer` as `searchrl serve reward`, without loading every CLI command).
 */
async function serverChild(): Promise<void> {
  const preset = process.env.SEARCHRL_BENCH_PRESET as RewardPresetName;
  const groupSize = process.env.SEARCHRL_BENCH_GROUP ? Number(process.env.SEARCHRL_BENCH_GROUP) : undefined;
  const gold = await loadGoldTable(process.env.SEARCHRL_BENCH_DATA as string);
  const server = await startRewardServer({
    preset,
    gold,
    groupSize,
    groupTimeoutMs: 30_000,
    host: "127.0.0.1",
    port: 0,
  });
  process.stdout.write(`listening on ${server.url}/get_reward\n`);
  process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
}

async function startServer(preset: RewardPresetName, dataFile: string): Promise<{ url: string; child: ChildProcess }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SEARCHRL_BENCH_REWARD_CHILD: "1",
    SEARCHRL_BENCH_PRESET: preset,
    SEARCHRL_BENCH_DATA: dataFile,
    ...(preset === "r1-searcher-plus" ? { SEARCHRL_BENCH_GROUP: String(SAMPLES_PER_QUESTION) } : {}),
  };
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`reward server did not start: ${err}`)), 60_000);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)\/get_reward/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`reward server exited (${code}): ${err}`)));
  });
  return { url, child };
}

async function postRewards(url: string, query: string[]): Promise<number[]> {
  const res = await fetch(`${url}/get_reward`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return ((await res.json()) as { rewards: number[] }).rewards;
}

/** CPU time (user + system) of a process in ms from /proc (Linux); null elsewhere. */
function procCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime in clock ticks (CLK_TCK = 100)
  } catch {
    return null;
  }
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time of this process + the server process. */
function totalCpuMs(pid: number | undefined): number | null {
  const c = procCpuMs(pid);
  return c === null ? null : c + selfCpuMs();
}

function rate(n: number, ms: number): number {
  return (n / ms) * 1000;
}

async function main(): Promise<void> {
  const rows = loadRows();
  const tmp = mkdtempSync(path.join(tmpdir(), "searchrl-bench-reward-"));
  const dataFile = path.join(tmp, "gold.jsonl");
  writeFileSync(dataFile, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const gold = GoldTable.fromRows(rows);
  const results: Array<Record<string, number | string>> = [];
  const t0 = Date.now();
  try {
    for (const preset of REWARD_PRESET_NAMES) {
      const texts = buildTrajectories(preset, rows);
      const items = texts.map((text) => ({ text }));
      const avgChars = Math.round(texts.reduce((a, t) => a + t.length, 0) / texts.length);

      // in-process: warm-up, then the whole set, best of 3 (groups for R1-Searcher++ are formed from the batch)
      scoreBatch(preset, items.slice(0, 500), { gold });
      let inproc = scoreBatch(preset, items, { gold });
      let inMs = Infinity;
      let inCpuMs = Infinity;
      let t = 0;
      for (let rep = 0; rep < 3; rep++) {
        t = performance.now();
        const c = selfCpuMs();
        inproc = scoreBatch(preset, items, { gold });
        inMs = Math.min(inMs, performance.now() - t);
        inCpuMs = Math.min(inCpuMs, selfCpuMs() - c);
      }

      const { url, child } = await startServer(preset, dataFile);
      try {
        await postRewards(url, texts.slice(0, SAMPLES_PER_QUESTION)); // warm-up with one whole question group
        // batched: BATCH_SIZE queries per request (whole question groups for R1-Searcher++: 256 is not a multiple of 7,
        // so send 7·36 = 252)
        const bs =
          preset === "r1-searcher-plus"
            ? SAMPLES_PER_QUESTION * Math.floor(BATCH_SIZE / SAMPLES_PER_QUESTION)
            : BATCH_SIZE;
        const batches: string[][] = [];
        for (let i = 0; i < texts.length; i += bs) batches.push(texts.slice(i, i + bs));
        t = performance.now();
        let c0 = totalCpuMs(child.pid);
        const batched = (await mapLimit(batches, 2, (b) => postRewards(url, b))).flat();
        const batchMs = performance.now() - t;
        let c1 = totalCpuMs(child.pid);
        const batchCpuMs = c0 !== null && c1 !== null ? c1 - c0 : null;
        // one query per request, SINGLE_CONCURRENCY in flight (OpenRLHF's single-sample executor)
        t = performance.now();
        c0 = totalCpuMs(child.pid);
        const single = (await mapLimit(texts, SINGLE_CONCURRENCY, (q) => postRewards(url, [q]))).flat();
        const singleMs = performance.now() - t;
        c1 = totalCpuMs(child.pid);
        const singleCpuMs = c0 !== null && c1 !== null ? c1 - c0 : null;
        const perReward = (ms: number | null) => (ms === null ? -1 : Math.round((ms * 1000) / texts.length));
        const mismatch = inproc.filter((r, i) => r.reward !== batched[i] || r.reward !== single[i]).length;
        if (mismatch > 0) throw new Error(`${preset}: ${mismatch} rewards differ between in-process and HTTP`);
        const row = {
          preset,
          trajectories: texts.length,
          avgChars,
          inProcessPerSec: Math.round(rate(texts.length, inMs)),
          httpBatchedPerSec: Math.round(rate(texts.length, batchMs)),
          httpSinglePerSec: Math.round(rate(texts.length, singleMs)),
          inProcessCpuUsPerReward: perReward(inCpuMs),
          httpBatchedCpuUsPerReward: perReward(batchCpuMs),
          httpSingleCpuUsPerReward: perReward(singleCpuMs),
          meanReward: Number((inproc.reduce((a, r) => a + r.reward, 0) / inproc.length).toFixed(4)),
        };
        results.push(row);
        process.stderr.write(`${preset}: done (${((Date.now() - t0) / 1000).toFixed(1)} s elapsed)\n`);
      } finally {
        child.kill("SIGTERM");
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  const cell = (x: unknown) => (Number(x) < 0 ? "n/a" : String(x));
  const ratio = (a: unknown, b: unknown) =>
    Number(a) < 0 || Number(b) <= 0 ? "n/a" : (Number(a) / Number(b)).toFixed(3);
  const header = [
    "preset",
    "trajectories",
    "avg chars",
    "in-process/s",
    "HTTP batched/s",
    "HTTP 1-per-req/s",
    "batched÷in-proc",
    "single÷in-proc",
    "CPU µs/reward in-proc",
    "batched",
    "single",
  ];
  const lines = results.map((r) => [
    String(r.preset),
    String(r.trajectories),
    String(r.avgChars),
    String(r.inProcessPerSec),
    String(r.httpBatchedPerSec),
    String(r.httpSinglePerSec),
    ratio(r.httpBatchedPerSec, r.inProcessPerSec),
    ratio(r.httpSinglePerSec, r.inProcessPerSec),
    cell(r.inProcessCpuUsPerReward),
    cell(r.httpBatchedCpuUsPerReward),
    cell(r.httpSingleCpuUsPerReward),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  process.stdout.write(
    `\nreward throughput (wall clock; in-process = best of 3 passes; server = separate process on 127.0.0.1; batched = ${BATCH_SIZE}/request, 2 in flight; single = 1/request, ${SINGLE_CONCURRENCY} in flight)\n` +
      `CPU µs/reward = CPU time of this process (+ the server process for HTTP) per reward: robust to a busy machine\n`,
  );
  process.stdout.write(fmt(header) + "\n" + lines.map(fmt).join("\n") + "\n");
  process.stdout.write(`total ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(JSON.stringify({ bench: "reward", quick: QUICK, results }) + "\n");
}

(process.env.SEARCHRL_BENCH_REWARD_CHILD === "1" ? serverChild() : main()).catch((err) => {
  process.stderr.write(`bench:reward failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
