/**
 * Likelihood losses with analytic gradients with respect to the per-token log-probs:
 *   - SFT / pre-training masked NLL (R1-Searcher++ cold start): L = −Σ_i m_i·logp_i / Σ_i m_i, retrieved-document tokens
 *     masked (m = 0);
 *   - the memorization loss of R1-Searcher++: L_M = −(1 / Σ_{o∈T} |o|)·Σ_{o∈T} Σ_t logp(o_t), token-normalized over the
 *     whole rewritten set T, weighted by μ (0.1) in the total objective.
 */
import type { Vec } from "./advantages.js";
import type { LossAggregation } from "./policy-loss.js";

export interface NllResult {
  /** Loss of this (micro-)batch, already divided by the normalizer. */
  loss: number;
  /** dLoss / dlogp per token. */
  grad: number[][];
  /** Unmasked tokens seen. */
  tokens: number;
  /** −Σ m·logp over this batch (for perplexity logging). */
  nllSum: number;
}

export interface NllOptions {
  /** `token-mean` (default; Σ over all tokens / Σ m) or `seq-mean-token-mean` (per-sequence token mean, then mean). */
  aggregation?: LossAggregation;
  /** The whole batch's token count (`token-mean`) or sequence count (`seq-mean-token-mean`) when this is a micro-batch. */
  normalizer?: number;
  /** Multiplies loss and gradient (μ for the memorization term). Default 1. */
  coef?: number;
}

/** Masked negative log-likelihood. `masks` may be omitted (all tokens count). */
export function maskedNll(
  logps: readonly Vec[],
  masks: readonly (Vec | null)[] | null,
  opts: NllOptions = {},
): NllResult {
  const agg = opts.aggregation ?? "token-mean";
  const coef = opts.coef ?? 1;
  if (masks && masks.length !== logps.length)
    throw new Error(`maskedNll: ${logps.length} sequences, ${masks.length} masks`);
  const counts = logps.map((lp, i) => {
    const m = masks?.[i];
    if (m && m.length !== lp.length)
      throw new Error(`maskedNll: sequence ${i} has ${lp.length} log-probs, ${m.length} mask entries`);
    if (!m) return lp.length;
    let c = 0;
    for (let t = 0; t < m.length; t++) c += m[t];
    return c;
  });
  const tokens = counts.reduce((a, b) => a + b, 0);
  const normalizer = opts.normalizer ?? (agg === "token-mean" ? tokens : logps.length);
  let loss = 0;
  let nllSum = 0;
  const grad: number[][] = [];
  for (let i = 0; i < logps.length; i++) {
    const lp = logps[i];
    const m = masks?.[i] ?? null;
    const g = new Array<number>(lp.length).fill(0);
    grad.push(g);
    if (counts[i] === 0 || normalizer <= 0) continue;
    const w = coef * (agg === "token-mean" ? 1 / normalizer : 1 / (counts[i] * normalizer));
    for (let t = 0; t < lp.length; t++) {
      const mt = m ? m[t] : 1;
      if (mt === 0) continue;
      if (!Number.isFinite(lp[t]))
        throw new Error(`maskedNll: non-finite log-prob ${lp[t]} at sequence ${i}, token ${t}`);
      nllSum += -lp[t] * mt;
      loss += -lp[t] * mt * w;
      g[t] = -mt * w;
    }
  }
  return { loss, grad, tokens, nllSum };
}

/** Default memorization weight μ of R1-Searcher++. */
export const MEMORIZATION_COEF = 0.1;

/**
 * μ·L_M over (a micro-batch of) the memorization set T: every response token of a rewritten path counts, normalized by
 * the token count of the whole set (`totalTokens`; default: the tokens passed in).
 */
export function memorizationLoss(
  logps: readonly Vec[],
  opts: { coef?: number; totalTokens?: number; masks?: readonly (Vec | null)[] } = {},
): NllResult {
  return maskedNll(logps, opts.masks ?? null, {
    aggregation: "token-mean",
    normalizer: opts.totalTokens,
    coef: opts.coef ?? MEMORIZATION_COEF,
  });
}
