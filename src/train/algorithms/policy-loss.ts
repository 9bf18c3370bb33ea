/**
 * PPO-clip policy loss (upstream `PolicyLoss`) with its analytic gradient with respect to the new log-probs, plus the
 * logging statistics (clip fraction, approximate KL to the behaviour policy, entropy).
 *
 *   ratio_t = exp(logp_t − oldLogp_t)
 *   loss_t  = −min(ratio_t·A_t, clip(ratio_t, 1 − ε_low, 1 + ε_high)·A_t)
 *   d loss_t / d logp_t = −ratio_t·A_t when the unclipped term is the minimum (or both are equal), else 0.
 *
 * Aggregation over a batch of sequences:
 *   - `seq-mean-token-mean` (upstream, micro-batch 1 + gradient accumulation): Σ_t loss_t·m_t / Σ_t m_t per sequence,
 *     then the mean over the sequences of the optimizer batch;
 *   - `token-mean`: Σ over all tokens of the optimizer batch of loss_t·m_t / Σ m_t.
 * A micro-batch passes the optimizer batch's normalizer (sequence count or token count) so that the losses and
 * gradients of its micro-batches add up to those of the whole batch.
 */
import type { Vec } from "./advantages.js";

export type LossAggregation = "seq-mean-token-mean" | "token-mean";

export const LOSS_AGGREGATIONS: readonly LossAggregation[] = ["seq-mean-token-mean", "token-mean"];

export interface PolicyLossSequence {
  /** Log-probs of the response tokens under the current policy. */
  logp: Vec;
  /** Log-probs under the policy that sampled / the policy at experience time (π_old). */
  oldLogp: Vec;
  advantages: Vec;
  /** 1 = policy token, 0 = environment token (no loss, no gradient). */
  mask: Vec;
}

export interface PolicyLossOptions {
  /** ε of the lower clip bound (default 0.2). */
  clipEps?: number;
  /** ε of the upper clip bound (default = clipEps). */
  clipEpsHigh?: number;
  aggregation?: LossAggregation;
  /**
   * Divisor of the batch loss: the optimizer batch's sequence count (`seq-mean-token-mean`) or unmasked token count
   * (`token-mean`). Default: that of the sequences passed in.
   */
  normalizer?: number;
}

export interface PolicyLossResult {
  loss: number;
  /** dLoss / dlogp per token of each sequence (0 on masked tokens). */
  grad: number[][];
  /** Masked tokens seen (Σ m). */
  tokens: number;
  /** Unmasked tokens where the clipped term was active (gradient 0). */
  clippedTokens: number;
  /** Σ over unmasked tokens of (oldLogp − logp): approximate KL(π_old ‖ π_θ) × tokens. */
  approxKlSum: number;
  /** clippedTokens / tokens (0 when no token). */
  clipFrac: number;
  /** approxKlSum / tokens. */
  approxKl: number;
}

export function ppoClipLoss(seqs: readonly PolicyLossSequence[], opts: PolicyLossOptions = {}): PolicyLossResult {
  const epsLow = opts.clipEps ?? 0.2;
  const epsHigh = opts.clipEpsHigh ?? epsLow;
  const agg = opts.aggregation ?? "seq-mean-token-mean";
  if (!(epsLow >= 0 && epsHigh >= 0))
    throw new Error(`ppoClipLoss: clip epsilons must be >= 0 (got ${epsLow}, ${epsHigh})`);
  const lo = 1 - epsLow;
  const hi = 1 + epsHigh;

  let totalTokens = 0;
  const counts = seqs.map((s, i) => {
    const n = s.logp.length;
    if (s.oldLogp.length !== n || s.advantages.length !== n || s.mask.length !== n) {
      throw new Error(
        `ppoClipLoss: sequence ${i} length mismatch (logp ${n}, oldLogp ${s.oldLogp.length}, advantages ${s.advantages.length}, mask ${s.mask.length})`,
      );
    }
    let c = 0;
    for (let t = 0; t < n; t++) c += s.mask[t];
    totalTokens += c;
    return c;
  });
  const normalizer = opts.normalizer ?? (agg === "token-mean" ? totalTokens : seqs.length);

  let loss = 0;
  let clipped = 0;
  let klSum = 0;
  const grad: number[][] = [];
  for (let i = 0; i < seqs.length; i++) {
    const s = seqs[i];
    const n = s.logp.length;
    const g = new Array<number>(n).fill(0);
    grad.push(g);
    const cnt = counts[i];
    if (cnt === 0 || normalizer <= 0) continue;
    // Weight of one token's loss in the batch loss.
    const w = agg === "token-mean" ? 1 / normalizer : 1 / (cnt * normalizer);
    for (let t = 0; t < n; t++) {
      const m = s.mask[t];
      if (m === 0) continue;
      const logRatio = s.logp[t] - s.oldLogp[t];
      const ratio = Math.exp(logRatio);
      const a = s.advantages[t];
      const surr1 = ratio * a;
      const surr2 = Math.min(hi, Math.max(lo, ratio)) * a;
      const tokLoss = -Math.min(surr1, surr2);
      loss += tokLoss * m * w;
      if (surr2 < surr1) clipped += m;
      else g[t] = -ratio * a * m * w;
      klSum += -logRatio * m;
    }
  }
  return {
    loss,
    grad,
    tokens: totalTokens,
    clippedTokens: clipped,
    approxKlSum: klSum,
    clipFrac: totalTokens > 0 ? clipped / totalTokens : 0,
    approxKl: totalTokens > 0 ? klSum / totalTokens : 0,
  };
}

/**
 * Mean policy entropy over unmasked tokens of a batch, from model-provided per-token entropies (logging only; no
 * entropy bonus upstream). Returns the sum and count too so callers can aggregate over micro-batches.
 */
export function maskedEntropy(
  entropies: readonly Vec[],
  masks: readonly Vec[],
): { mean: number; sum: number; tokens: number } {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < entropies.length; i++) {
    const e = entropies[i];
    const m = masks[i];
    if (e.length !== m.length)
      throw new Error(`maskedEntropy: sequence ${i} has ${e.length} entropies, ${m.length} mask entries`);
    for (let t = 0; t < e.length; t++) {
      sum += e[t] * m[t];
      n += m[t];
    }
  }
  return { mean: n > 0 ? sum / n : 0, sum, tokens: n };
}
