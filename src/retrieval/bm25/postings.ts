/**
 * `PostingsIndex`: exact BM25 over the persisted postings (`postings-format.ts`), document-at-a-time with dynamic
 * pruning (MaxScore with block-max bounds), in memory after a plain read of the files.
 *
 * Results are exactly those of {@link Bm25MemoryIndex.search} (same formula, k1/b, OR semantics with a repeated query
 * term counted per occurrence, ties broken by lower row), bit for bit:
 * - idf, the term weight w = times·idf·(k1 + 1), the length norm and each contribution (w·tf)/(tf + norm) are computed
 *   with the same expressions, from the same global N, df (summed over segments) and avgdl;
 * - a document's score is summed in the same order as the term-at-a-time scorer accumulates it (distinct query terms
 *   in order of first occurrence), whatever order the pruning visits the terms in;
 * - pruning only drops a document when its upper bound, inflated by a relative slack of 1e-9 that covers every
 *   rounding difference between a bound and a score, is ≤ the current k-th score. Documents are visited in ascending
 *   row order (segments in row order, one shared top-k), so a later document with a score equal to the k-th score
 *   can never enter the top-k (lower row wins ties): dropping it is exact.
 *
 * Query algorithm per segment (windowed MaxScore, the bulk-scoring form Lucene uses): the query's terms become cursors
 * sorted by upper bound (w · the term's largest block bound). With threshold θ (the k-th best score so far), the
 * cheapest terms whose upper bounds sum to ≤ θ are "non-essential": a document that only they contain cannot enter the
 * top-k, so candidates come from the essential terms' postings only. Rows are taken in windows: the essential
 * postings of a window are accumulated term by term into per-row records (blocks whose bound cannot beat θ skipped
 * whole); then the touched rows that can still beat θ, in ascending order, get their non-essential terms looked up
 * (block skipping, block-bound check, binary search within a block) in decreasing bound order, stopping as soon as the
 * partial score plus the remaining bounds is ≤ θ; survivors are scored exactly and offered to the top-k.
 *
 * Memory per query: O(k + query terms), plus window buffers reused across queries (no array sized by the corpus is
 * allocated or touched per query). Searches are synchronous; the buffers are shared by one index's queries.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { BM25_B, BM25_K1, Bm25MemoryIndex, TopK, type ScoredRow } from "./memory.js";
import {
  assertLittleEndian,
  corrupt,
  POSTINGS_HEADER,
  PostingsHeaderSchema,
  readTypedFile,
  segmentFiles,
  type PostingsHeader,
  type SegmentMeta,
} from "./postings-format.js";

/** Relative slack on upper bounds (rounding-safe pruning). */
const SLACK = 1 + 1e-9;
const NO_DOC = 0x7fffffff;

/** BM25 length normalisation per document, exactly as the in-memory scorer computes it. */
export function lengthNorms(lens: Int32Array, avgdl: number): Float64Array {
  const norm = new Float64Array(lens.length);
  for (let d = 0; d < lens.length; d++) norm[d] = BM25_K1 * (1 - BM25_B + (BM25_B * lens[d]) / (avgdl || 1));
  return norm;
}

/** Rows coded by length: the BM25 norm of row d is `normOfCode[code[d]]` (equal to `lengthNorms(lens, avgdl)[d]`). */
export interface LengthCodes {
  /** 1 byte per row when there are at most 256 distinct lengths, else 2 (4 beyond 65 536). */
  code: Uint8Array | Uint16Array | Int32Array;
  normOfCode: Float64Array;
}

/**
 * Code rows by their length. The norm depends on the length only, so a small table indexed by a 1- or 2-byte code per
 * row keeps the per-posting lookup in cache (an 8-byte norm per row misses the cache at a million rows).
 */
export function lengthCodes(lens: Int32Array, avgdl: number): LengthCodes {
  const codes = new Map<number, number>();
  for (let d = 0; d < lens.length; d++) if (!codes.has(lens[d])) codes.set(lens[d], codes.size);
  const normOfCode = lengthNorms(Int32Array.from(codes.keys()), avgdl);
  const n = lens.length;
  const code = codes.size <= 256 ? new Uint8Array(n) : codes.size <= 65536 ? new Uint16Array(n) : new Int32Array(n);
  for (let d = 0; d < n; d++) code[d] = codes.get(lens[d])!;
  return { code, normOfCode };
}

