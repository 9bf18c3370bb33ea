/**
 * An exact, in-memory BM25 scorer over analyzed tokens (term-at-a-time accumulation, every matching document scored).
 *
 * Scoring is the one LanceDB's FTS uses, so both engines agree on scores:
 *   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   score(d) = Σ_t idf(t) · tf·(k1 + 1) / (tf + k1·(1 - b + b·|d| / avgdl)),  k1 = 1.2, b = 0.75
 * with OR semantics (a document matching any query term is a candidate). Ties are broken by lower row number.
 *
 * It is the fast engine for small corpora (a quickstart world of 1–100 k passages answers a query in microseconds) and
 * the exact reference the benchmark compares LanceDB against.
 */

export const BM25_K1 = 1.2;
export const BM25_B = 0.75;

export interface ScoredRow {
  row: number;
  score: number;
}

/** Keep the best k (score desc, row asc) of a stream of candidates: a bounded min-heap. */
export class TopK {
  private rows: Int32Array;
  private scores: Float64Array;
  private n = 0;
  constructor(readonly k: number) {
    this.rows = new Int32Array(Math.max(1, k));
    this.scores = new Float64Array(Math.max(1, k));
  }
  /** true when (s1, r1) ranks below (s2, r2). */
  private worse(s1: number, r1: number, s2: number, r2: number): boolean {
    return s1 < s2 || (s1 === s2 && r1 > r2);
  }
  get size(): number {
    return this.n;
  }
  /** Lowest kept score (−∞ while not full). */
  get threshold(): number {
    return this.n < this.k ? -Infinity : this.scores[0];
  }
  push(row: number, score: number): void {
    if (this.k <= 0) return;
    if (this.n < this.k) {
      let i = this.n++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.worse(score, row, this.scores[p], this.rows[p])) break;
        this.scores[i] = this.scores[p];
        this.rows[i] = this.rows[p];
        i = p;
      }
      this.scores[i] = score;
      this.rows[i] = row;
      return;
    }
    if (!this.worse(this.scores[0], this.rows[0], score, row)) return;
    let i = 0;
    const n = this.n;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.worse(this.scores[r], this.rows[r], this.scores[l], this.rows[l])) c = r;
      if (!this.worse(this.scores[c], this.rows[c], score, row)) break;
      this.scores[i] = this.scores[c];
      this.rows[i] = this.rows[c];
      i = c;
    }
    this.scores[i] = score;
    this.rows[i] = row;
  }
  /** Results, best first. */
  result(): ScoredRow[] {
    const out: ScoredRow[] = [];
    for (let i = 0; i < this.n; i++) out.push({ row: this.rows[i], score: this.scores[i] });
    out.sort((a, b) => b.score - a.score || a.row - b.row);
    return out;
  }
}

/** A growable Int32 array (doubling). */
export class GrowInt32 {
  a: Int32Array;
  n = 0;
  constructor(capacity = 1 << 16) {
    this.a = new Int32Array(Math.max(1, capacity));
  }
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
}

/** Incremental builder: add documents' terms in row order, then `finish()`. */
export class Bm25MemoryBuilder {
  private terms = new Map<string, number>();
  private pairTerm = new GrowInt32();
  private pairTf = new GrowInt32();
  private docStart = new GrowInt32();
  private docLen = new GrowInt32();

  constructor() {
    this.docStart.push(0);
  }

  get size(): number {
    return this.docLen.n;
  }

  /** Add the next document (row = number of documents added before it). */
  add(terms: readonly string[]): void {
    const ids: number[] = new Array(terms.length);
    for (let i = 0; i < terms.length; i++) {
      let id = this.terms.get(terms[i]);
      if (id === undefined) {
        id = this.terms.size;
        this.terms.set(terms[i], id);
      }
      ids[i] = id;
    }
    ids.sort((a, b) => a - b);
    for (let i = 0; i < ids.length;) {
      let j = i + 1;
      while (j < ids.length && ids[j] === ids[i]) j++;
      this.pairTerm.push(ids[i]);
      this.pairTf.push(j - i);
      i = j;
    }
    this.docStart.push(this.pairTerm.n);
    this.docLen.push(terms.length);
  }

