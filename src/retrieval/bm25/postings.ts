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
import { BM25_K1, Bm25MemoryIndex, TopK, type ScoredRow } from "./memory.js";
import { assertLittleEndian, type PostingsHeader, type SegmentMeta } from "./postings-format.js";
import {
  lengthCodes,
  postingCodes,
  readPostingsHeader,
  readSegmentArrays,
  type SegmentArrays,
} from "./postings-read.js";
import { buildTiers, TIER_MIN_DF, tiersBytes, type Tiers } from "./postings-tiers.js";

export {
  lengthCodes,
  lengthNorms,
  postingCodes,
  readPostingsHeader,
  readSegmentArrays,
  type LengthCodes,
  type SegmentArrays,
} from "./postings-read.js";

/** First index in [p, e) whose row is ≥ d, given docs[p] < d (galloping from p, then binary search); e if none. */
function gallop(docs: Int32Array, p: number, e: number, d: number): number {
  let lo = p; // docs[lo] < d
  let step = 1;
  let hi = p + 1;
  while (hi < e && docs[hi] < d) {
    lo = hi;
    step <<= 1;
    hi = lo + step;
  }
  if (hi > e) hi = e; // the answer lies in (lo, hi]
  let a = lo + 1;
  while (a < hi) {
    const mid = (a + hi) >>> 1;
    if (docs[mid] < d) a = mid + 1;
    else hi = mid;
  }
  return a;
}

