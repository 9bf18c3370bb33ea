/**
 * Retrieval benchmark (`npm run bench:retrieval [-- --quick]`).
 *
 * BM25: a generated corpus of ~100-word passages (Zipfian pseudo-word vocabulary, seeded) indexed through the real
 * `buildIndex` pipeline (passage store + analyzer + LanceDB FTS + persisted postings). At full size, the "postings"
 * engine (exact, DAAT with MaxScore pruning) and LanceDB FTS side by side in the same process: build time and size of
 * each part, open time, single-threaded p50/p99 of the full retriever and of the engine alone, overall and by query
 * length (queries interleaved between the engines), the retriever's overhead besides the engine, results against the
 * exact term-at-a-time scorer, a batch of 256, and QPS with 8 concurrent HTTP clients through the retrieval server (a
 * separate process) for each engine. On a subset: top-10 overlap against an exact BM25 scorer plus the same figures
 * for our engines and the rejected alternatives (SQLite FTS5 via better-sqlite3, minisearch), with ratios.
 *
 * Dense: seeded low-rank synthetic vectors (x = normalize(A·z + noise), z ~ N(0, I_32), 384-d) at several sizes:
 * ivf-sq8 build time, recall@10 against exact search and p50/p99 across nprobe, and exact flat search for comparison.
 *
 * Scale (`--passages N` above 1 M, or `--scale`): `bench/retrieval-scale.ts` — the default postings-only build and
 * serving at that size, and the 1 M → 10 M → 30 M growth table (sizes not measured are extrapolated, labelled so).
 * `--split-kilt-mb M`: the KILT splitter over a generated KILT-shaped file of M MB (rate, RSS, prefix check).
 *
 * Flags: --quick (small sizes), --passages N, --subset N, --dense-sizes 200000,1000000, --queries N, --qps-seconds S,
 * --skip-bm25, --skip-dense, --skip-server, --lance-ann (also LanceDB IVF_PQ/HNSW_SQ at the smallest dense size),
 * --exact-full (also the exact in-memory BM25 engine rebuilt from LanceDB's stored terms at full size),
 * --reuse-index (reuse the full-size index when it has the postings; rebuilt otherwise, e.g. an index from before
 * the postings existed), --json FILE. Data is generated into bench/.data/retrieval (gitignored) and reused between runs.
 * Timings on a shared 2-core machine are contended: compare ratios from the same run.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import { Rng } from "../src/util/rng.js";
import { readCorpus } from "../src/corpus/readers.js";
import { generateCorpus, type CorpusMeta } from "./retrieval-corpus.js";
import { runScale, runSplitKilt } from "./retrieval-scale.js";
import { buildIndex } from "../src/retrieval/build.js";
import { openRetriever } from "../src/retrieval/factory.js";
import { readIndexManifest, type IndexManifest } from "../src/retrieval/manifest.js";
import { PassageStore } from "../src/retrieval/store.js";
import { PostingsIndex } from "../src/retrieval/bm25/postings.js";
import { Bm25Retriever, InProcessEngine } from "../src/retrieval/bm25/retriever.js";
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
  node: process.version,
  cpus: os.cpus().length,
  loadAverageStart: os.loadavg(),
};
const t0 = Date.now();
const log = (s: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);

// ---- helpers --------------------------------------------------------------------------------------------------------

/** A full garbage collection (the script runs under tsx without --expose-gc): settles the heap before timings. */
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

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

