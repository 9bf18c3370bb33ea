import { describe, expect, it } from "vitest";
import { readFileSync, rmSync, truncateSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Rng } from "../../util/rng.js";
import { Bm25MemoryBuilder, type Bm25MemoryIndex, type ScoredRow } from "./memory.js";
import { PostingsWriter, type PostingsWriterOptions } from "./postings-writer.js";
import { PostingsIndex } from "./postings.js";
import { POSTINGS_HEADER, segmentFiles } from "./postings-format.js";
import { tempDirs } from "../../../test/temp-dirs.js";

const tmpDir = tempDirs();

async function writePostings(docs: string[][], opts: PostingsWriterOptions = {}): Promise<string> {
  const dir = path.join(tmpDir("postings-"), "postings");
  const w = await PostingsWriter.create(dir, opts);
  for (const d of docs) await w.add(d);
  await w.finish();
  return dir;
}

function memoryIndex(docs: string[][]): Bm25MemoryIndex {
  const b = new Bm25MemoryBuilder();
  for (const d of docs) b.add(d);
  return b.finish();
}

/** A corpus whose term distribution is Zipf-like with exponent `skew` over `vocab` words (plus duplicated docs). */
function corpus(rng: Rng, n: number, vocab: number, skew: number, dupRate: number): string[][] {
  const docs: string[][] = [];
  for (let i = 0; i < n; i++) {
    if (docs.length > 0 && rng.next() < dupRate) {
      docs.push([...docs[rng.int(docs.length)]]); // exact ties
      continue;
    }
    const len = rng.next() < 0.03 ? 0 : 1 + rng.int(40);
    docs.push(Array.from({ length: len }, () => `t${Math.floor(vocab * rng.next() ** skew)}`));
  }
  return docs;
}

function query(rng: Rng, vocab: number, skew: number): string[] {
  const n = rng.int(7); // 0..6 terms (0 = empty query)
  const q: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.1) q.push(`unknown${rng.int(3)}`);
    else if (r < 0.25 && q.length > 0)
      q.push(q[rng.int(q.length)]); // repeated term
    else q.push(`t${Math.floor(vocab * rng.next() ** skew)}`);
  }
  return q;
}

function expectSame(got: ScoredRow[], want: ScoredRow[], label: string): void {
  // Bit-identical: same rows in the same order, same float64 scores.
  expect(got, label).toEqual(want);
}

