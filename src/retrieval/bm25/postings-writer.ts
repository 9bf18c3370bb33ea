/**
 * `PostingsWriter`: inverts analyzed passages into the persisted BM25 postings (format in `postings-format.ts`) while an
 * index is built, one segment of at most `segmentSize` passages at a time.
 *
 * Per segment, passages are added as (term id, tf) pairs in row order (6 bytes per distinct term of a passage, in
 * fixed-size chunks: no doubling copies), then inverted with a counting sort by term (postings come out in row order;
 * pair chunks are released as they are consumed), written, and dropped: build memory is bounded by the segment size
 * (at most about 12 bytes per posting of the segment, pairs plus postings, and its dictionary), not by the corpus. `finish()` writes the last
 * segment, then, with the global avgdl known, computes each segment's block maxima (re-reading its files through the
 * same validating reader the engine uses) and writes the header last.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteJson } from "../../util/fsutil.js";
import { BM25_B, BM25_K1, GrowInt32 } from "./memory.js";
import {
  assertLittleEndian,
  bytesOf,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_SEGMENT_SIZE,
  POSTINGS_FORMAT,
  POSTINGS_HEADER,
  POSTINGS_VERSION,
  PostingsHeaderSchema,
  segmentFiles,
  segmentName,
  type PostingsHeader,
  type SegmentMeta,
} from "./postings-format.js";
import { lengthCodes, readSegmentArrays, type LengthCodes } from "./postings-read.js";

export interface PostingsWriterOptions {
  /** Passages per segment (default 1 000 000). */
  segmentSize?: number;
  /** Postings per block for the block-max bounds (default 128, a power of two). */
  blockSize?: number;
}

export interface PostingsSummary {
  path: string;
  segments: number;
  segmentSize: number;
  blockSize: number;
  postings: number;
  bytes: number;
  /** Time spent inverting and writing (not counting the caller's analysis). */
  seconds: number;
}

const CHUNK_BITS = 20;
const EMPTY_I32 = new Int32Array(0);
const EMPTY_U16 = new Uint16Array(0);
const CHUNK = 1 << CHUNK_BITS;

/** An append-only typed array in fixed-size chunks (no copy when it grows). */
class Chunked<T extends Int32Array | Uint16Array> {
  chunks: T[] = [];
  n = 0;
  constructor(private readonly make: (n: number) => T) {}
  push(v: number): void {
    const off = this.n & (CHUNK - 1);
    if (off === 0) this.chunks.push(this.make(CHUNK));
    this.chunks[this.chunks.length - 1][off] = v;
    this.n++;
  }
  /** Saturating increment of element i (capped at `max`). */
  inc(i: number, max: number): void {
    const c = this.chunks[i >>> CHUNK_BITS];
    const o = i & (CHUNK - 1);
    if (c[o] < max) c[o]++;
  }
}

/** One segment being accumulated. */
class SegmentBuilder {
  readonly termIds = new Map<string, number>();
  readonly termStr: string[] = [];
  /** Per term: last row that contained it, and the index of that row's pair. */
  readonly lastRow = new GrowInt32(1 << 16);
  readonly lastPair = new GrowInt32(1 << 16);
  readonly df = new GrowInt32(1 << 16);
  readonly pairTerm = new Chunked((n) => new Int32Array(n));
  readonly pairTf = new Chunked((n) => new Uint16Array(n));
  readonly docStart = new GrowInt32(1 << 16);
  readonly lens = new GrowInt32(1 << 16);
  tokens = 0;

  constructor() {
    this.docStart.push(0);
  }

  get rows(): number {
    return this.lens.n;
  }

  add(terms: readonly string[]): void {
    const row = this.lens.n;
    for (let i = 0; i < terms.length; i++) {
      let id = this.termIds.get(terms[i]);
      if (id === undefined) {
        id = this.termStr.length;
        this.termIds.set(terms[i], id);
        this.termStr.push(terms[i]);
        this.lastRow.push(-1);
        this.lastPair.push(0);
        this.df.push(0);
      }
      if (this.lastRow.a[id] === row) {
        this.pairTf.inc(this.lastPair.a[id], 65535);
      } else {
        this.lastRow.a[id] = row;
        this.lastPair.a[id] = this.pairTerm.n;
        this.df.a[id]++;
        this.pairTerm.push(id);
        this.pairTf.push(1);
      }
    }
    this.docStart.push(this.pairTerm.n);
    this.lens.push(terms.length);
    this.tokens += terms.length;
  }