/** Relative slack on upper bounds (rounding-safe pruning). */
const SLACK = 1 + 1e-9;
const NO_DOC = 0x7fffffff;

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
  /** The derived high-impact tiers of the long lists (`postings-tiers.ts`). */
  readonly tiers: Tiers;
  /** Per posting (parallel to `docs`): its row's length code, so that scoring reads the postings sequentially only. */
  readonly pcode: Uint8Array | Uint16Array | Int32Array;
  /** Per term: its largest tf (per-row bounds: a row of norm n gets at most w·tf/(tf + n) from a term of max tf). */
  readonly maxTf: Uint16Array;

  constructor(
    readonly meta: SegmentMeta,
    a: SegmentArrays,
    avgdl: number,
    blockSize: number,
    tierMinDf: number,
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
    this.pcode = postingCodes(this.docs, this.lenCode);
    const tiers = buildTiers(
      this.start,
      this.docs,
      this.tfs,
      this.pcode,
      this.normOfCode,
      blockSize,
      tierMinDf > 0 ? tierMinDf : Infinity,
    );
    this.tiers = tiers;
    this.maxTf = tiers.maxTf;
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

/** The query algorithm, as benchmarks label their figures: windowed MaxScore over the lists and their tiers. */
export const POSTINGS_ENGINE = "maxscore-tiers";

/** Default rows per scoring window (window buffers: 8·(terms + 2) bytes per row, reused across queries). */
export const DEFAULT_WINDOW = 1 << 12;

export interface PostingsOpenOptions {
  /** Rows per scoring window (default {@link DEFAULT_WINDOW}); results do not depend on it. */
  window?: number;
  /** Terms with at least this many postings in a segment get a high-impact tier (default {@link TIER_MIN_DF}; 0 = none); results do not depend on it. */
  tierMinDf?: number;
}

interface Scratch {
  /** Record stride in float64s: [stamp, accumulated sum, one contribution (or negated bound) per term, row norm]. */
  stride: number;
  stamp: number;
  /** Per window row l, the record at l·stride (one or two cache lines per touched row). */
  rec: Float64Array;
  /** Window rows touched in the current window. */
  touched: Int32Array;
}

/** Per-query cursor state (reused across queries): cursors (a term's full list or its tier) and term slots. */
interface Cursors {
  docs: Int32Array[];
  tfs: Uint16Array[];
  codes: Array<Uint8Array | Uint16Array | Int32Array>;
  bmax: Float64Array[];
  pos: Int32Array;
  end: Int32Array;
  tStart: Int32Array;
  bBase: Int32Array;
  /** Term slot of each cursor, whether it is a tier, its upper bound, and its rank by bound. */
  term: Int32Array;
  hi: Uint8Array;
  ub: Float64Array;
  order: Int32Array;
  rank: Int32Array;
  /** pre[i]: bound on the score of a row in none of the cursors of rank > i. */
  pre: Float64Array;
  /** Per term slot (query order): w, w·termMax, w·loMax (= w·termMax untiered), full and tier cursor (or −1). */
  tw: Float64Array;
  tUB: Float64Array;
  tLo: Float64Array;
  full: Int32Array;
  tier: Int32Array;
  /** Per window: accumulated cursor per term (or −1), look-up bound per term, look-up terms by bound. */
  accCur: Int32Array;
  neB: Float64Array;
  lk: Int32Array;
  /** Per term slot: the term's max tf in the segment, and (tier cut − 1) for tiered terms (else the max tf). */
  tMaxTf: Float64Array;
  tLoTf: Float64Array;
  /** Per window: the tf cap of a look-up term for rows not found in its accumulated lists. */
  capTf: Float64Array;
}

/** Work counters (cumulative over `search` calls): how much the pruning saves against term-at-a-time. */
export interface PostingsSearchStats {
  queries: number;
  /** Postings of the query terms (what an exhaustive scorer reads). */
  postings: number;
  /** Documents whose full score was computed. */
  scored: number;
  /** Essential postings accumulated (phase 1). */
  accumulated: number;
  /** Rows that passed the essential filter and had their non-essential terms looked up. */
  candidates: number;
  /** Scoring windows. */
  windows: number;
}

export class PostingsIndex {
  readonly stats: PostingsSearchStats = {
    queries: 0,
    postings: 0,
    scored: 0,
    accumulated: 0,
    candidates: 0,
    windows: 0,
  };
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
      (m) =>
        new Segment(
          m,
          readSegmentArrays(dir, m, header.blockSize),
          header.avgdl,
          header.blockSize,
          opts.tierMinDf ?? TIER_MIN_DF,
        ),
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
        g.maxTf,
        g.pcode,
      ])
        n += a.byteLength;
    for (const g of this.segments) n += tiersBytes(g.tiers);
    return n;
  }

  /** Terms (summed over segments) with a high-impact tier, and the postings copied into the tiers. */
  get tierStats(): { terms: number; postings: number } {
    let terms = 0;
    let postings = 0;
    for (const g of this.segments) {
      terms += g.tiers.cut.length;
      postings += g.tiers.docs.length;
    }
    return { terms, postings };
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
    const cur = this.cursorsFor(mq);
    for (let s = 0; s < S; s++) {
      const seg = this.segments[s];
      const tiers = seg.tiers;
      // Term slots (the query terms this segment has, in query order) and their cursors: the full list, plus the
      // high-impact tier for tiered terms; cursors sorted by upper bound.
      let m = 0;
      let nc = 0;
      for (let q = 0; q < mq; q++) {
        const t = tids[q * S + s];
        if (t < 0 || w[q] === 0) continue;
        const wq = w[q];
        const h = tiers.tierOf[t];
        cur.tw[m] = wq;
        cur.tUB[m] = wq * seg.termMax[t];
        cur.tLo[m] = h >= 0 ? wq * tiers.loMax[h] : cur.tUB[m];
        cur.tMaxTf[m] = seg.maxTf[t];
        cur.tLoTf[m] = h >= 0 ? tiers.cut[h] - 1 : seg.maxTf[t];
        // full list
        cur.docs[nc] = seg.docs;
        cur.tfs[nc] = seg.tfs;
        cur.codes[nc] = seg.pcode;
        cur.bmax[nc] = seg.bmax;
        cur.pos[nc] = cur.tStart[nc] = seg.start[t];
        cur.end[nc] = seg.start[t + 1];
        cur.bBase[nc] = seg.blockBase[t];
        cur.term[nc] = m;
        cur.hi[nc] = 0;
        cur.ub[nc] = cur.tLo[m];
        cur.full[m] = nc++;
        cur.tier[m] = -1;
        if (h >= 0) {
          cur.docs[nc] = tiers.docs;
          cur.tfs[nc] = tiers.tfs;
          cur.codes[nc] = tiers.pcode;
          cur.bmax[nc] = tiers.bmax;
          cur.pos[nc] = cur.tStart[nc] = tiers.start[h];
          cur.end[nc] = tiers.start[h + 1];
          cur.bBase[nc] = tiers.blockBase[h];
          cur.term[nc] = m;
          cur.hi[nc] = 1;
          cur.ub[nc] = wq * tiers.hiMax[h];
          cur.tier[m] = nc++;
        }
        m++;
      }
      if (m === 0) continue;
      // Insertion sort of the cursors by bound, ascending (stable: a term's full list stays before its tier on ties).
      const order = cur.order;
      for (let i = 0; i < nc; i++) order[i] = i;
      for (let i = 1; i < nc; i++) {
        const x = order[i];
        let j = i - 1;
        while (j >= 0 && cur.ub[order[j]] > cur.ub[x]) {
          order[j + 1] = order[j];
          j--;
        }
        order[j + 1] = x;
      }
      for (let i = 0; i < nc; i++) cur.rank[order[i]] = i;
      // pre[i]: bound on the score of a row found in none of the cursors order[i+1..]: per term, 0 when its full list
      // is among those, w·loMax when only its tier is, its whole bound otherwise.
      for (let i = 0; i < nc; i++) {
        let b = 0;
        for (let j = 0; j < m; j++) b += this.termBound(cur, j, i + 1);
        cur.pre[i] = b;
      }
      this.stats.scored += this.scoreSegment(seg, cur, m, nc, top);
    }
    return top.result();
  }

  /** What term slot j can still add to a row found in none of its cursors of rank ≥ ne (see `search`). */
  private termBound(cur: Cursors, j: number, ne: number): number {
    if (cur.rank[cur.full[j]] >= ne) return 0;
    const h = cur.tier[j];
    if (h >= 0 && cur.rank[h] >= ne) return cur.tLo[j];
    return cur.tUB[j];
  }

  private cursors: Cursors | null = null;

  private cursorsFor(mq: number): Cursors {
    if (this.cursors && this.cursors.tw.length >= mq) return this.cursors;
    const n = 2 * mq;
    this.cursors = {
      docs: new Array<Int32Array>(n),
      tfs: new Array<Uint16Array>(n),
      codes: new Array<Uint8Array | Uint16Array | Int32Array>(n),
      bmax: new Array<Float64Array>(n),
      pos: new Int32Array(n),
      end: new Int32Array(n),
      tStart: new Int32Array(n),
      bBase: new Int32Array(n),
      term: new Int32Array(n),
      hi: new Uint8Array(n),
      ub: new Float64Array(n),
      order: new Int32Array(n),
      rank: new Int32Array(n),
      pre: new Float64Array(n),
      tw: new Float64Array(mq),
      tUB: new Float64Array(mq),
      tLo: new Float64Array(mq),
      full: new Int32Array(mq),
      tier: new Int32Array(mq),
      accCur: new Int32Array(mq),
      neB: new Float64Array(mq),
      lk: new Int32Array(mq),
      tMaxTf: new Float64Array(mq),
      tLoTf: new Float64Array(mq),
      capTf: new Float64Array(mq),
    };
    return this.cursors;
  }

  /**
   * Windowed MaxScore over one segment; pushes into the shared top-k in ascending row order. Returns rows scored.
   *
   * With θ the k-th best score so far, the cursors of lowest bound whose `pre` is ≤ θ are non-essential. Per term:
   * when its full list is essential, the full list is accumulated; when only its tier is, the tier is accumulated
   * and a row not in it can get at most w·loMax from the rest of the list; otherwise the term is only looked up.
   * Rows are taken in windows (`window` rows) starting at the smallest current row of the accumulated lists: the
   * accumulated postings of the window go term by term into per-row records (a block whose bound, with every other
   * term at its bound, is ≤ θ is skipped whole); each touched row, in ascending order, whose sum plus the look-up
   * terms' bounds can still beat θ gets its look-up terms searched in their full lists (galloping from the cursor,
   * largest bound first, stopping once the partial score plus the remaining bounds is ≤ θ); survivors get their exact
   * score summed in query order. θ tightens after every push; the essential set is recomputed between windows.
   */
  private scoreSegment(seg: Segment, cur: Cursors, m: number, nc: number, top: TopK): number {
    const { pos, end, tStart, bBase, pre, rank, full, tier, accCur, neB, lk, tw, tUB, capTf } = cur;
    const { firstRow, normOfCode } = seg;
    const LOG = this.log2Block;
    const W = this.window;
    const scratch = this.scratchFor(m);
    const { rec, touched } = scratch;
    const R = scratch.stride;
    let thr = top.threshold;
    let ne = 0; // cursors of rank < ne are non-essential
    let scored = 0;
    let next = 0; // every row below has been dealt with
    let lastNe = -1;
    let nonEss = 0;
    let nlk = 0;
    let nacc = 0;
    for (;;) {
      while (ne < nc && pre[ne] * SLACK <= thr) ne++;
      if (ne === nc) break;
      if (ne !== lastNe) {
        lastNe = ne;
        // Per term: the list to accumulate (or −1) and its bound for rows found in none of its essential cursors.
        nonEss = 0;
        nlk = 0;
        nacc = 0;
        for (let j = 0; j < m; j++) {
          const f = full[j];
          const h = tier[j];
          if (rank[f] >= ne) accCur[j] = f;
          else if (h >= 0 && rank[h] >= ne) accCur[j] = h;
          else accCur[j] = -1;
          if (accCur[j] >= 0) nacc++;
          neB[j] = this.termBound(cur, j, ne);
          capTf[j] = accCur[j] === h && h >= 0 ? cur.tLoTf[j] : cur.tMaxTf[j];
          nonEss += neB[j];
          if (neB[j] > 0) lk[nlk++] = j;
        }
        // look-up terms, largest bound first
        for (let i = 1; i < nlk; i++) {
          const x = lk[i];
          let j = i - 1;
          while (j >= 0 && neB[lk[j]] < neB[x]) {
            lk[j + 1] = lk[j];
            j--;
          }
          lk[j + 1] = x;
        }
      }
      // The window starts at the smallest current row (≥ next) of the accumulated lists.
      let base = NO_DOC;
      for (let j = 0; j < m; j++) {
        const c = accCur[j];
        if (c < 0) continue;
        const docs = cur.docs[c];
        let p = pos[c];
        const e = end[c];
        if (p < e && docs[p] < next) {
          p = gallop(docs, p, e, next);
          pos[c] = p;
        }
        if (p < e && docs[p] < base) base = docs[p];
      }
      if (base === NO_DOC) break;
      const limit = base + W;
      next = limit;
      const stamp = ++scratch.stamp;
      let nt = 0;
      // 1. Accumulated lists, term at a time within the window: record = [stamp, sum, contribution per term slot].
      for (let j = 0; j < m; j++) {
        const c = accCur[j];
        if (c < 0) continue;
        const docs = cur.docs[c];
        const tfs = cur.tfs[c];
        const codes = cur.codes[c];
        const bmax = cur.bmax[c];
        let p = pos[c];
        const e = end[c];
        const ts = tStart[c];
        const bb = bBase[c];
        const wc = tw[j];
        let others = 0;
        for (let i = 0; i < m; i++) if (i !== j) others += accCur[i] >= 0 ? tUB[i] : neB[i];
        while (p < e && docs[p] < limit) {
          const bi = (p - ts) >> LOG;
          const be = Math.min(e, ts + ((bi + 1) << LOG));
          if ((wc * bmax[bb + bi] + others) * SLACK <= thr) {
            p = be; // no row of this block can enter the top-k
            continue;
          }
          const p0 = p;
          for (; p < be; p++) {
            const d = docs[p];
            if (d >= limit) break;
            const o = (d - base) * R;
            const tf = tfs[p];
            const nd = normOfCode[codes[p]];
            const v = (wc * tf) / (tf + nd);
            if (rec[o] !== stamp) {
              rec[o] = stamp;
              touched[nt++] = d - base;
              rec[o + 1] = v;
              for (let i = 0; i < m; i++) rec[o + 2 + i] = 0;
              rec[o + 2 + m] = nd;
            } else rec[o + 1] += v;
            rec[o + 2 + j] = v;
          }
          this.stats.accumulated += p - p0;
        }
        pos[c] = p;
      }
      // 2. Rows that can still enter, in ascending order. Per row and look-up term not yet found, its bound is stored
      // negated in the term's slot: the term's bound, tightened by the row's length (a term whose rows outside the
      // accumulated lists have tf ≤ cap gives a row of norm n at most w·cap/(cap + n)).
      let ns = 0;
      for (let i = 0; i < nt; i++) {
        const l = touched[i];
        const o = l * R;
        let rb = rec[o + 1];
        if ((rb + nonEss) * SLACK <= thr) continue;
        if (nlk > 0) {
          const nd = rec[o + 2 + m];
          for (let x = 0; x < nlk; x++) {
            const j = lk[x];
            if (rec[o + 2 + j] !== 0) continue;
            const cap = capTf[j];
            const rowB = (tw[j] * cap) / (cap + nd);
            const b = rowB < neB[j] ? rowB : neB[j];
            rec[o + 2 + j] = -b;
            rb += b;
          }
          if (rb * SLACK <= thr) continue;
        }
        touched[ns++] = l;
      }
      if (nacc > 1) {
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
      this.stats.candidates += ns;
      this.stats.windows++;
      // 3. Look-up terms, largest bound first, while the row can still enter; then its exact score.
      for (let i = 0; i < ns; i++) {
        const l = touched[i];
        const o = l * R;
        const d = base + l;
        let partial = rec[o + 1];
        let rest = 0;
        for (let x = 0; x < nlk; x++) {
          const v = rec[o + 2 + lk[x]];
          if (v < 0) rest -= v;
        }
        let pruned = false;
        for (let x = 0; x < nlk; x++) {
          const j = lk[x];
          const b = rec[o + 2 + j];
          if (b >= 0) continue; // found in the term's tier
          if ((partial + rest) * SLACK <= thr) {
            pruned = true;
            break;
          }
          rest += b;
          rec[o + 2 + j] = 0;
          const c = full[j];
          const docs = cur.docs[c];
          let p = pos[c];
          const e = end[c];
          if (p < e && docs[p] < d) {
            p = gallop(docs, p, e, d);
            pos[c] = p;
          }
          if (p < e && docs[p] === d) {
            const tf = cur.tfs[c][p];
            const v = (tw[j] * tf) / (tf + rec[o + 2 + m]);
            rec[o + 2 + j] = v;
            partial += v;
          }
        }
        if (pruned || partial * SLACK <= thr) continue;
        // The exact score, summed in query order (as the term-at-a-time scorer accumulates it; absent terms are 0).
        let score = 0;
        for (let j = 0; j < m; j++) score += rec[o + 2 + j];
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
    if (!this.scratch || this.scratch.stride < m + 3) {
      const stride = Math.max(m + 3, 8);
      const W = this.window;
      this.scratch = {
        stride,
        stamp: 0,
        rec: new Float64Array(W * stride),
        touched: new Int32Array(W),
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