describe("persisted postings + DAAT MaxScore engine", () => {
  it("returns exactly the in-memory scorer's rows and scores on random corpora (property test)", async () => {
    const rng = new Rng(20261121);
    let compared = 0;
    let nonEmpty = 0;
    for (let trial = 0; trial < 24; trial++) {
      const n = 1 + rng.int(trial < 4 ? 20 : 1500);
      const vocab = 5 + rng.int(trial % 3 === 0 ? 30 : 400);
      const skew = [1, 1.5, 2.5, 4][trial % 4];
      const docs = corpus(rng, n, vocab, skew, trial % 2 === 0 ? 0.3 : 0.02);
      const segmentSize = [n < 100 ? 1 : 13, 3 + rng.int(20), 64, 250, 100_000][rng.int(5)];
      const blockSize = [1, 2, 4, 16, 128][rng.int(5)];
      const dir = await writePostings(docs, { segmentSize, blockSize });
      const window = [1, 7, 64, 1 << 14][rng.int(4)];
      const tierMinDf = [0, 1, 3, 16, 256][rng.int(5)];
      const ix = PostingsIndex.open(dir, { window, tierMinDf });
      const mem = memoryIndex(docs);
      expect(ix.size).toBe(mem.size);
      expect(ix.avgdl).toBe(mem.avgdl);
      expect(ix.segmentCount).toBe(Math.ceil(n / segmentSize));
      for (let qn = 0; qn < 60; qn++) {
        const q = query(rng, vocab, skew);
        const k = qn % 10 === 0 ? 1 + rng.int(100) : 1 + rng.int(20);
        const want = mem.search(q, k);
        const label = JSON.stringify({ trial, n, vocab, skew, segmentSize, blockSize, window, tierMinDf, q, k });
        expectSame(ix.search(q, k), want, label);
        expectSame(ix.exhaustiveSearch(q, k), want, `exhaustive ${label}`);
        compared++;
        if (want.length > 0) nonEmpty++;
      }
      for (const t of ["t0", "t1", "unknown0"]) expect(ix.df(t)).toBe(mem.df(t));
    }
    expect(compared).toBe(24 * 60);
    expect(nonEmpty).toBeGreaterThan(compared * 0.7);
  });

  it("high-impact tiers: exact on 1–5-word queries (absent words, ties, k up to 100) over long lists", async () => {
    // Long lists where a few postings have a high tf (the tier) and most have tf 1, lengths varying, duplicates for
    // exact ties, and terms with a tf far above the rest (the tier's bound well above the list's).
    const rng = new Rng(15);
    const docs: string[][] = [];
    for (let i = 0; i < 6000; i++) {
      if (i > 0 && rng.next() < 0.05) {
        docs.push([...docs[rng.int(docs.length)]]);
        continue;
      }
      const len = 5 + rng.int(30);
      const d = Array.from({ length: len }, () => `w${Math.floor(300 * rng.next() ** 2.5)}`);
      if (rng.next() < 0.02) for (let r = rng.int(12); r >= 0; r--) d.push(`w${rng.int(20)}`);
      docs.push(d);
    }
    const mem = memoryIndex(docs);
    let tiered = 0;
    for (const [segmentSize, tierMinDf, window] of [
      [100_000, 256, 4096],
      [1500, 16, 512],
      [777, 1, 64],
    ]) {
      const ix = PostingsIndex.open(await writePostings(docs, { segmentSize, blockSize: 16 }), { window, tierMinDf });
      tiered = Math.max(tiered, ix.tierStats.terms);
      for (let qn = 0; qn < 150; qn++) {
        const words = 1 + (qn % 5);
        const q = Array.from({ length: words }, () =>
          rng.next() < 0.08 ? `absent${rng.int(3)}` : `w${Math.floor(300 * rng.next() ** 1.5)}`,
        );
        const k = [1, 5, 10, 37, 100][rng.int(5)];
        expectSame(ix.search(q, k), mem.search(q, k), JSON.stringify({ segmentSize, tierMinDf, q, k }));
      }
    }
    expect(tiered).toBeGreaterThan(10);
  });

  it("agrees when scores tie exactly (duplicate documents across segments; lower row wins)", async () => {
    const base = [
      ["a", "b", "c"],
      ["a", "a", "d"],
      ["b", "e"],
      ["c", "c", "c", "a"],
    ];
    const docs: string[][] = [];
    for (let i = 0; i < 400; i++) docs.push([...base[i % base.length]]);
    const mem = memoryIndex(docs);
    for (const [segmentSize, blockSize, window, tierMinDf] of [
      [7, 4, 3, 1],
      [100, 1, 16, 0],
      [100, 2, 16, 1],
      [1000, 128, 1 << 14, 256],
      [1000, 4, 64, 1],
    ]) {
      const ix = PostingsIndex.open(await writePostings(docs, { segmentSize, blockSize }), { window, tierMinDf });
      for (const q of [["a"], ["a", "b"], ["c", "a", "c"], ["e", "d"], ["b", "b", "zz"]])
        for (const k of [1, 3, 10, 20]) {
          const got = ix.search(q, k);
          expectSame(got, mem.search(q, k), JSON.stringify({ q, k, segmentSize, blockSize }));
          // Ties really are exercised: the top rows share one score and come in row order.
          if (k > 1) expect(got[1].score).toBe(got[0].score);
        }
    }
  });

  it("handles empty queries, unknown terms, k ≤ 0, empty passages, an empty corpus and tf over 65535", async () => {
    const docs = [[], ["x"], Array.from({ length: 70_000 }, () => "big"), ["x", "big"], []];
    const ix = PostingsIndex.open(await writePostings(docs, { segmentSize: 2, blockSize: 1 }));
    const mem = memoryIndex(docs);
    expect(ix.search([], 5)).toEqual([]);
    expect(ix.search(["nope"], 5)).toEqual([]);
    expect(ix.search(["x"], 0)).toEqual([]);
    for (const q of [["big"], ["x", "big"], ["big", "big", "x"]])
      expectSame(ix.search(q, 5), mem.search(q, 5), q.join());
    const empty = PostingsIndex.open(await writePostings([]));
    expect(empty.size).toBe(0);
    expect(empty.search(["x"], 3)).toEqual([]);
  });

  it("terms are UTF-8 byte-ordered and found whatever their script", async () => {
    const words = ["zebra", "Ärger", "日本", "😀x", "\uffefq", "a", "ab", "abc", "é", "e\u0301"];
    const docs = words.map((w, i) => [w, `n${i}`]);
    const ix = PostingsIndex.open(await writePostings(docs, { segmentSize: 4 }));
    for (let i = 0; i < words.length; i++) {
      expect(ix.df(words[i])).toBe(1);
      expect(ix.search([words[i]], 1)).toEqual([{ row: i, score: expect.any(Number) }]);
    }
    expect(ix.df("abcd")).toBe(0);
  });

  it("the top-k threshold carries over between segments (later segments prune)", async () => {
    // Long posting lists in every segment; a selective two-term query must still match the exhaustive scorer.
    const rng = new Rng(4);
    const docs = corpus(rng, 6000, 50, 1.2, 0);
    const ix = PostingsIndex.open(await writePostings(docs, { segmentSize: 1000, blockSize: 16 }), { window: 256 });
    const ref = ix.toMemoryIndex();
    const mem = memoryIndex(docs);
    for (const q of [["t0"], ["t0", "t1"], ["t3", "t40", "t0", "t3"], ["t1", "t2", "t5", "t9", "t20"]]) {
      expectSame(ix.search(q, 10), mem.search(q, 10), q.join());
      expectSame(ref.search(q, 10), mem.search(q, 10), `toMemoryIndex ${q.join()}`);
    }
    // The pruning is real: far fewer documents are fully scored than the query terms have postings.
    expect(ix.stats.queries).toBe(4);
    expect(ix.stats.scored).toBeLessThan(ix.stats.postings / 4);
  });
});