async function startServerProcess(
  indexDir: string,
  engine: "lancedb" | "postings",
): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = path.join(ROOT, "server-child.mts");
  writeFileSync(
    script,
    `import { openRetriever } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/retrieval/index.ts"))};\n` +
      `import { serveRetrieval } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/server/retrieval.ts"))};\n` +
      `const r = await openRetriever(process.argv[2], { bm25Engine: process.argv[3] });\n` +
      `const s = await serveRetrieval({ retriever: r, port: 0 });\n` +
      `process.stdout.write("URL " + s.url + "\\n");\n` +
      `process.on("SIGTERM", async () => { await s.close(); await r.close(); process.exit(0); });\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script, indexDir, engine], {
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

  // -- Full size, through the real build pipeline (LanceDB FTS + persisted postings in one build).
  let s = 0;
  const dirN = path.join(ROOT, `bm25-${N}`);
  let manifestN: IndexManifest | null = null;
  if (flag("reuse-index")) {
    try {
      manifestN = readIndexManifest(dirN);
    } catch {
      manifestN = null;
    }
    if (manifestN && (manifestN.size !== N || !manifestN.bm25?.postings || manifestN.bm25.engine !== "lancedb-fts")) {
      log(`BM25: ${dirN} has no postings (built before them), no LanceDB index or another size: rebuilding`);
      manifestN = null;
    } else if (manifestN) log(`BM25: reusing ${dirN} (built ${manifestN.created}; build figures from its manifest)`);
  }
  if (!manifestN) {
    log(`BM25: building the index over ${N} passages (passage store, LanceDB FTS, postings) ...`);
    manifestN = await buildIndex({ corpus, out: dirN, bm25: { engine: "lance" }, progress: true });
  }
  const buildN = manifestN.build.seconds;
  const postingsBuildS = Number(manifestN.build.postingsSeconds ?? NaN);
  const sizeN = dirSize(dirN);
  const postingsBytes = dirSize(path.join(dirN, "bm25", "postings"));
  const lanceBytesN = dirSize(path.join(dirN, "bm25")) - postingsBytes;
  const storeBytes = sizeN - dirSize(path.join(dirN, "bm25"));
  log(
    `BM25 index @${N}: build ${f(buildN, 1)} s (${f(N / buildN, 0)} passages/s; postings inversion and writing ${f(postingsBuildS, 1)} s of it), ${mb(sizeN)} on disk: passage store ${mb(storeBytes)}, LanceDB ${mb(lanceBytesN)}, postings ${mb(postingsBytes)} (${manifestN.bm25!.postings!.postings} postings, ${manifestN.bm25!.postings!.segments} segment(s))`,
  );

  // Open both engines in this process (open time of the postings engine: read + validate the files).
  gc(); // the build's garbage would otherwise be collected during the timings
  s = performance.now();
  const postN = await openRetriever(dirN, { bm25Engine: "postings" });
  const openPostingsS = (performance.now() - s) / 1000;
  s = performance.now();
  const lanceN = await openRetriever(dirN, { bm25Engine: "lancedb" });
  const openLanceS = (performance.now() - s) / 1000;
  // The engines inside the retrievers (engine-alone timings use the same instances and memory).
  const postEngine = (postN as Bm25Retriever).engine;
  const lanceEng = (lanceN as Bm25Retriever).engine;
  if (!(postEngine instanceof InProcessEngine) || postEngine.name !== "postings")
    throw new Error("expected the postings engine");
  const postIx = postEngine.index as PostingsIndex;
  log(
    `open: postings retriever ${f(openPostingsS, 2)} s (${mb(postIx.memoryBytes)} in memory), LanceDB retriever ${f(openLanceS, 2)} s`,
  );

  // Single-threaded latency, queries interleaved between the engines (alternating which goes first).
  gc();
  const warm = queries.slice(0, 50);
  for (const q of warm) {
    await postN.search([q], 10);
    await lanceN.search([q], 10);
  }
  // Blocks of 50 queries alternate between the engines (which one goes first alternates too), so both see the same
  // load of the shared machine without one engine's background threads running into the other's timings. Pass 1: the
  // full retrievers; pass 2: the engines alone (a query's second run finds its postings in cache: separate passes).
  const lat = { post: [] as number[], lance: [] as number[], postEng: [] as number[], lanceEng: [] as number[] };
  const B = 50;
  for (const pass of [1, 2])
    for (let b0 = 0; b0 < queries.length; b0 += B) {
      const idx = Array.from({ length: Math.min(B, queries.length - b0) }, (_, j) => b0 + j);
      const runs: Array<[number[], (i: number) => Promise<unknown> | unknown]> =
        pass === 1
          ? [
              [lat.post, (i) => postN.search([queries[i]], 10)],
              [lat.lance, (i) => lanceN.search([queries[i]], 10)],
            ]
          : [
              [lat.postEng, (i) => postIx.search(qTerms[i], 10)],
              [lat.lanceEng, (i) => lanceEng.search(qTerms[i], 10)],
            ];
      if ((b0 / B) % 2 === 1) runs.reverse();
      for (const [into, fn] of runs)
        for (const i of idx) {
          const t = performance.now();
          await fn(i);
          into[i] = performance.now() - t;
        }
    }
  const words = queries.map((q) => q.split(" ").length);
  const byWords = (xs: number[], p: number) => {
    const by: Record<number, number[]> = {};
    xs.forEach((x, i) => (by[words[i]] ??= []).push(x));
    return Object.fromEntries(Object.entries(by).map(([k, v]) => [k, pct(v, p)]));
  };
  const summary = (xs: number[]) => ({
    p50: pct(xs, 50),
    p90: pct(xs, 90),
    p99: pct(xs, 99),
    p50ByWords: byWords(xs, 50),
    p99ByWords: byWords(xs, 99),
  });

  // The retriever's work besides the engine, for the postings engine: analyzer, passage fetch (store > 256 MiB:
  // positioned reads), passage objects.
  const store = PassageStore.open(dirN);
  const hits = qTerms.map((t) => postIx.search(t, 10));
  const an: number[] = [];
  const fetch: number[] = [];
  const build: number[] = [];
  for (let i = 0; i < queries.length; i++) {
    let t = performance.now();
    analyzer.terms(queries[i]);
    an.push(performance.now() - t);
    t = performance.now();
    const ps = hits[i].map((h) => store.get(h.row));
    fetch.push(performance.now() - t);
    t = performance.now();
    ps.map((p, j) => ({ ...p, score: hits[i][j].score }));
    build.push(performance.now() - t);
  }
  store.close();

  // Exactness at full size: the exact term-at-a-time scorer over the same postings (every match scored).
  s = performance.now();
  const exactN = postIx.toMemoryIndex();
  const exactBuildS = (performance.now() - s) / 1000;
  const exactLat: number[] = [];
  let identical = 0;
  let postOverlap = 0;
  let lanceOverlap = 0;
  for (let i = 0; i < queries.length; i++) {
    const t = performance.now();
    const want = exactN.search(qTerms[i], 10);
    exactLat.push(performance.now() - t);
    const got = postIx.search(qTerms[i], 10);
    if (got.length === want.length && got.every((g, j) => g.row === want[j].row && g.score === want[j].score))
      identical++;
    postOverlap += overlap(got, want);
    lanceOverlap += overlap(await lanceEng.search(qTerms[i], 10), want);
  }

  // Batch throughput in process (the rollout engine's pattern: one call with 256 queries).
  const batch = Array.from({ length: 256 }, (_, i) => queries[i % queries.length]);
  s = Date.now();
  await postN.search(batch, 3);
  const batchPostMs = Date.now() - s;
  s = Date.now();
  await lanceN.search(batch, 3);
  const batchMs = Date.now() - s;
  await postN.close();
  await lanceN.close();
  const stats = postIx.stats;

  const bm25N = {
    n: N,
    buildS: buildN,
    sizeBytes: sizeN,
    storeBytes,
    lanceBytes: lanceBytesN,
    postings: {
      buildS: postingsBuildS,
      bytes: postingsBytes,
      count: manifestN.bm25!.postings!.postings,
      segments: manifestN.bm25!.postings!.segments,
      openS: openPostingsS,
      memoryBytes: postIx.memoryBytes,
      retriever: summary(lat.post),
      engine: summary(lat.postEng),
      identicalToExact: identical / queries.length,
      overlap: postOverlap / queries.length,
      batch256Ms: batchPostMs,
      scoredPerQuery: stats.scored / stats.queries,
      postingsPerQuery: stats.postings / stats.queries,
    },
    lancedb: {
      openS: openLanceS,
      retriever: summary(lat.lance),
      engine: summary(lat.lanceEng),
      overlap: lanceOverlap / queries.length,
      batch256Ms: batchMs,
    },
    exact: { buildS: exactBuildS, p50: pct(exactLat, 50), p99: pct(exactLat, 99) },
    overheadMs: {
      analyzerP50: pct(an, 50),
      fetch10P50: pct(fetch, 50),
      fetch10P99: pct(fetch, 99),
      objectsP50: pct(build, 50),
      retrieverMinusEngineP50: pct(lat.post, 50) - pct(lat.postEng, 50),
    },
    loadAverage: os.loadavg(),
    // Kept for comparison with earlier runs (LanceDB retriever).
    p50: pct(lat.lance, 50),
    p90: pct(lat.lance, 90),
    p99: pct(lat.lance, 99),
    p50ByWords: byWords(lat.lance, 50),
    batch256Ms: batchMs,
  };
  results.bm25 = bm25N;
  const P = bm25N.postings;
  const L = bm25N.lancedb;
  const wordsRow = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k}w ${f(v)}`)
      .join(", ");
  const t1 = [
    ["@" + N + " passages, top-10, single-threaded", "postings (exact DAAT)", "LanceDB FTS", "postings / LanceDB"],
  ];
  const row = (name: string, a: number, b: number, d = 2) => t1.push([name, f(a, d), f(b, d), `${f(a / b)}×`]);
  row("retriever p50 ms", P.retriever.p50, L.retriever.p50);
  row("retriever p90 ms", P.retriever.p90, L.retriever.p90);
  row("retriever p99 ms", P.retriever.p99, L.retriever.p99);
  row("engine alone p50 ms", P.engine.p50, L.engine.p50);
  row("engine alone p99 ms", P.engine.p99, L.engine.p99);
  for (const k of Object.keys(P.retriever.p50ByWords))
    row(`retriever p50 ms, ${k} word(s)`, P.retriever.p50ByWords[k], L.retriever.p50ByWords[k]);
  row("open s", P.openS, L.openS);
  row("batch of 256 (k 3) ms", P.batch256Ms, L.batch256Ms, 0);
  t1.push(["top-10 overlap with exact TAAT", f(P.overlap, 3), f(L.overlap, 3), ""]);
  process.stdout.write(`\n${table(t1)}\n\n`);
  log(
    `postings: ${f(P.identicalToExact * 100, 1)}% of queries identical to the exact scorer (rows and float64 scores); exact TAAT over the same postings p50 ${f(bm25N.exact.p50)} ms, p99 ${f(bm25N.exact.p99)} ms; ${f(P.scoredPerQuery, 0)} docs fully scored per query of ${f(P.postingsPerQuery, 0)} postings`,
  );
  log(
    `  postings retriever p99 by words: ${wordsRow(P.retriever.p99ByWords)}; LanceDB: ${wordsRow(L.retriever.p99ByWords)}`,
  );
  log(
    `  retriever overhead (postings): analyzer p50 ${f(bm25N.overheadMs.analyzerP50, 4)} ms, 10 passages fetched p50 ${f(bm25N.overheadMs.fetch10P50, 3)} / p99 ${f(bm25N.overheadMs.fetch10P99, 3)} ms, objects ${f(bm25N.overheadMs.objectsP50, 4)} ms; retriever − engine p50 ${f(bm25N.overheadMs.retrieverMinusEngineP50, 3)} ms; load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );

  // Optional: the exact in-memory engine at full size rebuilt from LanceDB's stored terms (what "memory" does).
  if (flag("exact-full")) {
    const eng = await LanceFtsEngine.open(path.join(dirN, "bm25"));
    const docs: string[] = new Array(eng.size);
    for await (const { row, tok } of eng.scanTerms()) docs[row] = tok;
    eng.close();
    const sx = Date.now();
    const b = new Bm25MemoryBuilder();
    for (const d of docs) b.add(d ? d.split(" ") : []);
    const mem = b.finish();
    const memBuild = (Date.now() - sx) / 1000;
    const memLat = await timeQueries(qTerms, (t) => mem.search(t, 10));
    let same = 0;
    for (const t of qTerms) {
      const r = mem.search(t, 10);
      const e = exactN.search(t, 10);
      if (r.length === e.length && r.every((x, j) => x.row === e[j].row && x.score === e[j].score)) same++;
    }
    results.exactFull = { n: N, buildS: memBuild, p50: pct(memLat, 50), p99: pct(memLat, 99), identical: same };
    log(
      `exact in-memory @${N} rebuilt from LanceDB's terms: build ${f(memBuild, 1)} s, identical to the postings' exact scorer on ${same}/${qTerms.length} queries`,
    );
  }

  // -- QPS through the server with 8 concurrent clients, for each engine.
  if (!flag("skip-server")) {
    const server: Record<string, unknown> = {};
    for (const engine of ["lancedb", "postings"] as const) {
      const srv = await startServerProcess(dirN, engine);
      try {
        await loadTest(srv.url, queries, 1, 8);
        const lt = await loadTest(srv.url, queries, QPS_SECONDS, 8);
        server[engine] = lt;
        log(
          `server ${engine} (separate process, 8 clients, POST /retrieve topk 10): ${f(lt.qps, 0)} QPS, p50 ${f(lt.p50)} ms, p99 ${f(lt.p99)} ms, errors ${lt.errors}, server event-loop delay ${JSON.stringify(lt.loop)}`,
        );
      } finally {
        await srv.stop();
      }
    }
    results.server = server;
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
    const m = await buildIndex({ corpus, out: dir, bm25: { engine: "lance" }, limit: SUBSET, progress: false });
    const postS = Number(m.build.postingsSeconds ?? 0);
    // The build writes both; LanceDB's share is the rest (store + analysis + LanceDB, as before the postings).
    const b = (Date.now() - s) / 1000 - postS;
    const pdir = path.join(dir, "bm25", "postings");
    const eng = await LanceFtsEngine.open(path.join(dir, "bm25"));
    s = Date.now();
    const post = PostingsIndex.open(pdir);
    const postOpen = (Date.now() - s) / 1000;
    await timeQueries(qTerms.slice(0, 50), (t) => eng.search(t, 10));
    await timeQueries(qTerms.slice(0, 50), (t) => post.search(t, 10));
    const got: ScoredRow[][] = [];
    const gotP: ScoredRow[][] = [];
    const lat: number[] = [];
    const latP: number[] = [];
    for (const t of qTerms) {
      let x = performance.now();
      got.push(await eng.search(t, 10));
      lat.push(performance.now() - x);
      x = performance.now();
      gotP.push(post.search(t, 10));
      latP.push(performance.now() - x);
    }
    eng.close();
    const identical = gotP.filter(
      (g, i) =>
        g.length === truth[i].length && g.every((x, j) => x.row === truth[i][j].row && x.score === truth[i][j].score),
    ).length;
    rows.push({
      engine: "LanceDB FTS",
      n: SUBSET,
      buildS: b,
      sizeBytes: dirSize(path.join(dir, "bm25")) - dirSize(pdir),
      sizeNote: "disk",
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      overlap: got.reduce((a, g, i) => a + overlap(g, truth[i]), 0) / got.length,
    });
    rows.push({
      engine: "postings, exact DAAT (ours; default)",
      n: SUBSET,
      buildS: postS,
      sizeBytes: dirSize(pdir),
      sizeNote: "disk",
      p50: pct(latP, 50),
      p99: pct(latP, 99),
      overlap: gotP.reduce((a, g, i) => a + overlap(g, truth[i]), 0) / gotP.length,
    });
    results.postingsSubset = { identical: identical / qTerms.length, openS: postOpen };
    log(
      `postings @${SUBSET}: open ${f(postOpen, 2)} s, ${identical}/${qTerms.length} queries identical to the exact scorer (rows and scores); its build figure is the inversion + writing only (analysis is shared with LanceDB)`,
    );
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
    gc();
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
    gc();
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
const SCALE = flag("scale") || N > 1_000_000;
if (flag("split-kilt-mb")) {
  const samples = path.resolve(import.meta.dirname, "../data/r1-searcher/kilt_samples");
  results.splitKilt = await runSplitKilt(ROOT, Number(opt("split-kilt-mb", "2048")), samples, log);
} else if (SCALE) {
  // Above 1 M passages (or with --scale): the default build and serving only, one size per run, and the growth table.
  results.scale = await runScale({
    n: N,
    root: ROOT,
    shape: { vocab: VOCAB, seed: SEED, queries: NQ, subset: SUBSET },
    reuseIndex: flag("reuse-index"),
    log,
  });
} else if (!flag("skip-bm25")) {
  const corpus = path.join(ROOT, `corpus-${N}.tsv`);
  log(`generating/reusing corpus: ${N} passages, vocabulary ${VOCAB} (Zipf), ${NQ} queries of 1–5 words ...`);
  const meta = await generateCorpus(corpus, N, { vocab: VOCAB, seed: SEED, queries: NQ, subset: SUBSET });
  log(`corpus ready: ${mb(statSync(corpus).size)}`);
  await benchBm25(corpus, meta);
}
if (!flag("skip-dense") && !SCALE && !flag("split-kilt-mb")) await benchDense();
results.totalSeconds = (Date.now() - t0) / 1000;
const jsonFile = opt("json", path.join(ROOT, `results${QUICK ? "-quick" : ""}.json`));
writeFileSync(jsonFile, JSON.stringify(results, null, 2));
log(`done in ${f(results.totalSeconds as number, 0)} s (contended 2-core machine); results → ${jsonFile}`);
