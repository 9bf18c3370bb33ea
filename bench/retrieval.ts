/**
 * Retrieval benchmark (`npm run bench:retrieval [-- --quick]`).
 *
 * BM25: a generated corpus of ~100-word passages (Zipfian pseudo-word vocabulary, seeded) indexed through the real
 * `buildIndex` pipeline (passage store + analyzer + LanceDB FTS). Reports build time and size, single-threaded
 * p50/p99 for 1–5 word queries, QPS with 8 concurrent HTTP clients through the retrieval server (a separate process),
 * and, on a subset, top-10 overlap against an exact BM25 scorer plus the same figures for the rejected alternatives
 * (SQLite FTS5 via better-sqlite3, minisearch, our exact in-memory scorer), side by side with ratios.
 *
 * Dense: seeded low-rank synthetic vectors (x = normalize(A·z + noise), z ~ N(0, I_32), 384-d) at several sizes:
 * ivf-sq8 build time, recall@10 against exact search and p50/p99 across nprobe, and exact flat search for comparison.
 *
 * Flags: --quick (small sizes), --passages N, --subset N, --dense-sizes 200000,1000000, --queries N, --qps-seconds S,
 * --skip-bm25, --skip-dense, --skip-server, --lance-ann (also LanceDB IVF_PQ/HNSW_SQ at the smallest dense size),
 * --exact-full (also the exact in-memory BM25 engine at full size),
 * --json FILE. Data is generated into bench/.data/retrieval (gitignored) and reused between runs.
 * Timings on a shared 2-core machine are contended: compare ratios from the same run.
 */
import { spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  readdirSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Rng } from "../src/util/rng.js";
import { readCorpus } from "../src/corpus/readers.js";
import { buildIndex } from "../src/retrieval/build.js";
import { openRetriever } from "../src/retrieval/factory.js";
import { Analyzer } from "../src/retrieval/bm25/analyzer.js";
import { Bm25MemoryBuilder, type ScoredRow } from "../src/retrieval/bm25/memory.js";
import { LanceFtsEngine, loadLance } from "../src/retrieval/bm25/lance.js";
import { MatrixKernels } from "../src/retrieval/dense/ort.js";
import { buildVectorIndex, VectorIndex, VECTORS_FILE } from "../src/retrieval/dense/vector-index.js";

// ---- options ----------------------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const QUICK = flag("quick");
const N = Number(opt("passages", QUICK ? "100000" : "1000000"));
const SUBSET = Math.min(N, Number(opt("subset", QUICK ? "20000" : "100000")));
const DENSE_SIZES = opt("dense-sizes", QUICK ? "50000" : "200000,1000000")
  .split(",")
  .map(Number)
  .filter((x) => x > 0);
const NQ = Number(opt("queries", QUICK ? "300" : "1000"));
const QPS_SECONDS = Number(opt("qps-seconds", QUICK ? "4" : "10"));
const VOCAB = QUICK ? 50_000 : 200_000;
const DIM = 384;
const LATENT = 32;
const SEED = 20261121;
const ROOT = path.resolve(import.meta.dirname, ".data", "retrieval");
mkdirSync(ROOT, { recursive: true });
const results: Record<string, unknown> = {
  quick: QUICK,
  passages: N,
  subset: SUBSET,
  denseSizes: DENSE_SIZES,
  queries: NQ,
  date: new Date().toISOString(),
};
const t0 = Date.now();
const log = (s: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);

// ---- helpers --------------------------------------------------------------------------------------------------------

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
function dirSize(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((s, n) => s + dirSize(path.join(p, n)), 0);
}
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
function overlap(a: ScoredRow[] | number[], b: ScoredRow[]): number {
  if (b.length === 0) return a.length === 0 ? 1 : 0;
  const bs = new Set(b.map((x) => x.row));
  let n = 0;
  for (const x of a) if (bs.has(typeof x === "number" ? x : x.row)) n++;
  return n / b.length;
}
function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => `| ${r.map((x, c) => x.padEnd(w[c])).join(" | ")} |`).join("\n");
}
async function timeQueries<T>(queries: T[], fn: (q: T) => Promise<unknown> | unknown): Promise<number[]> {
  const lat: number[] = [];
  for (const q of queries) {
    const s = performance.now();
    await fn(q);
    lat.push(performance.now() - s);
  }
  return lat;
}

