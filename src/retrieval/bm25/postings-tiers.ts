/**
 * The high-impact tier of a segment's long postings lists, derived when the segment is opened (nothing on disk).
 *
 * For a term with at least {@link TIER_MIN_DF} postings, the tier holds the postings whose term frequency is at least
 * a cut T ≥ 2 — the smallest T for which at most 1/{@link TIER_FRACTION} of the term's postings qualify — copied into
 * their own row-ascending list (rows, tfs and per-block bounds, like the full list). The full list stays as it is. Per
 * tiered term two bounds are kept, `hiMax` (max of tf / (tf + norm) over the tier) and `loMax` (the same over the
 * postings outside it): a row that is not in the tier gets at most w · loMax from the term.
 *
 * Why: on a Zipf corpus almost every long list has a few postings with a high tf (a term max of ~0.64–0.8 against
 * ~0.47 for tf = 1 at this corpus's lengths), and there are more of them the larger the corpus, so a bound over the
 * whole list gets looser as N grows. With the tier scored first, the threshold soon passes w · loMax and the rest of
 * the list is only looked up for rows that other terms make candidates (see `PostingsIndex.search`).
 */

/** Terms with fewer postings are not tiered (their lists are short anyway). */
export const TIER_MIN_DF = 256;
/** The tier holds at most df / TIER_FRACTION postings. */
export const TIER_FRACTION = 8;
const TF_CAP = 64;

export interface Tiers {
  /** Per local term: its tier index, or −1 (untiered). */
  tierOf: Int32Array;
  /** Per tier: postings [start[i], start[i + 1]) of `docs`/`tfs` (H + 1). */
  start: Int32Array;
  docs: Int32Array;
  tfs: Uint16Array;
  /** Per tier: first block in `bmax` (H + 1); blocks of `blockSize` postings as in the full lists. */
  blockBase: Int32Array;
  bmax: Float64Array;
  /** Per tier: max of tf / (tf + norm) inside the tier, and over the term's postings outside it. */
  hiMax: Float64Array;
  loMax: Float64Array;
  /** The tf cut of each tier (postings with tf ≥ cut are in it). */
  cut: Int32Array;
  /** Per tier posting: its row's length code. */
  pcode: Uint8Array | Uint16Array | Int32Array;
}

/**
 * Derive the tiers of one segment, and each term's largest tf: one pass over the tfs (a tf histogram per long term),
 * one over the long terms' postings (copying the tier's, and the smallest norm per tf outside it). `pcode` holds each
 * posting's length code (`postingCodes`); the tier gets its own.
 */
export function buildTiers(
  start: Int32Array,
  docs: Int32Array,
  tfs: Uint16Array,
  pcode: Uint8Array | Uint16Array | Int32Array,
  normOfCode: Float64Array,
  blockSize: number,
  minDf = TIER_MIN_DF,
): Tiers & { maxTf: Uint16Array } {
  const V = start.length - 1;
  const tierOf = new Int32Array(V).fill(-1);
  const maxTf = new Uint16Array(V);
  const cutOf: number[] = [];
  const terms: number[] = [];
  const sizes: number[] = [];
  const hist = new Int32Array(TF_CAP + 2);
  let total = 0;
  let blocks = 0;
  for (let t = 0; t < V; t++) {
    const s = start[t];
    const e = start[t + 1];
    const df = e - s;
    let mx = 0;
    if (df < minDf) {
      for (let i = s; i < e; i++) if (tfs[i] > mx) mx = tfs[i];
      maxTf[t] = mx;
      continue;
    }
    hist.fill(0);
    for (let i = s; i < e; i++) {
      const tf = tfs[i];
      if (tf > 1) {
        if (tf > mx) mx = tf;
        hist[tf > TF_CAP ? TF_CAP + 1 : tf]++;
      }
    }
    if (mx === 0) mx = 1;
    maxTf[t] = mx;
    // count of tf ≥ T, for T from the top down; pick the smallest T ≥ 2 with 0 < count ≤ df / TIER_FRACTION
    let atLeast = 0;
    let cut = 0;
    let size = 0;
    for (let T = TF_CAP + 1; T >= 2; T--) {
      atLeast += hist[T];
      if (atLeast * TIER_FRACTION > df) break;
      if (atLeast > 0) {
        cut = T;
        size = atLeast;
      }
    }
    if (cut === 0) continue;
    tierOf[t] = terms.length;
    terms.push(t);
    cutOf.push(cut);
    sizes.push(size);
    total += size;
    blocks += Math.ceil(size / blockSize);
  }
  const H = terms.length;
  const tStart = new Int32Array(H + 1);
  const tDocs = new Int32Array(total);
  const tTfs = new Uint16Array(total);
  const tCode = new (pcode.constructor as new (n: number) => Uint8Array | Uint16Array | Int32Array)(total);
  const blockBase = new Int32Array(H + 1);
  const bmax = new Float64Array(blocks);
  const hiMax = new Float64Array(H);
  const loMax = new Float64Array(H);
  const cut = Int32Array.from(cutOf);
  const minNorm = new Float64Array(TF_CAP + 1);
  const log2Block = Math.log2(blockSize);
  let at = 0;
  for (let h = 0; h < H; h++) {
    const t = terms[h];
    const T = cut[h];
    tStart[h] = at;
    const bb = blockBase[h];
    blockBase[h + 1] = bb + Math.ceil(sizes[h] / blockSize);
    minNorm.fill(Infinity);
    let hi = 0;
    for (let i = start[t]; i < start[t + 1]; i++) {
      const tf = tfs[i];
      const c = pcode[i];
      const n = normOfCode[c];
      if (tf >= T) {
        const u = tf / (tf + n);
        const b = bb + ((at - tStart[h]) >> log2Block);
        if (u > bmax[b]) bmax[b] = u;
        if (u > hi) hi = u;
        tDocs[at] = docs[i];
        tTfs[at] = tf;
        tCode[at++] = c;
      } else if (n < minNorm[tf]) minNorm[tf] = n;
    }
    // The largest tf / (tf + norm) outside the tier: per tf, at its smallest norm (the same expression per posting).
    let lo = 0;
    for (let tf = 1; tf < T; tf++) {
      if (minNorm[tf] === Infinity) continue;
      const u = tf / (tf + minNorm[tf]);
      if (u > lo) lo = u;
    }
    hiMax[h] = hi;
    loMax[h] = lo;
  }
  tStart[H] = at;
  return { tierOf, start: tStart, docs: tDocs, tfs: tTfs, blockBase, bmax, hiMax, loMax, cut, pcode: tCode, maxTf };
}

/** Bytes held by the derived tiers. */
export function tiersBytes(t: Tiers): number {
  return [t.tierOf, t.start, t.docs, t.tfs, t.blockBase, t.bmax, t.hiMax, t.loMax, t.cut, t.pcode].reduce(
    (s, a) => s + a.byteLength,
    0,
  );
}