export interface SegmentArrays {
  terms: Uint8Array;
  termOff: Uint32Array;
  start: Int32Array;
  docs: Int32Array;
  tfs: Uint16Array;
  lens: Int32Array;
  /** Absent when read with `blockMax: false` (while the writer computes them). */
  bmax: Float64Array | null;
}

/**
 * Read one segment's files, checking sizes against the header and the structure (offsets monotone and in range, rows
 * strictly ascending within each term and inside the segment, tf ≥ 1, lengths summing to the segment's tokens, block
 * bounds in [0, 1)). Errors name the file.
 */
export function readSegmentArrays(
  dir: string,
  meta: SegmentMeta,
  blockSize: number,
  opts: { blockMax?: boolean } = {},
): SegmentArrays {
  const f = segmentFiles(dir, meta.name);
  const V = meta.terms;
  const P = meta.postings;
  const termOff = readTypedFile(f.termOff, Uint32Array, V + 1);
  if (termOff[0] !== 0 || termOff[V] !== meta.termBytes) throw corrupt(f.termOff, "term offsets do not span the terms");
  for (let i = 0; i < V; i++)
    if (termOff[i + 1] <= termOff[i]) throw corrupt(f.termOff, `empty or decreasing term offset at term ${i}`);
  const terms = readTypedFile(f.terms, Uint8Array, meta.termBytes);
  const start = readTypedFile(f.start, Int32Array, V + 1);
  if (start[0] !== 0 || start[V] !== P) throw corrupt(f.start, `posting offsets do not span the ${P} postings`);
  let blocks = 0;
  for (let t = 0; t < V; t++) {
    const df = start[t + 1] - start[t];
    if (df <= 0) throw corrupt(f.start, `term ${t} has no postings`);
    blocks += Math.ceil(df / blockSize);
  }
  if (blocks !== meta.blocks)
    throw corrupt(f.start, `${blocks} blocks of ${blockSize} postings, header says ${meta.blocks}`);
  const lens = readTypedFile(f.lens, Int32Array, meta.rows);
  let tokens = 0;
  for (let d = 0; d < meta.rows; d++) {
    if (lens[d] < 0) throw corrupt(f.lens, `negative length at row ${d}`);
    tokens += lens[d];
  }
  if (tokens !== meta.tokens) throw corrupt(f.lens, `lengths sum to ${tokens}, header says ${meta.tokens}`);
  const docs = readTypedFile(f.docs, Int32Array, P);
  const rows = meta.rows;
  for (let t = 0; t < V; t++) {
    let prev = -1;
    const e = start[t + 1];
    for (let i = start[t]; i < e; i++) {
      const d = docs[i];
      if (d <= prev || d >= rows) throw corrupt(f.docs, `row ${d} out of order or range in the postings of term ${t}`);
      prev = d;
    }
  }
  const tfs = readTypedFile(f.tfs, Uint16Array, P);
  for (let i = 0; i < P; i++) if (tfs[i] === 0) throw corrupt(f.tfs, `zero term frequency at posting ${i}`);
  let bmax: Float64Array | null = null;
  if (opts.blockMax !== false) {
    bmax = readTypedFile(f.bmax, Float64Array, meta.blocks);
    for (let i = 0; i < meta.blocks; i++)
      if (!(bmax[i] > 0 && bmax[i] < 1)) throw corrupt(f.bmax, `block bound ${bmax[i]} at block ${i} not in (0, 1)`);
  }
  return { terms, termOff, start, docs, tfs, lens, bmax };
}