describe("postings files: validation at open", () => {
  async function fresh(): Promise<string> {
    const rng = new Rng(7);
    return writePostings(corpus(rng, 300, 40, 1.5, 0), { segmentSize: 100, blockSize: 8 });
  }

  it("writes the header last and one set of files per segment", async () => {
    const dir = await fresh();
    const files = readdirSync(dir).sort();
    expect(files).toContain(POSTINGS_HEADER);
    for (const seg of ["seg-0000", "seg-0001", "seg-0002"])
      for (const f of Object.values(segmentFiles(dir, seg))) expect(existsSync(f), f).toBe(true);
    const h = JSON.parse(readFileSync(path.join(dir, POSTINGS_HEADER), "utf8"));
    expect(h).toMatchObject({
      format: "searchrl-bm25-postings",
      version: 1,
      size: 300,
      blockSize: 8,
      segmentSize: 100,
    });
    expect(h.segments.map((s: { firstRow: number }) => s.firstRow)).toEqual([0, 100, 200]);
  });

  it("a truncated file is reported by name", async () => {
    const dir = await fresh();
    const docsFile = segmentFiles(dir, "seg-0001").docs;
    truncateSync(docsFile, 12);
    expect(() => PostingsIndex.open(dir)).toThrow(
      new RegExp(
        `${docsFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: size 12 bytes, expected \\d+ .*rebuild the index`,
      ),
    );
  });

  it("corrupt contents, a missing file, a bad header are clear errors", async () => {
    let dir = await fresh();
    const f = segmentFiles(dir, "seg-0000");
    const docs = new Int32Array(new Uint8Array(readFileSync(f.docs)).buffer);
    docs[1] = 1_000_000; // out of the segment's range
    writeFileSync(f.docs, new Uint8Array(docs.buffer));
    expect(() => PostingsIndex.open(dir)).toThrow(/seg-0000\.docs\.i32: row 1000000 out of order or range/);

    dir = await fresh();
    const bm = segmentFiles(dir, "seg-0002").bmax;
    const b = new Float64Array(new Uint8Array(readFileSync(bm)).buffer);
    b[0] = NaN;
    writeFileSync(bm, new Uint8Array(b.buffer));
    expect(() => PostingsIndex.open(dir)).toThrow(/seg-0002\.bmax\.f64: block bound NaN/);

    dir = await fresh();
    rmSync(segmentFiles(dir, "seg-0001").tfs);
    expect(() => PostingsIndex.open(dir)).toThrow(/seg-0001\.tfs\.u16: cannot be opened \(ENOENT\)/);

    dir = await fresh();
    const hf = path.join(dir, POSTINGS_HEADER);
    const h = JSON.parse(readFileSync(hf, "utf8"));
    h.segments[1].postings += 1;
    writeFileSync(hf, JSON.stringify(h));
    expect(() => PostingsIndex.open(dir)).toThrow(/seg-0001\.termoff\.u32|seg-0001\.start\.i32/);
    h.segments[1].postings -= 1;
    h.size = 5;
    writeFileSync(hf, JSON.stringify(h));
    expect(() => PostingsIndex.open(dir)).toThrow(/postings\.json: segment rows\/tokens do not add up/);
    h.size = 300; // back to the valid header
    for (const v of [2, 0, "1"]) {
      writeFileSync(hf, JSON.stringify({ ...h, version: v }));
      expect(() => PostingsIndex.open(dir)).toThrow(
        new RegExp(
          `postings\\.json: BM25 postings format version ${JSON.stringify(v)}; this searchrl reads version 1: rebuild the index with this version \\(searchrl index build --bm25`,
        ),
      );
    }
    writeFileSync(hf, JSON.stringify(h));
    expect(PostingsIndex.open(dir).size).toBeGreaterThan(0); // the current version opens
    writeFileSync(hf, "{");
    expect(() => PostingsIndex.open(dir)).toThrow(/postings\.json: invalid JSON/);
    rmSync(hf);
    expect(() => PostingsIndex.open(dir)).toThrow(/postings\.json is missing/);
  });
});
