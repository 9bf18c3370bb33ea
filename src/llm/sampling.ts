/**
 * Token sampling from raw logits (temperature, top-k, top-p), returning the sampled token's log-prob under the RAW
 * distribution (log-softmax of the logits before temperature / top-k / top-p), which is what a trainer recomputes.
 */
import type { Rng } from "../util/rng.js";

export interface SampleOptions {
  /** 0 = greedy (argmax; ties go to the lowest index). */
  temperature: number;
  /** Nucleus mass; >= 1 = off. */
  topP: number;
  /** 0 / undefined = off. */
  topK?: number;
}

export interface Sampled {
  /** Index into the logits array. */
  index: number;
  /** Raw log-prob of that index. */
  logprob: number;
}

/** log(sum(exp(x))) computed stably. */
export function logSumExp(x: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  return m + Math.log(s);
}

/** Sample one index from `logits` (any length) with the given options. */
export function sampleLogits(logits: ArrayLike<number>, opts: SampleOptions, rng: Rng): Sampled {
  const n = logits.length;
  if (n === 0) throw new Error("sampleLogits: empty logits");
  const lse = logSumExp(logits);
  if (!(opts.temperature > 0)) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return { index: best, logprob: logits[best] - lse };
  }
  // Candidates sorted by logit (desc); top-k and top-p truncate the sorted list. Tokens whose tempered weight is below
  // e^-40 of the best one (total mass < vocab * 4e-18) are left out of the sort: large vocabularies stay fast.
  const t = opts.temperature;
  let maxLogit = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > maxLogit) maxLogit = logits[i];
  const floor = maxLogit - 40 * t;
  const cand: number[] = [];
  for (let i = 0; i < n; i++) if (logits[i] >= floor) cand.push(i);
  const sorted = cand.sort((a, b) => logits[b] - logits[a] || a - b);
  let keep = sorted.length;
  if (opts.topK && opts.topK > 0) keep = Math.min(keep, opts.topK);
  const m = logits[sorted[0]] / t;
  const w = new Float64Array(keep);
  let total = 0;
  for (let j = 0; j < keep; j++) {
    w[j] = Math.exp(logits[sorted[j]] / t - m);
    total += w[j];
  }
  if (opts.topP < 1) {
    // Smallest prefix whose probability mass (after temperature) reaches topP; always at least one token.
    let cum = 0;
    let cut = keep;
    for (let j = 0; j < keep; j++) {
      cum += w[j] / total;
      if (cum >= opts.topP) {
        cut = j + 1;
        break;
      }
    }
    keep = cut;
    total = 0;
    for (let j = 0; j < keep; j++) total += w[j];
  }
  let u = rng.next() * total;
  let pick = keep - 1;
  for (let j = 0; j < keep; j++) {
    u -= w[j];
    if (u < 0) {
      pick = j;
      break;
    }
  }
  const index = sorted[pick];
  return { index, logprob: logits[index] - lse };
}