  /** Invert and write the segment's files (everything but the block maxima). */
  async write(dir: string, name: string, firstRow: number, blockSize: number): Promise<SegmentMeta> {
    const V = this.termStr.length;
    const P = this.pairTerm.n;
    if (P > 0x7fffffff)
      throw new Error(`BM25 postings: a segment holds ${P} postings (max 2^31 − 1); lower segmentSize`);
    // Dictionary in UTF-8 byte order (binary-searched at query time).
    const enc = this.termStr.map((t) => Buffer.from(t, "utf8"));
    const order = Int32Array.from({ length: V }, (_, i) => i).sort((a, b) => Buffer.compare(enc[a], enc[b]));
    const rank = new Int32Array(V);
    for (let i = 0; i < V; i++) rank[order[i]] = i;
    const termOff = new Uint32Array(V + 1);
    for (let i = 0; i < V; i++) termOff[i + 1] = termOff[i] + enc[order[i]].length;
    const termBytes = Buffer.concat(Array.from(order, (i) => enc[i]));
    const start = new Int32Array(V + 1);
    let blocks = 0;
    for (let i = 0; i < V; i++) {
      const df = this.df.a[order[i]];
      start[i + 1] = start[i] + df;
      blocks += Math.ceil(df / blockSize);
    }
    // Counting sort of the (row, term) pairs by term; rows come out ascending within each term.
    const fill = start.slice(0, V);
    const docs = new Int32Array(P);
    const tfs = new Uint16Array(P);
    const ds = this.docStart.a;
    let row = 0;
    let p = 0;
    const chunks = this.pairTerm.chunks.length;
    for (let c = 0; c < chunks; c++) {
      const ct = this.pairTerm.chunks[c];
      const cf = this.pairTf.chunks[c];
      const m = Math.min(CHUNK, P - c * CHUNK);
      for (let o = 0; o < m; o++, p++) {
        while (ds[row + 1] <= p) row++;
        const at = fill[rank[ct[o]]]++;
        docs[at] = row;
        tfs[at] = cf[o];
      }
      // Release the pairs as they are consumed (the garbage collector can reclaim them while the rest is inverted).
      this.pairTerm.chunks[c] = EMPTY_I32;
      this.pairTf.chunks[c] = EMPTY_U16;
    }
    const f = segmentFiles(dir, name);
    await fsp.writeFile(f.terms, termBytes);
    await fsp.writeFile(f.termOff, bytesOf(termOff));
    await fsp.writeFile(f.start, bytesOf(start));
    await fsp.writeFile(f.docs, bytesOf(docs));
    await fsp.writeFile(f.tfs, bytesOf(tfs));
    await fsp.writeFile(f.lens, bytesOf(this.lens.a.subarray(0, this.rows)));
    return {
      name,
      firstRow,
      rows: this.rows,
      tokens: this.tokens,
      terms: V,
      termBytes: termBytes.length,
      postings: P,
      blocks,
    };
  }
}

/**
 * Block maxima of one segment: for each term's blocks of `blockSize` postings, max over the block of
 * tf / (tf + k1·(1 − b + b·|d|/avgdl)). The query bound of a block is w · bmax (w = times · idf · (k1 + 1)).
 */
export function computeBlockMax(
  start: Int32Array,
  docs: Int32Array,
  tfs: Uint16Array,
  lc: LengthCodes,
  blockSize: number,
  blocks: number,
): Float64Array {
  const { code, normOfCode } = lc;
  const out = new Float64Array(blocks);
  const V = start.length - 1;
  let b = 0;
  for (let t = 0; t < V; t++) {
    const e = start[t + 1];
    for (let s = start[t]; s < e; s += blockSize) {
      const be = Math.min(e, s + blockSize);
      let mx = 0;
      for (let i = s; i < be; i++) {
        const tf = tfs[i];
        const v = tf / (tf + normOfCode[code[docs[i]]]);
        if (v > mx) mx = v;
      }
      out[b++] = mx;
    }
  }
  if (b !== blocks) throw new Error(`BM25 postings: computed ${b} blocks, expected ${blocks}`);
  return out;
}

/** The finished segments of a build in progress (rows `0 .. Σ rows − 1`). */
export interface PostingsCheckpoint {
  segments: SegmentMeta[];
}

