/**
 * The postings engine against an earlier version of itself, same process, same index, same queries
 * (`npx tsx bench/retrieval-engines.ts --passages 3000000 --ref main`): the earlier `src/retrieval/bm25/postings.ts` is
 * taken from git (`git show REF:…`, its imports pointed at this checkout's `memory.ts` and `postings-format.ts`), both
 * engines open the index that `npm run bench:retrieval -- --scale --passages N` built in `bench/.data/retrieval`, and
 * every query runs on both, interleaved, three times; each query's latency is its fastest of the three (on a shared
 * machine a query is often descheduled; the minimum filters that, the same way for both engines). Prints p50/p90/p99
 * and mean overall and by query length, the work counters of the current engine, and checks the current engine against
 * the exhaustive scorer on every query. `--json FILE` writes the figures.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { PostingsIndex } from "../src/retrieval/bm25/postings.js";
import { Analyzer } from "../src/retrieval/bm25/analyzer.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const N = Number(opt("passages", "1000000"));
const REF = opt("ref", "main");
const K = Number(opt("k", "10"));
const REPS = 3;
const root = path.resolve(import.meta.dirname, ".data", "retrieval");
const dir = path.join(root, `postings-${N}`, "bm25", "postings");
const meta = JSON.parse(readFileSync(path.join(root, `corpus-${N}.tsv.meta.json`), "utf8")) as { queries: string[] };

// The earlier engine, from git.
const src = path.resolve(import.meta.dirname, "..", "src", "retrieval", "bm25");
const oldDir = path.join(root, "engine-ref");
mkdirSync(oldDir, { recursive: true });
const oldFile = path.join(oldDir, `postings-${REF.replace(/[^A-Za-z0-9_.-]/g, "_")}.ts`);
const code = execFileSync("git", ["show", `${REF}:src/retrieval/bm25/postings.ts`], { encoding: "utf8" }).replace(
  /from "\.\/([a-z-]+)\.js"/g,
  (_, m: string) => `from ${JSON.stringify(pathToFileURL(path.join(src, `${m}.ts`)).href)}`,
);
writeFileSync(oldFile, code);
const Old = (await import(pathToFileURL(oldFile).href)) as { PostingsIndex: typeof PostingsIndex };

const an = new Analyzer();
const queries = meta.queries.slice(0, 1000);
const qs = queries.map((q) => an.terms(q));
const words = queries.map((q) => q.split(" ").length);
let t = performance.now();
const cur = PostingsIndex.open(dir);
const openNew = (performance.now() - t) / 1000;
t = performance.now();
const old = Old.PostingsIndex.open(dir);
const openOld = (performance.now() - t) / 1000;
for (const q of qs.slice(0, 100)) {
  cur.search(q, K);
  old.search(q, K);
}
const lo = qs.map(() => Infinity);
const ln = qs.map(() => Infinity);
const s0 = { ...cur.stats };
for (let r = 0; r < REPS; r++)
  for (let i = 0; i < qs.length; i++) {
    t = performance.now();
    old.search(qs[i], K);
    lo[i] = Math.min(lo[i], performance.now() - t);
    t = performance.now();
    cur.search(qs[i], K);
    ln[i] = Math.min(ln[i], performance.now() - t);
  }
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const sum = (xs: number[]) => ({
  p50: pct(xs, 50),
  p90: pct(xs, 90),
  p99: pct(xs, 99),
  mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  p50ByWords: Object.fromEntries(
    [1, 2, 3, 4, 5].map((w) => [
      w,
      pct(
        xs.filter((_, i) => words[i] === w),
        50,
      ),
    ]),
  ),
});
const res = { n: N, ref: REF, k: K, openS: { current: openNew, ref: openOld }, ref_: sum(lo), current: sum(ln) };
const f = (x: number) => x.toFixed(3);
for (const [name, r] of [
  [`${REF}`, res.ref_],
  ["current", res.current],
] as const)
  console.log(
    `${name.padEnd(8)} p50 ${f(r.p50)} p90 ${f(r.p90)} p99 ${f(r.p99)} mean ${f(r.mean)} ms; p50 by words ${Object.values(r.p50ByWords).map(f).join(" / ")}`,
  );
const q = cur.stats.queries - s0.queries;
const work = {
  accumulated: (cur.stats.accumulated - s0.accumulated) / q,
  candidates: (cur.stats.candidates - s0.candidates) / q,
  scored: (cur.stats.scored - s0.scored) / q,
};
console.log(
  `current work per query: ${work.accumulated.toFixed(0)} accumulated, ${work.candidates.toFixed(0)} candidates, ${work.scored.toFixed(0)} scored; open ${openNew.toFixed(1)} s (${REF}: ${openOld.toFixed(1)} s)`,
);
let same = 0;
for (const qt of qs) {
  const want = cur.exhaustiveSearch(qt, K);
  const got = cur.search(qt, K);
  if (got.length === want.length && got.every((g, j) => g.row === want[j].row && g.score === want[j].score)) same++;
}
console.log(`current: ${same}/${qs.length} identical to exhaustive BM25`);
const out = opt("json", "");
if (out) writeFileSync(out, JSON.stringify({ ...res, work, identical: same }, null, 2));
if (same !== qs.length) process.exit(1);
