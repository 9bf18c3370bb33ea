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
import type { LengthCodes } from "./postings.js";

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

/** Derive the tiers of one segment (two passes over the tfs of the long terms, one over the tier postings). */
export function buildTiers(
  start: Int32Array,
  docs: Int32Array,
  tfs: Uint16Array,
  lc: LengthCodes,
  blockSize: number,
  minDf = TIER_MIN_DF,
): Tiers {
  const V = start.length - 1;
  const tierOf = new Int32Array(V).fill(-1);
  const cutOf: number[] = [];
  const terms: number[] = [];
  const hist = new Int32Array(TF_CAP + 2);
  let total = 0;
  for (let t = 0; t < V; t++) {
    const s = start[t];
    const e = start[t + 1];
    const df = e - s;
    if (df < minDf) continue;
    hist.fill(0);
    for (let i = s; i < e; i++) hist[Math.min(tfs[i], TF_CAP + 1)]++;
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
    total += size;
  }
  const H = terms.length;
  const tStart = new Int32Array(H + 1);
  const tDocs = new Int32Array(total);
  const tTfs = new Uint16Array(total);
  const blockBase = new Int32Array(H + 1);
  const hiMax = new Float64Array(H);
  const loMax = new Float64Array(H);
  const cut = Int32Array.from(cutOf);
  const { code, normOfCode } = lc;
  let at = 0;
  for (let h = 0; h < H; h++) {
    const t = terms[h];
    const T = cut[h];
    tStart[h] = at;
    let hi = 0;
    let lo = 0;
    for (let i = start[t]; i < start[t + 1]; i++) {
      const tf = tfs[i];
      const d = docs[i];
      const u = tf / (tf + normOfCode[code[d]]);
      if (tf >= T) {
        tDocs[at] = d;
        tTfs[at++] = tf;
        if (u > hi) hi = u;
      } else if (u > lo) lo = u;
    }
    hiMax[h] = hi;
    loMax[h] = lo;
    blockBase[h + 1] = blockBase[h] + Math.ceil((at - tStart[h]) / blockSize);
  }
  tStart[H] = at;
  const bmax = new Float64Array(blockBase[H]);
  for (let h = 0; h < H; h++) {
    for (let i = tStart[h]; i < tStart[h + 1]; i++) {
      const b = blockBase[h] + Math.floor((i - tStart[h]) / blockSize);
      const tf = tTfs[i];
      const u = tf / (tf + normOfCode[code[tDocs[i]]]);
      if (u > bmax[b]) bmax[b] = u;
    }
  }
  const pcode =
    code instanceof Uint8Array
      ? new Uint8Array(total)
      : code instanceof Uint16Array
        ? new Uint16Array(total)
        : new Int32Array(total);
  for (let i = 0; i < total; i++) pcode[i] = code[tDocs[i]];
  return { tierOf, start: tStart, docs: tDocs, tfs: tTfs, blockBase, bmax, hiMax, loMax, cut, pcode };
}

/** Bytes held by the derived tiers. */
export function tiersBytes(t: Tiers): number {
  return [t.tierOf, t.start, t.docs, t.tfs, t.blockBase, t.bmax, t.hiMax, t.loMax, t.cut, t.pcode].reduce(
    (s, a) => s + a.byteLength,
    0,
  );
}