// ---- corpus generation ----------------------------------------------------------------------------------------------

const SYL = [
  "ka",
  "lo",
  "mi",
  "ra",
  "te",
  "sun",
  "dor",
  "vel",
  "qua",
  "ni",
  "pe",
  "so",
  "tar",
  "bri",
  "gon",
  "hal",
  "zu",
  "fen",
  "wy",
  "cor",
];
function pseudoWord(i: number): string {
  let s = "";
  let x = i + 1;
  do {
    s += SYL[x % SYL.length];
    x = Math.floor(x / SYL.length);
  } while (x > 0);
  return s;
}

interface CorpusMeta {
  version: 2;
  n: number;
  vocab: number;
  seed: number;
  queries: string[];
}

/** Zipf(s = 1.0) sampler over `v` ranks via inverse CDF. */
function zipfSampler(v: number, rng: Rng): () => number {
  const cdf = new Float64Array(v);
  let acc = 0;
  for (let r = 0; r < v; r++) cdf[r] = acc += 1 / (r + 1);
  for (let r = 0; r < v; r++) cdf[r] /= acc;
  return () => {
    const u = rng.next();
    let lo = 0;
    let hi = v - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

async function generateCorpus(file: string, n: number): Promise<CorpusMeta> {
  const metaFile = `${file}.meta.json`;
  if (existsSync(file) && existsSync(metaFile)) {
    const m = JSON.parse(readFileSync(metaFile, "utf8")) as CorpusMeta;
    if (m.version === 2 && m.n === n && m.vocab === VOCAB && m.seed === SEED && m.queries.length >= NQ) return m;
  }
  const rng = new Rng(SEED);
  const words = Array.from({ length: VOCAB }, (_, i) => pseudoWord(i));
  const zipf = zipfSampler(VOCAB, rng);
  // Query sources: passages inside the subset, so the same queries serve every engine.
  const qrng = new Rng(SEED + 1);
  const want = new Map<number, number>(); // passage row → number of query words (1..5)
  while (want.size < NQ) want.set(qrng.int(SUBSET), 1 + (want.size % 5));
  const queries = new Map<number, string>();
  const ws = createWriteStream(file, { highWaterMark: 1 << 22 });
  let buf: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 90 + rng.int(21);
    const ranks: number[] = new Array(len);
    for (let j = 0; j < len; j++) ranks[j] = zipf();
    const title = `${words[zipf() % 5000]} ${words[zipf() % 20000]}`;
    buf.push(`${i}\t${title}   ${ranks.map((r) => words[r]).join(" ")}\n`);
    const q = want.get(i);
    if (q !== undefined) {
      // 1–5 distinct words of the passage, skipping the 100 most frequent ranks (stop-word-like).
      const pool = [...new Set(ranks.filter((r) => r >= 100))];
      const picked: string[] = [];
      for (let j = 0; j < q && pool.length > 0; j++) picked.push(words[pool.splice(qrng.int(pool.length), 1)[0]]);
      queries.set(i, picked.join(" "));
    }
    if (buf.length >= 5000) {
      if (!ws.write(buf.join(""))) await new Promise<void>((r) => ws.once("drain", () => r()));
      buf = [];
    }
  }
  ws.write(buf.join(""));
  await new Promise<void>((r) => ws.end(() => r()));
  const meta: CorpusMeta = {
    version: 2,
    n,
    vocab: VOCAB,
    seed: SEED,
    queries: [...want.keys()].map((row) => queries.get(row)!),
  };
  writeFileSync(metaFile, JSON.stringify(meta));
  return meta;
}

// ---- BM25 -----------------------------------------------------------------------------------------------------------

interface EngineRow {
  engine: string;
  n: number;
  buildS: number;
  sizeBytes: number;
  sizeNote: string;
  p50: number;
  p99: number;
  overlap: number;
}

async function startServerProcess(indexDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = path.join(ROOT, "server-child.mts");
  writeFileSync(
    script,
    `import { openRetriever } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/retrieval/index.ts"))};\n` +
      `import { serveRetrieval } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/server/retrieval.ts"))};\n` +
      `const r = await openRetriever(process.argv[2], { bm25Engine: "lancedb" });\n` +
      `const s = await serveRetrieval({ retriever: r, port: 0 });\n` +
      `process.stdout.write("URL " + s.url + "\\n");\n` +
      `process.on("SIGTERM", async () => { await s.close(); await r.close(); process.exit(0); });\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script, indexDir], {
    cwd: path.resolve(import.meta.dirname, ".."),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /URL (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise<void>((r) => {
        child.once("exit", () => r());
        child.kill("SIGTERM");
      }),
  };
}

async function loadTest(
  url: string,
  queries: string[],
  seconds: number,
  clients: number,
): Promise<{ qps: number; p50: number; p99: number; errors: number; loop: unknown }> {
  const lat: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const q = queries[next++ % queries.length];
        const s = performance.now();
        const r = await fetch(`${url}/retrieve`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ queries: [q], topk: 10, return_scores: true }),
        });
        await r.arrayBuffer();
        if (r.status !== 200) errors++;
        lat.push(performance.now() - s);
      }
    }),
  );
  const health = (await (await fetch(`${url}/health`)).json()) as { eventLoopDelayMs: unknown };
  return { qps: lat.length / seconds, p50: pct(lat, 50), p99: pct(lat, 99), errors, loop: health.eventLoopDelayMs };
}

async function benchBm25(corpus: string, meta: CorpusMeta): Promise<void> {
  const queries = meta.queries.slice(0, NQ);
  const analyzer = new Analyzer();
  const qTerms = queries.map((q) => analyzer.terms(q));

  // -- LanceDB at full size, through the real build pipeline.
  const dirN = path.join(ROOT, `bm25-${N}`);
  log(`BM25: building LanceDB index over ${N} passages ...`);
  let s = Date.now();
  await buildIndex({ corpus, out: dirN, bm25: true, progress: true });
  const buildN = (Date.now() - s) / 1000;
  const sizeN = dirSize(dirN);
  const lanceN = await openRetriever(dirN, { bm25Engine: "lancedb" });
  await timeQueries(queries.slice(0, 50), (q) => lanceN.search([q], 10));
  const latN = await timeQueries(queries, (q) => lanceN.search([q], 10));
  const byLen: Record<number, number[]> = {};
  queries.forEach((q, i) => (byLen[q.split(" ").length] ??= []).push(latN[i]));
  // Batch throughput in process (the rollout engine's pattern: one call with 256 queries).
  const batch = Array.from({ length: 256 }, (_, i) => queries[i % queries.length]);
  s = Date.now();
  await lanceN.search(batch, 3);
  const batchMs = Date.now() - s;
  await lanceN.close();
  // Optional: the exact in-memory engine at full size (it is the default engine up to 100 k passages).
  if (flag("exact-full")) {
    const eng = await LanceFtsEngine.open(path.join(dirN, "bm25"));
    const docs: string[] = new Array(eng.size);
    for await (const { row, tok } of eng.scanTerms()) docs[row] = tok;
    const sx = Date.now();
    const b = new Bm25MemoryBuilder();
    for (const d of docs) b.add(d ? d.split(" ") : []);
    const mem = b.finish();
    const memBuild = (Date.now() - sx) / 1000;
    const memLat = await timeQueries(qTerms, (t) => mem.search(t, 10));
    const lanceLat = await timeQueries(qTerms, (t) => eng.search(t, 10));
    eng.close();
    results.exactFull = {
      n: N,
      buildS: memBuild,
      p50: pct(memLat, 50),
      p99: pct(memLat, 99),
      lanceEngineP50: pct(lanceLat, 50),
      lanceEngineP99: pct(lanceLat, 99),
    };
    log(
      `exact in-memory @${N}: build ${f(memBuild, 1)} s (from stored terms), p50 ${f(pct(memLat, 50))} ms, p99 ${f(pct(memLat, 99))} ms; LanceDB engine alone in the same process: p50 ${f(pct(lanceLat, 50))} ms, p99 ${f(pct(lanceLat, 99))} ms`,
    );
  }
  const bm25N = {
    n: N,
    buildS: buildN,
    sizeBytes: sizeN,
    lanceBytes: dirSize(path.join(dirN, "bm25")),
    p50: pct(latN, 50),
    p90: pct(latN, 90),
    p99: pct(latN, 99),
    p50ByWords: Object.fromEntries(Object.entries(byLen).map(([k, v]) => [k, pct(v, 50)])),
    batch256Ms: batchMs,
  };
  results.bm25 = bm25N;
  log(
    `BM25 LanceDB @${N}: build ${f(buildN, 1)} s, ${mb(sizeN)} (LanceDB part ${mb(bm25N.lanceBytes)}), p50 ${f(bm25N.p50)} ms, p99 ${f(bm25N.p99)} ms, batch of 256: ${batchMs} ms`,
  );
  log(
    `  p50 by query words: ${Object.entries(bm25N.p50ByWords)
      .map(([k, v]) => `${k}w ${f(v)}`)
      .join(", ")}`,
  );

  // -- QPS through the server with 8 concurrent clients.
  if (!flag("skip-server")) {
    const srv = await startServerProcess(dirN);
    try {
      await loadTest(srv.url, queries, 1, 8);
      const lt = await loadTest(srv.url, queries, QPS_SECONDS, 8);
      results.server = lt;
      log(
        `server (separate process, 8 clients, POST /retrieve topk 10): ${f(lt.qps, 0)} QPS, p50 ${f(lt.p50)} ms, p99 ${f(lt.p99)} ms, errors ${lt.errors}, server event-loop delay ${JSON.stringify(lt.loop)}`,
      );
    } finally {
      await srv.stop();
    }
  }

  // -- Subset: exact scorer and the alternatives.
  log(`BM25 subset ${SUBSET}: analyzing passages ...`);
  const toks: string[] = [];
  const exactB = new Bm25MemoryBuilder();
  s = Date.now();
  for await (const p of readCorpus(corpus, { format: "kilt-tsv" })) {
    if (toks.length >= SUBSET) break;
    const t = analyzer.terms(`${p.title}\n${p.text}`);
    toks.push(t.join(" "));
    exactB.add(t);
  }
  const exact = exactB.finish();
  const exactBuild = (Date.now() - s) / 1000;
  const truth = qTerms.map((t) => exact.search(t, 10));
  const rows: EngineRow[] = [];
  {
    const lat = await timeQueries(qTerms, (t) => exact.search(t, 10));
    const heap = process.memoryUsage().heapUsed;
    rows.push({
      engine: "exact in-memory (ours)",
      n: SUBSET,
      buildS: exactBuild,
      sizeBytes: heap,
      sizeNote: "heap (process)",
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      overlap: 1,
    });
  }
  {
    const dir = path.join(ROOT, `bm25-subset-${SUBSET}`);
    s = Date.now();
    await buildIndex({ corpus, out: dir, bm25: true, limit: SUBSET, progress: false });
    const b = (Date.now() - s) / 1000;
    const eng = await LanceFtsEngine.open(path.join(dir, "bm25"));
    await timeQueries(qTerms.slice(0, 50), (t) => eng.search(t, 10));
    const got: ScoredRow[][] = [];
    const lat = await timeQueries(qTerms, async (t) => got.push(await eng.search(t, 10)));
    eng.close();
    rows.push({
      engine: "LanceDB FTS (chosen)",
      n: SUBSET,
      buildS: b,
      sizeBytes: dirSize(path.join(dir, "bm25")),
      sizeNote: "disk",
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      overlap: got.reduce((a, g, i) => a + overlap(g, truth[i]), 0) / got.length,
    });
  }
  {
    const require = createRequire(import.meta.url);
    interface Stmt {
      run(...a: unknown[]): unknown;
      all(...a: unknown[]): Array<{ rowid: number; s: number }>;
    }
    interface Db {
      pragma(s: string): unknown;
      exec(s: string): void;
      prepare(s: string): Stmt;
      transaction(fn: (a: string[], off: number) => void): (a: string[], off: number) => void;
      close(): void;
    }
    let Database: new (file: string) => Db;
    try {
      Database = require("better-sqlite3") as typeof Database;
    } catch (err) {
      log(`SQLite FTS5 skipped: better-sqlite3 not installed (${(err as Error).message})`);
      Database = null as never;
    }
    if (Database) {
      const file = path.join(ROOT, `fts5-${SUBSET}.db`);
      rmSync(file, { force: true });
      s = Date.now();
      const db = new Database(file);
      db.pragma("journal_mode = OFF");
      db.pragma("synchronous = OFF");
      db.exec("CREATE VIRTUAL TABLE t USING fts5(tok, tokenize = 'unicode61 remove_diacritics 0')");
      const ins = db.prepare("INSERT INTO t(rowid, tok) VALUES (?, ?)");
      const tx = db.transaction((rowsIn: string[], off: number) => rowsIn.forEach((tok, i) => ins.run(off + i, tok)));
      for (let i = 0; i < toks.length; i += 20_000) tx(toks.slice(i, i + 20_000), i);
      db.exec("INSERT INTO t(t) VALUES ('optimize')");
      const b = (Date.now() - s) / 1000;
      const q = db.prepare("SELECT rowid, bm25(t) AS s FROM t WHERE t MATCH ? ORDER BY s LIMIT 10");
      const match = (t: string[]) => [...new Set(t)].map((x) => `"${x}"`).join(" OR ");
      const got: ScoredRow[][] = [];
      const lat = await timeQueries(qTerms, (t) =>
        got.push(t.length ? q.all(match(t)).map((r) => ({ row: r.rowid, score: -r.s })) : []),
      );
      db.close();
      rows.push({
        engine: "SQLite FTS5 (better-sqlite3)",
        n: SUBSET,
        buildS: b,
        sizeBytes: statSync(file).size,
        sizeNote: "disk",
        p50: pct(lat, 50),
        p99: pct(lat, 99),
        overlap: got.reduce((a, g, i) => a + overlap(g, truth[i]), 0) / got.length,
      });
    }
  }
  {
    const MiniSearch = (await import("minisearch")).default;
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    s = Date.now();
    const ms = new MiniSearch<{ id: number; tok: string }>({
      fields: ["tok"],
      tokenize: (x) => x.split(" "),
      processTerm: (x) => x,
      searchOptions: { combineWith: "OR" },
    });
    ms.addAll(toks.map((tok, id) => ({ id, tok })));
    const b = (Date.now() - s) / 1000;
    global.gc?.();
    const heap = process.memoryUsage().heapUsed - before;
    const got: ScoredRow[][] = [];
    const lat = await timeQueries(qTerms, (t) =>
      got.push(
        t.length
          ? ms
              .search(t.join(" "))
              .slice(0, 10)
              .map((r) => ({ row: r.id as number, score: r.score }))
          : [],
      ),
    );
    rows.push({
      engine: "minisearch 7 (in-memory JS)",
      n: SUBSET,
      buildS: b,
      sizeBytes: heap,
      sizeNote: "heap",
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      overlap: got.reduce((a, g, i) => a + overlap(g, truth[i]), 0) / got.length,
    });
  }
  results.bm25Subset = rows;
  const lance = rows.find((r) => r.engine.startsWith("LanceDB"))!;
  const out = [
    [
      "engine",
      "passages",
      "build s",
      "size",
      "p50 ms",
      "p99 ms",
      "top-10 overlap vs exact",
      "p50 / LanceDB",
      "build / LanceDB",
    ],
  ];
  for (const r of rows)
    out.push([
      r.engine,
      String(r.n),
      f(r.buildS, 1),
      `${mb(r.sizeBytes)} (${r.sizeNote})`,
      f(r.p50),
      f(r.p99),
      f(r.overlap, 3),
      `${f(r.p50 / lance.p50)}×`,
      `${f(r.buildS / lance.buildS)}×`,
    ]);
  process.stdout.write(
    `\nBM25 engines on the ${SUBSET}-passage subset (same analyzed tokens, OR queries, top-10):\n${table(out)}\n\n`,
  );
}

// ---- dense ----------------------------------------------------------------------------------------------------------

async function lowRank(n: number, rng: Rng, A: Float32Array, sigma: number): Promise<Float32Array> {
  const k = await MatrixKernels.create(A, LATENT, DIM, 2);
  const X = new Float32Array(n * DIM);
  const B = 8192;
  const Z = new Float32Array(B * LATENT);
  const a = Math.sqrt(3) * sigma; // uniform noise with standard deviation sigma
  let x = rng.nextU32() | 1; // xorshift32 stream for the noise (fast; seeded from rng)
  for (let s = 0; s < n; s += B) {
    const m = Math.min(B, n - s);
    for (let i = 0; i < m * LATENT; i++) Z[i] = rng.normal();
    const Y = await k.project(Z, m);
    for (let i = 0; i < m; i++) {
      let ss = 0;
      const o = i * DIM;
      for (let d = 0; d < DIM; d++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const v = Y[o + d] + a * ((x >>> 0) / 2147483648 - 1);
        Y[o + d] = v;
        ss += v * v;
      }
      const inv = 1 / Math.sqrt(ss);
      for (let d = 0; d < DIM; d++) X[(s + i) * DIM + d] = Y[o + d] * inv;
    }
  }
  await k.release();
  return X;
}

async function benchDense(): Promise<void> {
  const rng = new Rng(SEED + 7);
  const A = Float32Array.from({ length: LATENT * DIM }, () => rng.normal() / Math.sqrt(LATENT));
  const sigma = 0.5;
  const nq = 200;
  const Q = await lowRank(nq, new Rng(SEED + 99), A, sigma);
  const dense: unknown[] = [];
  for (const n of DENSE_SIZES) {
    const dir = path.join(ROOT, `dense-${n}`);
    mkdirSync(dir, { recursive: true });
    let s = Date.now();
    const X = await lowRank(n, new Rng(SEED + n), A, sigma);
    writeFileSync(path.join(dir, VECTORS_FILE), new Uint8Array(X.buffer));
    log(`dense ${n}: generated ${n}×${DIM} low-rank vectors in ${f((Date.now() - s) / 1000, 1)} s`);
    // Exact search (ground truth, and the "flat" alternative).
    const flat = VectorIndex.open(dir, { type: "flat", dim: DIM, size: n, metric: "ip" });
    const truth: ScoredRow[][] = [];
    const flatLat = await timeQueries(
      Array.from({ length: nq }, (_, i) => i),
      (i) => truth.push(flat.search(Q.subarray(i * DIM, (i + 1) * DIM), 10)),
    );
    flat.close();
    s = Date.now();
    const meta = await buildVectorIndex(dir, DIM, n, { type: "ivf-sq8", progress: false });
    const buildS = (Date.now() - s) / 1000;
    const ix = VectorIndex.open(dir, meta);
    const nlist = meta.nlist!;
    const sweep: Array<{ nprobe: number; recall: number; p50: number; p99: number }> = [];
    const probes = [
      ...new Set(
        [nlist / 32, nlist / 16, nlist / 12, nlist / 8, nlist / 6, nlist / 4].map((x) => Math.max(1, Math.round(x))),
      ),
    ].sort((a, b) => a - b);
    for (const nprobe of probes) {
      let hit = 0;
      const lat = await timeQueries(
        Array.from({ length: nq }, (_, i) => i),
        (i) => {
          const r = ix.search(Q.subarray(i * DIM, (i + 1) * DIM), 10, { nprobe });
          hit += overlap(r, truth[i]) * truth[i].length;
        },
      );
      sweep.push({ nprobe, recall: hit / (nq * 10), p50: pct(lat, 50), p99: pct(lat, 99) });
    }
    ix.close();
    const ok = sweep.filter((x) => x.recall >= 0.95).sort((a, b) => a.p50 - b.p50)[0];
    const row = {
      n,
      dim: DIM,
      buildS,
      nlist,
      pcaDims: meta.pcaDims,
      defaultNprobe: meta.nprobe,
      sizeBytes: dirSize(dir) - n * DIM * 4,
      flatP50: pct(flatLat, 50),
      flatP99: pct(flatLat, 99),
      sweep,
      best: ok ?? null,
    };
    dense.push(row);
    log(
      `dense ${n}: ivf-sq8 build ${f(buildS, 1)} s (nlist ${nlist}, PCA ${meta.pcaDims}), index files ${mb(row.sizeBytes)} + vectors ${mb(n * DIM * 4)}; exact flat p50 ${f(row.flatP50)} ms`,
    );
    const t = [["nprobe", "recall@10", "p50 ms", "p99 ms", "p50 vs exact flat"]];
    for (const x of sweep)
      t.push([String(x.nprobe), f(x.recall, 3), f(x.p50), f(x.p99), `${f(row.flatP50 / x.p50, 0)}× faster`]);
    process.stdout.write(`${table(t)}\n`);
    if (flag("lance-ann") && n === DENSE_SIZES[0]) results.lanceAnn = await lanceAnn(X, n, Q, nq, truth);
    rmSync(path.join(dir, VECTORS_FILE), { force: true });
  }
  results.dense = dense;
}

async function lanceAnn(
  X: Float32Array,
  n: number,
  Q: Float32Array,
  nq: number,
  truth: ScoredRow[][],
): Promise<unknown[]> {
  const lance = await loadLance();
  const arrow = await import("apache-arrow");
  const dir = path.join(ROOT, `lance-vec-${n}`);
  rmSync(dir, { recursive: true, force: true });
  const db = await lance.connect(dir);
  const schema = new arrow.Schema([
    new arrow.Field("row", new arrow.Int32()),
    new arrow.Field("vector", new arrow.FixedSizeList(DIM, new arrow.Field("item", new arrow.Float32()))),
  ]);
  const tbl = await db.createEmptyTable("v", schema);
  for (let s = 0; s < n; s += 20_000) {
    const rows = [];
    for (let i = s; i < Math.min(n, s + 20_000); i++)
      rows.push({ row: i, vector: Array.from(X.subarray(i * DIM, (i + 1) * DIM)) });
    await tbl.add(rows);
  }
  const out: unknown[] = [];
  for (const [name, cfg, search] of [
    [
      "LanceDB IVF_PQ (nprobes 50, refine 10)",
      lance.Index.ivfPq({ numPartitions: Math.round(Math.sqrt(n)), numSubVectors: 48, distanceType: "dot" }),
      { nprobes: 50, refine: 10 },
    ],
    [
      "LanceDB HNSW_SQ (ef 128, refine 5)",
      lance.Index.hnswSq({ distanceType: "dot", m: 16, efConstruction: 150 }),
      { ef: 128, refine: 5 },
    ],
  ] as const) {
    const s = Date.now();
    await tbl.createIndex("vector", { config: cfg, replace: true });
    const buildS = (Date.now() - s) / 1000;
    let hit = 0;
    const lat = await timeQueries(
      Array.from({ length: nq }, (_, i) => i),
      async (i) => {
        let q = tbl
          .vectorSearch(Array.from(Q.subarray(i * DIM, (i + 1) * DIM)))
          .distanceType("dot")
          .select(["row"])
          .limit(10);
        if ("nprobes" in search) q = q.nprobes(search.nprobes).refineFactor(search.refine);
        else q = q.ef(search.ef).refineFactor(search.refine);
        const r = (await q.toArray()) as Array<{ row: number }>;
        hit +=
          overlap(
            r.map((x) => x.row),
            truth[i],
          ) * truth[i].length;
      },
    );
    const row = { engine: name, n, buildS, recall: hit / (nq * 10), p50: pct(lat, 50), p99: pct(lat, 99) };
    out.push(row);
    log(
      `${name} @${n}: build ${f(buildS, 1)} s, recall@10 ${f(row.recall, 3)}, p50 ${f(row.p50)} ms, p99 ${f(row.p99)} ms`,
    );
  }
  db.close();
  return out;
}

// ---- main -----------------------------------------------------------------------------------------------------------

const loop = monitorEventLoopDelay({ resolution: 20 });
loop.enable();
if (!flag("skip-bm25")) {
  const corpus = path.join(ROOT, `corpus-${N}.tsv`);
  log(`generating/reusing corpus: ${N} passages, vocabulary ${VOCAB} (Zipf), ${NQ} queries of 1–5 words ...`);
  const meta = await generateCorpus(corpus, N);
  log(`corpus ready: ${mb(statSync(corpus).size)}`);
  await benchBm25(corpus, meta);
}
if (!flag("skip-dense")) await benchDense();
results.totalSeconds = (Date.now() - t0) / 1000;
const jsonFile = opt("json", path.join(ROOT, `results${QUICK ? "-quick" : ""}.json`));
writeFileSync(jsonFile, JSON.stringify(results, null, 2));
log(`done in ${f(results.totalSeconds as number, 0)} s (contended 2-core machine); results → ${jsonFile}`);
