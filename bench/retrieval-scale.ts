/**
 * Retrieval at scale (`npm run bench:retrieval -- --passages 10000000`, or `--scale` at any size): the default BM25
 * build (postings only) of the generated corpus, then serving through the real retriever, one size per run, with the
 * figures of every size measured so far kept in `bench/.data/retrieval/scale.json` and printed as one table (1 M → 10 M
 * → 30 M). Sizes not measured are printed as a linear extrapolation from the largest two measured ones, labelled so.
 *
 * Per size: build wall time and rate, the build process's peak RSS, disk (passage store, postings), open time and RSS
 * after open, single-threaded p50/p99 of the retriever (analyzer + engine + passage fetch) and of the engine alone,
 * overall and by query length, and how many of the queries return exactly what an exhaustive term-at-a-time BM25 over
 * the same postings returns (rows and float64 scores).
 *
 * `--split-kilt-mb M`: the KILT splitter over a generated KILT-shaped JSONL of M MB whose first 99 pages are the shipped
 * sample: rate in MB/s, RSS sampled along the way, and the output's prefix compared byte for byte with the shipped TSV.
 */
import {
  closeSync,
  createWriteStream,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { Rng } from "../src/util/rng.js";
import { splitKiltFile } from "../src/corpus/kilt.js";
import { buildIndex } from "../src/retrieval/build.js";
import { openRetriever } from "../src/retrieval/factory.js";
import { readIndexManifest, type IndexManifest } from "../src/retrieval/manifest.js";
import { Bm25Retriever, InProcessEngine } from "../src/retrieval/bm25/retriever.js";
import { Analyzer } from "../src/retrieval/bm25/analyzer.js";
import { POSTINGS_ENGINE, type PostingsIndex } from "../src/retrieval/bm25/postings.js";
import { generateCorpus, pseudoWord, type CorpusShape } from "./retrieval-corpus.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const GB = 1024 ** 3;
const MB = 1024 ** 2;
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
function dirSize(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((s, n) => s + dirSize(path.join(p, n)), 0);
}
/** A Markdown table (header row, separator, rows). */
function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(3, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(w[c])).join(" | ")} |`;
  return [line(rows[0]), line(w.map((n) => "-".repeat(n))), ...rows.slice(1).map(line)].join("\n");
}

/** Peak RSS of this process while `fn` runs, sampled every 200 ms (and the kernel's high-water mark). */
async function withRssSampler<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number; samples: number[] }> {
  const samples: number[] = [];
  let peak = 0;
  const timer = setInterval(() => {
    const r = process.memoryUsage().rss;
    samples.push(r);
    if (r > peak) peak = r;
  }, 200);
  try {
    const value = await fn();
    return { value, peak: Math.max(peak, process.memoryUsage().rss), samples };
  } finally {
    clearInterval(timer);
  }
}

export interface ScaleRow {
  n: number;
  date: string;
  /** The postings engine's query algorithm (rows from before this field: "maxscore"). */
  engineName?: string;
  /** Per query (means over the 1 000): essential postings accumulated, candidates looked up, rows fully scored. */
  work?: { accumulated: number; candidates: number; scored: number };
  /** Postings copied into the high-impact tiers at open. */
  tierPostings?: number;
  buildS: number;
  buildRate: number;
  /** Peak RSS of the build (its process: sampled, or from the manifest / an external measurement). */
  buildPeakRssBytes: number | null;
  resumedFromRow: number | null;
  storeBytes: number;
  postingsBytes: number;
  indexBytes: number;
  postings: number;
  segments: number;
  openS: number;
  serveRssBytes: number;
  retriever: { p50: number; p99: number; p50ByWords: Record<string, number>; p99ByWords: Record<string, number> };
  engine: { p50: number; p99: number };
  identical: number;
  queries: number;
  exhaustiveP50: number;
  loadAverage: number[];
}

export interface ScaleOptions {
  n: number;
  root: string;
  shape: CorpusShape;
  reuseIndex: boolean;
  log: (s: string) => void;
}

export async function runScale(o: ScaleOptions): Promise<ScaleRow> {
  const { n, root, log } = o;
  const corpus = path.join(root, `corpus-${n}.tsv`);
  log(`scale ${n}: generating/reusing the corpus (${n} passages, Zipf over ${o.shape.vocab} pseudo-words) ...`);
  const meta = await generateCorpus(corpus, n, o.shape);
  log(`corpus ready: ${f(statSync(corpus).size / GB, 2)} GB`);
  const dir = path.join(root, `postings-${n}`);
  let manifest: IndexManifest | null = null;
  let buildPeak: number | null = null;
  if (o.reuseIndex) {
    try {
      manifest = readIndexManifest(dir);
      if (manifest.size !== n || manifest.bm25?.engine !== "postings") manifest = null;
    } catch {
      manifest = null;
    }
    if (manifest) log(`reusing ${dir} (built ${manifest.created}; build figures from its manifest)`);
  }
  if (!manifest) {
    log(`building ${dir} (default engine: postings only; resumable; progress on stderr) ...`);
    const r = await withRssSampler(() => buildIndex({ corpus, out: dir, bm25: true, progress: true }));
    manifest = r.value;
    buildPeak = r.peak;
  }
  if (buildPeak === null && typeof manifest.build.peakRssBytes === "number") buildPeak = manifest.build.peakRssBytes;
  const externalPeak = `${dir}.build-peak-rss`;
  if (buildPeak === null && existsSync(externalPeak)) buildPeak = Number(readFileSync(externalPeak, "utf8"));
  const postingsBytes = dirSize(path.join(dir, "bm25", "postings"));
  const indexBytes = dirSize(dir);
  const storeBytes = indexBytes - dirSize(path.join(dir, "bm25"));
  log(
    `build ${f(manifest.build.seconds / 60, 1)} min (${f(n / manifest.build.seconds, 0)} passages/s), index ${f(indexBytes / GB, 2)} GB (store ${f(storeBytes / GB, 2)}, postings ${f(postingsBytes / GB, 2)})`,
  );

  gc();
  let t = performance.now();
  const retriever = await openRetriever(dir, { bm25Engine: "postings" });
  const openS = (performance.now() - t) / 1000;
  const eng = (retriever as Bm25Retriever).engine;
  if (!(eng instanceof InProcessEngine)) throw new Error("expected the postings engine");
  const ix = eng.index as PostingsIndex;
  gc();
  const serveRss = process.memoryUsage().rss;
  log(`open ${f(openS, 1)} s, RSS after open ${f(serveRss / GB, 2)} GB (${f(ix.memoryBytes / GB, 2)} GB of postings)`);

  const queries = meta.queries.slice(0, o.shape.queries);
  const analyzer = new Analyzer();
  const qTerms = queries.map((q) => analyzer.terms(q));
  for (const q of queries.slice(0, 50)) await retriever.search([q], 10);
  const lat: number[] = [];
  for (const q of queries) {
    t = performance.now();
    await retriever.search([q], 10);
    lat.push(performance.now() - t);
  }
  const engLat: number[] = [];
  const s0 = { ...ix.stats };
  for (const q of qTerms) {
    t = performance.now();
    ix.search(q, 10);
    engLat.push(performance.now() - t);
  }
  const words = queries.map((q) => q.split(" ").length);
  const by = (xs: number[], p: number) => {
    const g: Record<string, number[]> = {};
    xs.forEach((x, i) => (g[words[i]] ??= []).push(x));
    return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, pct(v, p)]));
  };
  const perQ = (k: "accumulated" | "candidates" | "scored") => (ix.stats[k] - s0[k]) / qTerms.length;
  const work = { accumulated: perQ("accumulated"), candidates: perQ("candidates"), scored: perQ("scored") };
  log(
    `engine work per query: ${f(work.accumulated, 0)} postings accumulated, ${f(work.candidates, 0)} candidates looked up, ${f(work.scored, 0)} scored (of ${f((ix.stats.postings - s0.postings) / qTerms.length, 0)} postings of the query terms); tiers hold ${ix.tierStats.postings} postings`,
  );
  log(`latency: retriever p50 ${f(pct(lat, 50))} ms, p99 ${f(pct(lat, 99))} ms; engine p50 ${f(pct(engLat, 50))} ms`);

  // Exactness: the exhaustive term-at-a-time scorer over the same postings.
  let identical = 0;
  const exLat: number[] = [];
  for (const q of qTerms) {
    t = performance.now();
    const want = ix.exhaustiveSearch(q, 10);
    exLat.push(performance.now() - t);
    const got = ix.search(q, 10);
    if (got.length === want.length && got.every((g, j) => g.row === want[j].row && g.score === want[j].score))
      identical++;
  }
  log(`exact: ${identical}/${qTerms.length} queries identical to exhaustive BM25 (p50 ${f(pct(exLat, 50))} ms)`);
  await retriever.close();
  const row: ScaleRow = {
    n,
    date: new Date().toISOString(),
    engineName: POSTINGS_ENGINE,
    work,
    tierPostings: ix.tierStats.postings,
    buildS: manifest.build.seconds,
    buildRate: n / manifest.build.seconds,
    buildPeakRssBytes: buildPeak,
    resumedFromRow: typeof manifest.build.resumedFromRow === "number" ? manifest.build.resumedFromRow : null,
    storeBytes,
    postingsBytes,
    indexBytes,
    postings: manifest.bm25!.postings!.postings,
    segments: manifest.bm25!.postings!.segments,
    openS,
    serveRssBytes: serveRss,
    retriever: { p50: pct(lat, 50), p99: pct(lat, 99), p50ByWords: by(lat, 50), p99ByWords: by(lat, 99) },
    engine: { p50: pct(engLat, 50), p99: pct(engLat, 99) },
    identical,
    queries: qTerms.length,
    exhaustiveP50: pct(exLat, 50),
    loadAverage: os.loadavg(),
  };
  const file = path.join(root, "scale.json");
  const all = loadScaleRows(file);
  all[String(n)] = row;
  writeFileSync(file, JSON.stringify(all, null, 2));
  const current = Object.values(all).filter((r) => r.engineName === POSTINGS_ENGINE);
  process.stdout.write(`\n${scaleTable(current)}\n\n${growthTable(Object.values(all))}\n\n`);
  return row;
}

/**
 * `scale.json`: rows of the current engine keyed by size; rows measured with an earlier engine are kept under
 * `SIZE@ENGINE` (rows from before `engineName` existed are the plain MaxScore engine, "maxscore").
 */
export function loadScaleRows(file: string): Record<string, ScaleRow> {
  const raw: Record<string, ScaleRow> = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
  const out: Record<string, ScaleRow> = {};
  for (const r of Object.values(raw)) {
    r.engineName ??= "maxscore";
    out[r.engineName === POSTINGS_ENGINE ? String(r.n) : `${r.n}@${r.engineName}`] = r;
  }
  return out;
}

/** Latency against corpus size per engine: p50/p99 and their growth from the engine's smallest measured size. */
export function growthTable(rows: ScaleRow[]): string {
  const out: string[][] = [
    ["engine", "passages", "engine p50 / p99, ms", "retriever p50, ms", "growth of p50 (p99) from the smallest", "N ×"],
  ];
  const engines = [...new Set(rows.map((r) => r.engineName ?? "maxscore"))].sort();
  for (const e of engines) {
    const rs = rows.filter((r) => (r.engineName ?? "maxscore") === e).sort((a, b) => a.n - b.n);
    const a = rs[0];
    for (const r of rs)
      out.push([
        e,
        `${r.n / 1e6} M`,
        `${f(r.engine.p50)} / ${f(r.engine.p99)}`,
        f(r.retriever.p50),
        r === a ? "–" : `×${f(r.engine.p50 / a.engine.p50, 1)} (×${f(r.engine.p99 / a.engine.p99, 1)})`,
        r === a ? "–" : `×${f(r.n / a.n, 1)}`,
      ]);
  }
  return table(out);
}

/** The growth table over the measured sizes, plus 30 M extrapolated (linear in N) when not measured. */
export function scaleTable(rows: ScaleRow[]): string {
  const measured = [...rows].sort((a, b) => a.n - b.n);
  const cols: Array<{ label: string; row: ScaleRow; extrapolated: boolean }> = measured.map((r) => ({
    label: `${r.n / 1e6} M`,
    row: r,
    extrapolated: false,
  }));
  const target = 30_000_000;
  if (!measured.some((r) => r.n === target) && measured.length >= 2) {
    const [a, b] = measured.slice(-2);
    const lin = (x: number, y: number) => y + (x === y ? 0 : (y - x) / (b.n - a.n)) * (target - b.n);
    const ex = JSON.parse(JSON.stringify(b)) as ScaleRow;
    ex.n = target;
    for (const k of ["buildS", "storeBytes", "postingsBytes", "indexBytes", "openS", "serveRssBytes"] as const)
      ex[k] = lin(a[k], b[k]);
    ex.buildPeakRssBytes = b.buildPeakRssBytes; // one segment in memory at a time: flat in N
    ex.retriever.p50 = lin(a.retriever.p50, b.retriever.p50);
    ex.retriever.p99 = lin(a.retriever.p99, b.retriever.p99);
    ex.engine.p50 = lin(a.engine.p50, b.engine.p50);
    cols.push({ label: "30 M (extrapolated, not measured)", row: ex, extrapolated: true });
  }
  const out: string[][] = [["generated corpus (bench Zipf shape)", ...cols.map((c) => c.label)]];
  const line = (name: string, fn: (r: ScaleRow, ex: boolean) => string) =>
    out.push([name, ...cols.map((c) => fn(c.row, c.extrapolated))]);
  line("build (index build --bm25), min", (r) => f(r.buildS / 60, 1));
  line("build rate, passages/s", (r, ex) => (ex ? "–" : f(r.buildRate, 0)));
  line("build peak RSS, GB", (r) => (r.buildPeakRssBytes ? f(r.buildPeakRssBytes / GB, 2) : "–"));
  line(
    "index on disk, GB (store + postings)",
    (r) => `${f(r.indexBytes / GB, 2)} (${f(r.storeBytes / GB, 2)} + ${f(r.postingsBytes / GB, 2)})`,
  );
  line("open, s", (r) => f(r.openS, 1));
  line("serving RSS after open, GB", (r) => f(r.serveRssBytes / GB, 2));
  line("retriever p50 / p99, ms (1–5 words, top-10)", (r) => `${f(r.retriever.p50)} / ${f(r.retriever.p99)}`);
  line("engine alone p50 / p99, ms", (r, ex) =>
    ex ? `${f(r.engine.p50)} / –` : `${f(r.engine.p50)} / ${f(r.engine.p99)}`,
  );
  line("identical to exhaustive BM25", (r, ex) => (ex ? "–" : `${r.identical}/${r.queries}`));
  line("load average at the end (2 cores, shared)", (r, ex) =>
    ex ? "–" : r.loadAverage.map((x) => x.toFixed(1)).join(" "),
  );
  return table(out);
}

// ---- split-kilt at scale ------------------------------------------------------------------------------------------

/** A KILT-shaped JSONL: the shipped 99-page sample first, then generated pages until `bytes`. Streams. */
async function kiltShapedFile(file: string, bytes: number, sample: string): Promise<void> {
  if (existsSync(file) && statSync(file).size >= bytes) return;
  const ws = createWriteStream(file, { highWaterMark: 1 << 22 });
  const head = readFileSync(sample);
  ws.write(head.at(-1) === 10 ? head : Buffer.concat([head, Buffer.from("\n")]));
  let written = head.length;
  const rng = new Rng(7);
  const word = () => pseudoWord(Math.floor(50_000 * rng.next() ** 3));
  let id = 1_000_000;
  let buf: string[] = [];
  while (written < bytes) {
    const title = `${word()} ${word()}`;
    const paras = [`${title}\n`];
    const np = 2 + rng.int(25);
    for (let p = 0; p < np; p++) {
      const len = 5 + rng.int(120);
      const ws2 = Array.from({ length: len }, word);
      const kind = rng.int(10);
      const pre = kind === 0 ? "Section::::" : kind === 1 ? "BULLET::::" : "";
      paras.push(`${pre}${ws2.join(kind === 2 ? "\u00a0" : " ")}${kind === 3 ? " café–naïve" : ""}.\n`);
    }
    const line = JSON.stringify({ _id: String(id), wikipedia_id: String(id), wikipedia_title: title, text: paras });
    id++;
    buf.push(line, "\n");
    written += Buffer.byteLength(line) + 1;
    if (buf.length >= 2000) {
      if (!ws.write(buf.join(""))) await new Promise<void>((r) => ws.once("drain", () => r()));
      buf = [];
    }
  }
  ws.write(buf.join(""));
  await new Promise<void>((r) => ws.end(() => r()));
}

export async function runSplitKilt(root: string, mb: number, samples: string, log: (s: string) => void) {
  const input = path.join(root, `kilt-shaped-${mb}mb.jsonl`);
  log(`split-kilt: generating/reusing a KILT-shaped JSONL of ${mb} MB (first 99 pages: the shipped sample) ...`);
  await kiltShapedFile(input, mb * MB, path.join(samples, "filtered_kilt_sample_100.jsonl"));
  const size = statSync(input).size;
  const out = path.join(root, `kilt-shaped-${mb}mb.tsv`);
  gc();
  const rssBefore = process.memoryUsage().rss;
  const r = await withRssSampler(() => splitKiltFile(input, out, { progress: true }));
  const shipped = readFileSync(path.join(samples, "train_kilt_full_page_sample_100.tsv"));
  const head = Buffer.alloc(shipped.length);
  const fd = openSync(out, "r");
  readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const prefixOk = head.equals(shipped);
  const q = (p: number) => r.samples[Math.min(r.samples.length - 1, Math.floor(p * r.samples.length))] ?? NaN;
  const res = {
    inputBytes: size,
    outputBytes: statSync(out).size,
    pages: r.value.pages,
    passages: r.value.passages,
    seconds: r.value.seconds,
    mbPerS: size / MB / r.value.seconds,
    rssBeforeBytes: rssBefore,
    rssAt25: q(0.25),
    rssAt50: q(0.5),
    rssAt100: q(0.999),
    peakRssBytes: r.peak,
    prefixIdentical: prefixOk,
  };
  log(
    `split-kilt: ${f(size / GB, 2)} GB, ${res.pages} pages → ${res.passages} passages in ${f(res.seconds, 1)} s = ${f(res.mbPerS, 1)} MB/s; RSS before ${f(rssBefore / MB, 0)} MB, at 25/50/100% ${f(res.rssAt25 / MB, 0)}/${f(res.rssAt50 / MB, 0)}/${f(res.rssAt100 / MB, 0)} MB, peak ${f(r.peak / MB, 0)} MB; output prefix byte-identical to the shipped 99-page TSV: ${prefixOk}`,
  );
  rmSync(out, { force: true });
  writeFileSync(path.join(root, `split-kilt-${mb}mb.json`), JSON.stringify(res, null, 2));
  if (!prefixOk) throw new Error("split-kilt: the output's prefix differs from the shipped sample TSV");
  return res;
}
