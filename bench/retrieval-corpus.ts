/**
 * The retrieval benchmark's generated corpus: ~100-word passages over a Zipfian pseudo-word vocabulary (seeded), in the
 * kilt TSV format, with 1–5-word queries drawn from its passages. Shared by `bench/retrieval.ts` and the scale runs.
 */
import { createWriteStream, existsSync, readFileSync, writeFileSync } from "node:fs";
import { Rng } from "../src/util/rng.js";

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
export function pseudoWord(i: number): string {
  let s = "";
  let x = i + 1;
  do {
    s += SYL[x % SYL.length];
    x = Math.floor(x / SYL.length);
  } while (x > 0);
  return s;
}

export interface CorpusMeta {
  version: 2;
  n: number;
  vocab: number;
  seed: number;
  queries: string[];
}

/** Zipf(s = 1.0) sampler over `v` ranks via inverse CDF. */
export function zipfSampler(v: number, rng: Rng): () => number {
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

export interface CorpusShape {
  /** Pseudo-word vocabulary (Zipf s = 1 over ranks). */
  vocab: number;
  seed: number;
  /** Queries to draw (1–5 words each, from passages among the first `subset` rows). */
  queries: number;
  subset: number;
}

/**
 * Generate (or reuse, when `file.meta.json` matches) `n` passages of 90–110 Zipfian pseudo-words as a kilt TSV, and the
 * queries drawn from them. Streams: constant memory at any `n`.
 */
export async function generateCorpus(file: string, n: number, shape: CorpusShape): Promise<CorpusMeta> {
  const { vocab: VOCAB, seed: SEED, queries: NQ, subset: SUBSET } = shape;
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