/** Streaming writer: `add` passages' analyzed terms in row order, then `finish`. */
export class PostingsWriter {
  private seg = new SegmentBuilder();
  private readonly segments: SegmentMeta[] = [];
  private rows = 0;
  private tokens = 0;
  private busyMs = 0;
  readonly segmentSize: number;
  readonly blockSize: number;

  private constructor(
    readonly dir: string,
    opts: PostingsWriterOptions,
  ) {
    this.segmentSize = opts.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isInteger(this.segmentSize) || this.segmentSize < 1)
      throw new Error(`BM25 postings: segmentSize must be a positive integer, got ${this.segmentSize}`);
    if (!Number.isInteger(this.blockSize) || this.blockSize < 1 || (this.blockSize & (this.blockSize - 1)) !== 0)
      throw new Error(`BM25 postings: blockSize must be a power of two, got ${this.blockSize}`);
  }

  /**
   * Create the writer and its directory. With `resume` (a build checkpoint), the segments already written there are
   * kept and the next passage added is row `resume.rows`.
   */
  static async create(
    dir: string,
    opts: PostingsWriterOptions = {},
    resume?: PostingsCheckpoint,
  ): Promise<PostingsWriter> {
    assertLittleEndian();
    const w = new PostingsWriter(dir, opts);
    await fsp.mkdir(dir, { recursive: true });
    if (resume) {
      let row = 0;
      let tokens = 0;
      for (const m of resume.segments) {
        if (m.firstRow !== row) throw new Error(`BM25 postings: resumed segment ${m.name} starts at row ${m.firstRow}`);
        row += m.rows;
        tokens += m.tokens;
      }
      w.segments.push(...resume.segments);
      w.rows = row;
      w.tokens = tokens;
    }
    return w;
  }

  /** Segments written so far (what a build checkpoint records). */
  get checkpoint(): PostingsCheckpoint {
    return { segments: [...this.segments] };
  }

  /** Passages added so far (including resumed segments). */
  get count(): number {
    return this.rows;
  }

  /**
   * Add the next passage's analyzed terms (row = passages added before it). Resolves `true` when this passage completed
   * a segment and its files were written (a checkpoint point).
   */
  async add(terms: readonly string[]): Promise<boolean> {
    const t = performance.now();
    this.seg.add(terms);
    this.rows++;
    this.tokens += terms.length;
    this.busyMs += performance.now() - t;
    if (this.seg.rows < this.segmentSize) return false;
    await this.flush();
    return true;
  }

  private async flush(): Promise<void> {
    if (this.seg.rows === 0) return;
    const t = performance.now();
    const seg = this.seg;
    this.seg = new SegmentBuilder();
    const firstRow = this.rows - seg.rows;
    this.segments.push(await seg.write(this.dir, segmentName(this.segments.length), firstRow, this.blockSize));
    this.busyMs += performance.now() - t;
  }

  /** Write the last segment, the block maxima of every segment and the header (last). */
  async finish(): Promise<PostingsSummary> {
    await this.flush();
    const t = performance.now();
    const avgdl = this.rows > 0 ? this.tokens / this.rows : 0;
    let bytes = 0;
    for (const s of this.segments) {
      const a = readSegmentArrays(this.dir, s, this.blockSize, { blockMax: false });
      const bmax = computeBlockMax(a.start, a.docs, a.tfs, lengthCodes(a.lens, avgdl), this.blockSize, s.blocks);
      const f = segmentFiles(this.dir, s.name);
      await fsp.writeFile(f.bmax, bytesOf(bmax));
      for (const file of Object.values(f)) bytes += (await fsp.stat(file)).size;
    }
    const header: PostingsHeader = PostingsHeaderSchema.parse({
      format: POSTINGS_FORMAT,
      version: POSTINGS_VERSION,
      endianness: "LE",
      size: this.rows,
      tokens: this.tokens,
      avgdl,
      k1: BM25_K1,
      b: BM25_B,
      blockSize: this.blockSize,
      segmentSize: this.segmentSize,
      segments: this.segments,
    });
    await atomicWriteJson(path.join(this.dir, POSTINGS_HEADER), header);
    this.busyMs += performance.now() - t;
    return {
      path: this.dir,
      segments: this.segments.length,
      segmentSize: this.segmentSize,
      blockSize: this.blockSize,
      postings: this.segments.reduce((s, x) => s + x.postings, 0),
      bytes,
      seconds: this.busyMs / 1000,
    };
  }
}