/** Read and validate `postings.json`. */
export function readPostingsHeader(dir: string): PostingsHeader {
  const file = path.join(dir, POSTINGS_HEADER);
  if (!existsSync(file)) throw new Error(`${file} is missing: the index has no BM25 postings (rebuild the index)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw corrupt(file, `invalid JSON (${(err as Error).message})`);
  }
  const r = PostingsHeaderSchema.safeParse(raw);
  if (!r.success)
    throw corrupt(
      file,
      `not a valid header (${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")})`,
    );
  const h = r.data;
  if (h.k1 !== BM25_K1 || h.b !== BM25_B) throw corrupt(file, `scoring k1=${h.k1} b=${h.b} differs from this engine's`);
  let row = 0;
  let tokens = 0;
  for (const s of h.segments) {
    if (s.firstRow !== row) throw corrupt(file, `segment ${s.name} starts at row ${s.firstRow}, expected ${row}`);
    row += s.rows;
    tokens += s.tokens;
  }
  if (row !== h.size || tokens !== h.tokens) throw corrupt(file, "segment rows/tokens do not add up to the totals");
  if (h.avgdl !== (h.size > 0 ? h.tokens / h.size : 0)) throw corrupt(file, "avgdl is not tokens / size");
  return h;
}

/** One opened segment, with the derived per-term block bases and upper bounds. */
class Segment {
  readonly firstRow: number;
  readonly terms: Buffer;
  readonly termOff: Uint32Array;
  readonly start: Int32Array;
  readonly docs: Int32Array;
  readonly tfs: Uint16Array;
  /** Per row: code of its length (rows with equal length share a code); `normOfCode` gives the BM25 length norm. */
  readonly lenCode: Uint8Array | Uint16Array | Int32Array;
  readonly normOfCode: Float64Array;
  readonly bmax: Float64Array;
  /** First block of each term (V + 1). */
  readonly blockBase: Int32Array;
  /** Per term: max over its blocks of tf / (tf + norm). */
  readonly termMax: Float64Array;
  readonly lens: Int32Array;

  constructor(
    readonly meta: SegmentMeta,
    a: SegmentArrays,
    avgdl: number,
    blockSize: number,
  ) {
    this.firstRow = meta.firstRow;
    this.terms = Buffer.from(a.terms.buffer, a.terms.byteOffset, a.terms.byteLength);
    this.termOff = a.termOff;
    this.start = a.start;
    this.docs = a.docs;
    this.tfs = a.tfs;
    this.lens = a.lens;
    const lc = lengthCodes(a.lens, avgdl);
    this.lenCode = lc.code;
    this.normOfCode = lc.normOfCode;
    this.bmax = a.bmax!;
    const V = meta.terms;
    this.blockBase = new Int32Array(V + 1);
    this.termMax = new Float64Array(V);
    for (let t = 0; t < V; t++) {
      const nb = Math.ceil((this.start[t + 1] - this.start[t]) / blockSize);
      const b0 = this.blockBase[t];
      this.blockBase[t + 1] = b0 + nb;
      let mx = 0;
      for (let b = b0; b < b0 + nb; b++) if (this.bmax[b] > mx) mx = this.bmax[b];
      this.termMax[t] = mx;
    }
  }

  /** Local term id of a UTF-8 key (binary search of the byte-ordered dictionary), or −1. */
  lookup(key: Buffer): number {
    let lo = 0;
    let hi = this.meta.terms - 1;
    const off = this.termOff;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = key.compare(this.terms, off[mid], off[mid + 1]);
      if (c === 0) return mid;
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  termString(t: number): string {
    return this.terms.toString("utf8", this.termOff[t], this.termOff[t + 1]);
  }
}

/** Default rows per scoring window (window buffers: 8·(terms + 2) bytes per row, reused across queries). */
export const DEFAULT_WINDOW = 1 << 12;

export interface PostingsOpenOptions {
  /** Rows per scoring window (default {@link DEFAULT_WINDOW}); results do not depend on it. */
  window?: number;
}

interface Scratch {
  /** Record stride in float64s: [stamp, essential sum, one contribution per query term]. */
  stride: number;
  stamp: number;
  /** Per window row l, the record at l·stride (one or two cache lines per touched row). */
  rec: Float64Array;
  /** Window rows touched in the current window. */
  touched: Int32Array;
  /** Non-essential contributions of the row being completed. */
  neC: Float64Array;
}

/** Per-query cursor state, one slot per query term present in a segment (sorted by upper bound, ascending). */
interface Cursors {
  pos: Int32Array;
  end: Int32Array;
  tStart: Int32Array;
  bBase: Int32Array;
  w: Float64Array;
  pre: Float64Array;
  /** Cursor slots in query order (the order scores are summed in). */
  qord: Int32Array;
}

/** Work counters (cumulative over `search` calls): how much the pruning saves against term-at-a-time. */
export interface PostingsSearchStats {
  queries: number;
  /** Postings of the query terms (what an exhaustive scorer reads). */
  postings: number;
  /** Documents whose full score was computed. */
  scored: number;
}

export class PostingsIndex {
  readonly stats: PostingsSearchStats = { queries: 0, postings: 0, scored: 0 };
  readonly size: number;
  readonly avgdl: number;
  private readonly log2Block: number;

  private readonly window: number;

  private constructor(
    readonly dir: string,
    readonly header: PostingsHeader,
    private readonly segments: Segment[],
    opts: PostingsOpenOptions,
  ) {
    this.window = opts.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(this.window) || this.window < 1) throw new Error(`window must be a positive integer`);
    this.size = header.size;
    this.avgdl = header.avgdl;
    this.log2Block = Math.log2(header.blockSize);
  }

  /** Open a `postings/` directory (reads every file; validates sizes and structure). */
  static open(dir: string, opts: PostingsOpenOptions = {}): PostingsIndex {
    assertLittleEndian();
    const header = readPostingsHeader(dir);
    const segs = header.segments.map(
      (m) => new Segment(m, readSegmentArrays(dir, m, header.blockSize), header.avgdl, header.blockSize),
    );
    return new PostingsIndex(dir, header, segs, opts);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Bytes held in memory by the opened index (file contents plus the derived per-row and per-term arrays). */
  get memoryBytes(): number {
    let n = 0;
    for (const g of this.segments)
      for (const a of [
        g.terms,
        g.termOff,
        g.start,
        g.docs,
        g.tfs,
        g.lens,
        g.bmax,
        g.lenCode,
        g.normOfCode,
        g.blockBase,
        g.termMax,
      ])
        n += a.byteLength;
    return n;
  }

  /** Total postings (sum over segments). */
  get postings(): number {
    return this.header.segments.reduce((s, x) => s + x.postings, 0);
  }

  /** Document frequency of a term over all segments (0 when unknown). */
  df(term: string): number {
    const key = Buffer.from(term, "utf8");
    let df = 0;
    for (const s of this.segments) {
      const t = s.lookup(key);
      if (t >= 0) df += s.start[t + 1] - s.start[t];
    }
    return df;
  }

  idf(df: number): number {
    return Math.log(1 + (this.size - df + 0.5) / (df + 0.5));
  }

  /**
   * Top-k rows for analyzed query terms (OR semantics; a term repeated in the query counts once per occurrence), best
   * first, ties by lower row: the same rows and scores as {@link Bm25MemoryIndex.search}.
   */
  search(queryTerms: readonly string[], k: number): ScoredRow[] {
    if (k <= 0 || queryTerms.length === 0 || this.size === 0) return [];
    this.stats.queries++;
    // Distinct terms in order of first occurrence, with multiplicity (the in-memory scorer's summation order).
    const mult = new Map<string, number>();
    for (const t of queryTerms) mult.set(t, (mult.get(t) ?? 0) + 1);
    const mq = mult.size;
    const S = this.segments.length;
    const tids = new Int32Array(mq * S);
    const w = new Float64Array(mq);
    let qi = 0;
    let any = false;
    for (const [term, times] of mult) {
      const key = Buffer.from(term, "utf8");
      let df = 0;
      for (let s = 0; s < S; s++) {
        const seg = this.segments[s];
        const t = seg.lookup(key);
        tids[qi * S + s] = t;
        if (t >= 0) df += seg.start[t + 1] - seg.start[t];
      }
      this.stats.postings += df;
      if (df > 0) {
        const idf = this.idf(df);
        w[qi] = times * idf * (BM25_K1 + 1);
        any = true;
      }
      qi++;
    }
    if (!any) return [];
    const top = new TopK(k);
    const cur: Cursors = {
      pos: new Int32Array(mq),
      end: new Int32Array(mq),
      tStart: new Int32Array(mq),
      bBase: new Int32Array(mq),
      w: new Float64Array(mq),
      pre: new Float64Array(mq),
      qord: new Int32Array(mq),
    };
    const ub = new Float64Array(mq);
    const slotQ = new Int32Array(mq);
    for (let s = 0; s < S; s++) {
      const seg = this.segments[s];
      // Cursors for the query terms this segment has, in query order, then sorted by upper bound.
      let m = 0;
      for (let q = 0; q < mq; q++) {
        const t = tids[q * S + s];
        if (t < 0 || w[q] === 0) continue;
        slotQ[m] = q;
        ub[m] = w[q] * seg.termMax[t];
        m++;
      }
      if (m === 0) continue;
      // Insertion sort of slots 0..m-1 by ub ascending (stable; m is tiny).
      const order = Array.from({ length: m }, (_, i) => i);
      for (let i = 1; i < m; i++) {
        const x = order[i];
        let j = i - 1;
        while (j >= 0 && ub[order[j]] > ub[x]) {
          order[j + 1] = order[j];
          j--;
        }
        order[j + 1] = x;
      }
      let acc = 0;
      for (let c = 0; c < m; c++) {
        const o = order[c];
        const q = slotQ[o];
        const t = tids[q * S + s];
        cur.pos[c] = seg.start[t];
        cur.end[c] = seg.start[t + 1];
        cur.tStart[c] = seg.start[t];
        cur.bBase[c] = seg.blockBase[t];
        cur.w[c] = w[q];
        acc += ub[o];
        cur.pre[c] = acc;
        cur.qord[o] = c; // slots were created in query order: slot o is the o-th present query term
      }
      this.stats.scored += this.scoreSegment(seg, cur, m, top);
    }
    return top.result();
  }

  /**
   * Windowed MaxScore over one segment; pushes into the shared top-k in ascending row order. Returns docs scored.
   *
   * Rows are taken in windows (`window` rows, default {@link DEFAULT_WINDOW}) starting at the smallest current row of the essential cursors. Within a
   * window the essential postings are accumulated term by term into window-sized buffers (a block whose bound, with
   * every other term at its upper bound, is ≤ θ is skipped whole); then each touched row, in ascending order, whose
   * essential sum plus the non-essential upper bounds can still beat θ gets its non-essential terms looked up (largest
   * bound first, stopping once the partial score plus the remaining bounds is ≤ θ) and, if it survives, its exact
   * score summed in query order. θ tightens after every push; the essential set is recomputed between windows.
   */
  private scoreSegment(seg: Segment, cur: Cursors, m: number, top: TopK): number {
    const { pos, end, tStart, bBase, w, pre, qord } = cur;
    const { docs, tfs, bmax, firstRow, lenCode, normOfCode } = seg;
    const LOG = this.log2Block;
    const W = this.window;
    const scratch = this.scratchFor(m);
    const { rec, touched, neC } = scratch;
    const R = scratch.stride;
    let thr = top.threshold;
    let ne = 0; // cursors [0, ne) are non-essential
    let scored = 0;
    for (;;) {
      while (ne < m && pre[ne] * SLACK <= thr) ne++;
      if (ne === m) break;
      // The window starts at the smallest current row of the essential cursors.
      let base = NO_DOC;
      for (let c = ne; c < m; c++) if (pos[c] < end[c] && docs[pos[c]] < base) base = docs[pos[c]];
      if (base === NO_DOC) break;
      const limit = base + W;
      const stamp = ++scratch.stamp;
      const nonEss = ne > 0 ? pre[ne - 1] : 0;
      let nt = 0;
      // 1. Essential terms, term at a time within the window: record = [stamp, sum, contribution per cursor].
      for (let c = ne; c < m; c++) {
        let p = pos[c];
        const e = end[c];
        const ts = tStart[c];
        const wc = w[c];
        const others = pre[m - 1] - (pre[c] - (c > 0 ? pre[c - 1] : 0));
        while (p < e && docs[p] < limit) {
          const bi = (p - ts) >> LOG;
          const be = Math.min(e, ts + ((bi + 1) << LOG));
          if ((wc * bmax[bBase[c] + bi] + others) * SLACK <= thr) {
            p = be; // no row of this block can enter the top-k
            continue;
          }
          for (; p < be; p++) {
            const d = docs[p];
            if (d >= limit) break;
            const o = (d - base) * R;
            const tf = tfs[p];
            const v = (wc * tf) / (tf + normOfCode[lenCode[d]]);
            if (rec[o] !== stamp) {
              rec[o] = stamp;
              touched[nt++] = d - base;
              rec[o + 1] = v;
              for (let j = ne; j < m; j++) rec[o + 2 + j] = 0;
            } else rec[o + 1] += v;
            rec[o + 2 + c] = v;
          }
        }
        pos[c] = p;
      }
      // 2. Rows that can still enter, in ascending order.
      let ns = 0;
      for (let i = 0; i < nt; i++) {
        const l = touched[i];
        if ((rec[l * R + 1] + nonEss) * SLACK > thr) touched[ns++] = l;
      }
      // Ascending order (one essential term: already ascending). Insertion sort for the usual few dozen rows.
      if (m - ne > 1) {
        if (ns <= 64)
          for (let i = 1; i < ns; i++) {
            const x = touched[i];
            let j = i - 1;
            while (j >= 0 && touched[j] > x) {
              touched[j + 1] = touched[j];
              j--;
            }
            touched[j + 1] = x;
          }
        else touched.subarray(0, ns).sort();
      }
      const surv = touched;
      // 3. Non-essential terms, largest bound first, while the row can still enter; then its exact score.
      for (let i = 0; i < ns; i++) {
        const l = surv[i];
        const o = l * R;
        const d = base + l;
        let partial = rec[o + 1];
        let pruned = false;
        for (let c = ne - 1; c >= 0; c--) {
          if ((partial + pre[c]) * SLACK <= thr) {
            pruned = true;
            break;
          }
          let p = pos[c];
          const e = end[c];
          if (p < e && docs[p] < d) {
            const ts = tStart[c];
            let bi = (p - ts) >> LOG;
            let be = Math.min(e, ts + ((bi + 1) << LOG));
            while (be < e && docs[be - 1] < d) {
              bi++;
              p = be;
              be = Math.min(e, be + (1 << LOG));
            }
            if (docs[be - 1] < d) p = e;
            else {
              const rest = c > 0 ? pre[c - 1] : 0;
              if ((partial + w[c] * bmax[bBase[c] + bi] + rest) * SLACK <= thr) {
                pos[c] = p;
                pruned = true;
                break;
              }
              let hi = be - 1; // docs[hi] ≥ d
              while (p < hi) {
                const mid = (p + hi) >>> 1;
                if (docs[mid] < d) p = mid + 1;
                else hi = mid;
              }
            }
            pos[c] = p;
          }
          if (p < e && docs[p] === d) {
            const tf = tfs[p];
            const v = (w[c] * tf) / (tf + normOfCode[lenCode[d]]);
            neC[c] = v;
            partial += v;
          } else neC[c] = 0;
        }
        if (pruned) continue;
        // The exact score, summed in query order (as the term-at-a-time scorer accumulates it).
        let score = 0;
        for (let j = 0; j < m; j++) {
          const c = qord[j];
          score += c >= ne ? rec[o + 2 + c] : neC[c];
        }
        scored++;
        if (score > thr) {
          top.push(firstRow + d, score);
          thr = top.threshold;
        }
      }
    }
    return scored;
  }

  private scratch: Scratch | null = null;

  /** Window buffers shared by the (synchronous) queries, grown to the number of query terms. */
  private scratchFor(m: number): Scratch {
    if (!this.scratch || this.scratch.stride < m + 2) {
      const stride = Math.max(m, 6) + 2;
      const W = this.window;
      this.scratch = {
        stride,
        stamp: 0,
        rec: new Float64Array(W * stride),
        touched: new Int32Array(W),
        neC: new Float64Array(stride),
      };
    }
    if (this.scratch.stamp >= Number.MAX_SAFE_INTEGER - 1) {
      this.scratch.rec.fill(0);
      this.scratch.stamp = 0;
    }
    return this.scratch;
  }

  /**
   * Exhaustive term-at-a-time BM25 over the opened postings: every posting of the query terms scored and accumulated
   * per row in query-term order, exactly as {@link Bm25MemoryIndex.search} does (same expressions, same summation
   * order, same top-k), without a second copy of the index: the reference the pruned {@link search} is checked against
   * at sizes where {@link toMemoryIndex} does not fit. Holds 9 bytes per row once called.
   */
  exhaustiveSearch(queryTerms: readonly string[], k: number): ScoredRow[] {
    if (k <= 0 || queryTerms.length === 0 || this.size === 0) return [];
    const mult = new Map<string, number>();
    for (const t of queryTerms) mult.set(t, (mult.get(t) ?? 0) + 1);
    // One accumulator per row, kept between calls (zeroed again through the touched rows).
    this.exAcc ??= new Float64Array(this.size);
    this.exSeen ??= new Uint8Array(this.size);
    const acc = this.exAcc;
    const seen = this.exSeen;
    const touched: number[] = [];
    for (const [term, times] of mult) {
      const key = Buffer.from(term, "utf8");
      const tids = this.segments.map((seg) => seg.lookup(key));
      let df = 0;
      this.segments.forEach((seg, s) => {
        if (tids[s] >= 0) df += seg.start[tids[s] + 1] - seg.start[tids[s]];
      });
      if (df === 0) continue;
      const w = times * this.idf(df) * (BM25_K1 + 1);
      this.segments.forEach((seg, s) => {
        const t = tids[s];
        if (t < 0) return;
        const { docs, tfs, lenCode, normOfCode, firstRow } = seg;
        for (let i = seg.start[t]; i < seg.start[t + 1]; i++) {
          const d = firstRow + docs[i];
          const tf = tfs[i];
          if (!seen[d]) {
            seen[d] = 1;
            touched.push(d);
          }
          acc[d] += (w * tf) / (tf + normOfCode[lenCode[docs[i]]]);
        }
      });
    }
    const top = new TopK(k);
    for (const d of touched) {
      if (acc[d] >= top.threshold) top.push(d, acc[d]);
      acc[d] = 0;
      seen[d] = 0;
    }
    return top.result();
  }

  private exAcc: Float64Array | null = null;
  private exSeen: Uint8Array | null = null;

  /**
   * The same postings as a term-at-a-time {@link Bm25MemoryIndex} (the exact reference scorer; every match scored).
   * Allocates the whole index again: for tests and benchmarks.
   */
  toMemoryIndex(): Bm25MemoryIndex {
    const ids = new Map<string, number>();
    const dfs: number[] = [];
    const local: Int32Array[] = [];
    for (const seg of this.segments) {
      const V = seg.meta.terms;
      const map = new Int32Array(V);
      for (let t = 0; t < V; t++) {
        const s = seg.termString(t);
        let id = ids.get(s);
        if (id === undefined) {
          id = dfs.length;
          ids.set(s, id);
          dfs.push(0);
        }
        map[t] = id;
        dfs[id] += seg.start[t + 1] - seg.start[t];
      }
      local.push(map);
    }
    const G = dfs.length;
    const start = new Int32Array(G + 1);
    for (let g = 0; g < G; g++) start[g + 1] = start[g] + dfs[g];
    const fill = start.slice(0, G);
    const postDoc = new Int32Array(start[G]);
    const postTf = new Uint16Array(start[G]);
    const docLen = new Int32Array(this.size);
    this.segments.forEach((seg, si) => {
      docLen.set(seg.lens, seg.firstRow);
      const map = local[si];
      for (let t = 0; t < seg.meta.terms; t++) {
        const g = map[t];
        for (let i = seg.start[t]; i < seg.start[t + 1]; i++) {
          postDoc[fill[g]] = seg.firstRow + seg.docs[i];
          postTf[fill[g]++] = seg.tfs[i];
        }
      }
    });
    return new Bm25MemoryIndex(ids, start, postDoc, postTf, docLen);
  }
}
