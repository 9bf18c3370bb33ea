/**
 * Token sampling from logits: temperature (0 = greedy), top-k, then top-p over the top-k-renormalised distribution
 * (the order vLLM applies them), with the log-prob of the chosen token under the unmodified distribution.
 *
 * Top-k/top-p need the largest probabilities in order; instead of sorting the vocabulary (a typed-array sort of 2k
 * floats costs ~90 µs here), probabilities are bucketed by their float bits (exponent + 4 mantissa bits: buckets 4 %
 * wide, ordered), the boundary bucket is found by walking buckets from the top, and only that bucket is sorted.
 */
import type { Rng } from "../util/rng.js";

export interface SampleOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling mass; 1 = off. */
  topP: number;
  /** Keep the k most likely tokens; 0/undefined = off. */
  topK?: number;
  /** Maximum new tokens. */
  maxTokens: number;
  /** Stop strings, matched on the decoded new text. */
  stop: readonly string[];
  seed?: number;
  /** Return per-token log-probs (default true). */
  logprobs?: boolean;
}

const NB = 2048;
const bucketMass = new Float64Array(NB);
const bucketCount = new Int32Array(NB);

/** Bucket of a probability in (0, 1] from its float bits (monotonic). */
function bucketOf(bits: number): number {
  const b = bits >>> 19;
  return b < NB ? b : NB - 1;
}

/**
 * Smallest value τ such that the tokens with p >= τ are the top-`k` (by count) or reach `mass` (by cumulative
 * probability, largest first). p must be non-negative; zeros never count.
 */
function threshold(p: Float32Array, bits: Uint32Array, V: number, k: number, mass: number): number {
  bucketMass.fill(0);
  bucketCount.fill(0);
  for (let i = 0; i < V; i++) {
    if (p[i] <= 0) continue;
    const b = bucketOf(bits[i]);
    bucketMass[b] += p[i];
    bucketCount[b]++;
  }
  let cum = 0;
  let cnt = 0;
  let b = NB - 1;
  for (; b >= 0; b--) {
    if (bucketCount[b] === 0) continue;
    if ((k > 0 && cnt + bucketCount[b] >= k) || (k === 0 && cum + bucketMass[b] >= mass)) break;
    cum += bucketMass[b];
    cnt += bucketCount[b];
  }
  if (b < 0) return 0; // everything is in
  const members: number[] = [];
  for (let i = 0; i < V; i++) if (p[i] > 0 && bucketOf(bits[i]) === b) members.push(p[i]);
  members.sort((x, y) => y - x);
  for (const v of members) {
    cum += v;
    cnt++;
    if ((k > 0 && cnt >= k) || (k === 0 && cum >= mass)) return v;
  }
  return members[members.length - 1];
}

/** The raw softmax of the logits, computed elsewhere (the model's SIMD pass): normalised probs, max, sum of exp. */
export interface PrecomputedSoftmax {
  probs: Float32Array;
  max: number;
  sum: number;
}

/** Index of the largest logit (the first on ties). */
function argmax(logits: Float32Array): number {
  let max = -Infinity;
  let arg = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > max) {
      max = logits[i];
      arg = i;
    }
  }
  return arg;
}

/**
 * Sample one token from logits; returns the token and its log-prob under the raw softmax (before temperature,
 * top-k and top-p). `scratch` (length >= V) avoids an allocation per call. `softmax`, when given, is the raw softmax
 * of these logits (it is used, and overwritten, at temperature 1 instead of recomputing it).
 */
export function sampleToken(
  logits: Float32Array,
  p: Pick<SampleOptions, "temperature" | "topP" | "topK">,
  rng: Rng,
  scratch?: Float32Array,
  softmax?: PrecomputedSoftmax,
): { token: number; logprob: number } {
  const V = logits.length;
  const t = p.temperature;
  if (softmax && t === 1 && softmax.probs.length === V) {
    return truncateAndDraw(logits, softmax.probs, 1, softmax.max + Math.log(softmax.sum), p, rng, -1);
  }
  let max = -Infinity;
  let arg = 0;
  for (let i = 0; i < V; i++) {
    if (logits[i] > max) {
      max = logits[i];
      arg = i;
    }
  }
  const probs = scratch && scratch.length >= V ? scratch.subarray(0, V) : new Float32Array(V);
  if (!(t > 0)) {
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[i] - max);
    return { token: arg, logprob: logits[arg] - max - Math.log(sum) };
  }
  // Unnormalised probabilities at temperature t, and the raw log-normaliser.
  let z = 0;
  let rawSum = 0;
  if (t === 1) {
    for (let i = 0; i < V; i++) {
      const e = Math.exp(logits[i] - max);
      probs[i] = e;
      z += e;
    }
    rawSum = z;
  } else {
    const inv = 1 / t;
    for (let i = 0; i < V; i++) {
      const d = logits[i] - max;
      rawSum += Math.exp(d);
      const e = Math.exp(d * inv);
      probs[i] = e;
      z += e;
    }
  }
  return truncateAndDraw(logits, probs, z, max + Math.log(rawSum), p, rng, arg);
}

/**
 * Top-k, then top-p, over (unnormalised) probabilities `probs` with total `z` (zeroes what is cut), then one draw;
 * `lse` is the raw log-normaliser of the logits, `arg` their argmax (-1: not known yet).
 */
function truncateAndDraw(
  logits: Float32Array,
  probs: Float32Array,
  z: number,
  lse: number,
  p: Pick<SampleOptions, "topP" | "topK">,
  rng: Rng,
  arg: number,
): { token: number; logprob: number } {
  const V = logits.length;
  const topK = p.topK && p.topK > 0 && p.topK < V ? Math.floor(p.topK) : 0;
  const topP = p.topP > 0 && p.topP < 1 ? p.topP : 1;
  let total = z;
  if (topK || topP < 1) {
    const bits = new Uint32Array(probs.buffer, probs.byteOffset, V);
    let kept = z;
    if (topK) {
      const tk = threshold(probs, bits, V, topK, 0);
      kept = 0;
      for (let i = 0; i < V; i++) {
        if (probs[i] < tk) probs[i] = 0;
        else kept += probs[i];
      }
    }
    if (topP < 1) {
      const tp = threshold(probs, bits, V, 0, topP * kept);
      kept = 0;
      for (let i = 0; i < V; i++) {
        if (probs[i] < tp) probs[i] = 0;
        else kept += probs[i];
      }
    }
    total = kept;
  }
  const u = rng.next() * total;
  let cum = 0;
  let tok = -1;
  for (let i = 0; i < V; i++) {
    const q = probs[i];
    if (q === 0) continue;
    cum += q;
    tok = i;
    if (u < cum) break;
  }
  if (tok < 0) tok = arg >= 0 ? arg : argmax(logits);
  return { token: tok, logprob: logits[tok] - lse };
}