  finish(): Bm25MemoryIndex {
    const V = this.terms.size;
    const N = this.docLen.n;
    const P = this.pairTerm.n;
    const df = new Int32Array(V);
    for (let i = 0; i < P; i++) df[this.pairTerm.a[i]]++;
    const start = new Int32Array(V + 1);
    for (let t = 0; t < V; t++) start[t + 1] = start[t] + df[t];
    const fill = start.slice(0, V);
    const postDoc = new Int32Array(P);
    const postTf = new Uint16Array(P);
    for (let d = 0; d < N; d++) {
      for (let i = this.docStart.a[d]; i < this.docStart.a[d + 1]; i++) {
        const t = this.pairTerm.a[i];
        const at = fill[t]++;
        postDoc[at] = d;
        postTf[at] = Math.min(65535, this.pairTf.a[i]);
      }
    }
    const docLen = this.docLen.a.slice(0, N);
    return new Bm25MemoryIndex(this.terms, start, postDoc, postTf, docLen);
  }
}

export class Bm25MemoryIndex {
  readonly size: number;
  readonly avgdl: number;
  private readonly norm: Float64Array;
  private readonly acc: Float64Array;
  private readonly seen: Uint8Array;
  private readonly touched: Int32Array;

  constructor(
    private readonly termIds: Map<string, number>,
    private readonly start: Int32Array,
    private readonly postDoc: Int32Array,
    private readonly postTf: Uint16Array,
    private readonly docLen: Int32Array,
  ) {
    this.size = docLen.length;
    let total = 0;
    for (let i = 0; i < docLen.length; i++) total += docLen[i];
    this.avgdl = this.size > 0 ? total / this.size : 0;
    this.norm = new Float64Array(this.size);
    for (let d = 0; d < this.size; d++)
      this.norm[d] = BM25_K1 * (1 - BM25_B + (BM25_B * docLen[d]) / (this.avgdl || 1));
    this.acc = new Float64Array(this.size);
    this.seen = new Uint8Array(this.size);
    this.touched = new Int32Array(this.size);
  }

  get vocabularySize(): number {
    return this.termIds.size;
  }

  /** Document frequency of a term (0 when unknown). */
  df(term: string): number {
    const t = this.termIds.get(term);
    return t === undefined ? 0 : this.start[t + 1] - this.start[t];
  }

  idf(df: number): number {
    return Math.log(1 + (this.size - df + 0.5) / (df + 0.5));
  }

  /**
   * Top-k rows for analyzed query terms (OR semantics). A term repeated in the query counts once per occurrence, as in
   * LanceDB (and Lucene's boolean queries).
   */
  search(queryTerms: readonly string[], k: number): ScoredRow[] {
    const mult = new Map<string, number>();
    for (const t of queryTerms) mult.set(t, (mult.get(t) ?? 0) + 1);
    let nTouched = 0;
    const { acc, seen, touched, norm, postDoc, postTf } = this;
    for (const [term, times] of mult) {
      const t = this.termIds.get(term);
      if (t === undefined) continue;
      const s = this.start[t];
      const e = this.start[t + 1];
      const idf = this.idf(e - s);
      const w = times * idf * (BM25_K1 + 1);
      for (let i = s; i < e; i++) {
        const d = postDoc[i];
        const tf = postTf[i];
        if (!seen[d]) {
          seen[d] = 1;
          touched[nTouched++] = d;
        }
        acc[d] += (w * tf) / (tf + norm[d]);
      }
    }
    const top = new TopK(k);
    for (let i = 0; i < nTouched; i++) {
      const d = touched[i];
      const sc = acc[d];
      if (sc >= top.threshold) top.push(d, sc);
      acc[d] = 0;
      seen[d] = 0;
    }
    return top.result();
  }
}
