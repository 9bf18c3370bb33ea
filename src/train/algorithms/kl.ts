/**
 * KL estimators between the policy and the frozen reference, per token, on the masked log-ratio
 * `x_t = (logπ_θ(o_t) − logπ_ref(o_t))·m_t` (upstream `compute_approx_kl`):
 *   k1 = x,  k2 = x²/2,  k3 = exp(−x) − 1 + x.
 * R1-Searcher folds β·k1 into the per-token rewards; {@link klLoss} offers the alternative "KL as a loss term".
 */
import type { Vec } from "./advantages.js";

export type KlEstimator = "k1" | "k2" | "k3";

export const KL_ESTIMATORS: readonly KlEstimator[] = ["k1", "k2", "k3"];

function estimate(x: number, estimator: KlEstimator): number {
  switch (estimator) {
    case "k1":
      return x;
    case "k2":
      return (x * x) / 2;
    case "k3":
      return Math.exp(-x) - 1 + x;
    default:
      throw new Error(`unknown KL estimator ${String(estimator)}`);
  }
}

/** d estimate / d x. */
function estimateGrad(x: number, estimator: KlEstimator): number {
  switch (estimator) {
    case "k1":
      return 1;
    case "k2":
      return x;
    case "k3":
      return 1 - Math.exp(-x);
    default:
      throw new Error(`unknown KL estimator ${String(estimator)}`);
  }
}

function checkLengths(name: string, a: Vec, b: Vec, mask: Vec | null | undefined): void {
  if (a.length !== b.length || (mask && mask.length !== a.length)) {
    throw new Error(
      `${name}: length mismatch (logp ${a.length}, ref ${b.length}${mask ? `, mask ${mask.length}` : ""})`,
    );
  }
}

/** Per-token KL estimate of one sequence; masked tokens get 0 (the log-ratio is masked first, as upstream). */
export function klPenalty(logp: Vec, refLogp: Vec, mask?: Vec | null, estimator: KlEstimator = "k1"): number[] {
  checkLengths("klPenalty", logp, refLogp, mask);
  const out = new Array<number>(logp.length);
  for (let t = 0; t < logp.length; t++) {
    const x = (logp[t] - refLogp[t]) * (mask ? mask[t] : 1);
    out[t] = estimate(x, estimator);
  }
  return out;
}

/** Masked mean of per-token values over one sequence (0 when nothing is unmasked). */
export function maskedMean(values: Vec, mask?: Vec | null): number {
  let s = 0;
  let n = 0;
  for (let t = 0; t < values.length; t++) {
    const m = mask ? mask[t] : 1;
    s += values[t] * m;
    n += m;
  }
  return n > 0 ? s / n : 0;
}

export interface KlLossResult {
  /** β · mean over sequences of the masked token-mean KL (divided by `normalizer` instead of the count when given). */
  loss: number;
  /** dLoss / dlogπ_θ per token. */
  grad: number[][];
}

/**
 * KL as a loss term (`--use_kl_loss`, off in every upstream script): `β · mean_seq(masked_mean_t(k(x_t)))`.
 * `normalizer` = number of sequences of the whole optimizer batch when this call sees only a micro-batch.
 */
export function klLoss(
  logps: readonly Vec[],
  refLogps: readonly Vec[],
  masks: readonly Vec[],
  opts: { coef: number; estimator?: KlEstimator; normalizer?: number },
): KlLossResult {
  const est = opts.estimator ?? "k1";
  const nSeq = opts.normalizer ?? logps.length;
  let loss = 0;
  const grad: number[][] = [];
  for (let i = 0; i < logps.length; i++) {
    const lp = logps[i];
    const rp = refLogps[i];
    const m = masks[i];
    checkLengths("klLoss", lp, rp, m);
    let cnt = 0;
    for (let t = 0; t < m.length; t++) cnt += m[t];
    const g = new Array<number>(lp.length).fill(0);
    if (cnt > 0 && nSeq > 0) {
      let s = 0;
      for (let t = 0; t < lp.length; t++) {
        if (m[t] === 0) continue;
        const x = (lp[t] - rp[t]) * m[t];
        s += estimate(x, est) * m[t];
        g[t] = (opts.coef * estimateGrad(x, est) * m[t] * m[t]) / cnt / nSeq;
      }
      loss += (opts.coef * s) / cnt / nSeq;
    }
    grad.push(g);
  }
  return { loss, grad };
}
