/**
 * Outcome-reward advantage estimation for critic-free RL, as R1-Searcher's trainer implements it
 * (`process_experiences` / `get_cumulative_returns` / replay-buffer whitening; spec: docs/training.md §Algorithms).
 *
 * Pipeline per rollout step (all samples of the step together):
 *   1. group baseline on the scalar outcome rewards           {@link groupAdvantages}
 *   2. clamp to the reward clip range (−10, 10)               {@link clampRewards}
 *   3. per-token rewards: −β·kl_t, outcome on the last token  {@link tokenRewards}
 *   4. γ-discounted reverse cumulative returns, masked         {@link cumulativeReturns}
 *   5. masked whitening over the whole batch (not for GRPO)   {@link maskedWhiten}
 * {@link computeAdvantages} runs the whole pipeline.
 *
 * Arrays are per sequence (`ArrayLike<number>`: `number[]` or `Float32Array`); computation is in float64 and results
 * are `number[]`. Masks hold 1 for policy tokens and 0 for environment (retrieved-document) tokens.
 */

export type Vec = ArrayLike<number>;

/**
 * - `reinforce`: REINFORCE++ — raw outcome reward, then global masked whitening.
 * - `reinforce_baseline`: REINFORCE++-baseline — `r − mean(group)`, then global masked whitening.
 * - `group_norm`: GRPO — `(r − mean(group)) / (std_unbiased(group) + 1e-9)`, no whitening.
 * - `rloo`: leave-one-out — `r − (sum(group) − r) / (n − 1)`, then global masked whitening.
 */
export type AdvantageEstimator = "reinforce" | "reinforce_baseline" | "group_norm" | "rloo";

export const ADVANTAGE_ESTIMATORS: readonly AdvantageEstimator[] = [
  "reinforce",
  "reinforce_baseline",
  "group_norm",
  "rloo",
];

/** Epsilon added to the group std by `group_norm` (upstream). */
export const GROUP_NORM_EPS = 1e-9;
/** Lower bound of the variance in masked whitening (upstream `clamp(min=1e-8)`). */
export const WHITEN_VAR_FLOOR = 1e-8;

/** Whether the estimator is followed by global masked whitening (everything except GRPO's `group_norm`). */
export function estimatorWhitens(estimator: AdvantageEstimator): boolean {
  return estimator !== "group_norm";
}

/** Indices of the samples of each group, in first-appearance order of the keys. */
export function groupIndices(groups: readonly string[]): number[][] {
  const map = new Map<string, number[]>();
  groups.forEach((g, i) => {
    let list = map.get(g);
    if (!list) map.set(g, (list = []));
    list.push(i);
  });
  return [...map.values()];
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Unbiased (n − 1) standard deviation; 0 for fewer than two values. */
export function unbiasedStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/**
 * Scalar per-sample advantages before the token stage: the group baseline of the estimator. `groups[i]` is the group
 * key (question id) of sample i; samples of a group need not be contiguous. Groups of one sample get 0 from every
 * estimator except `reinforce` (no baseline can be formed).
 */
export function groupAdvantages(
  rewards: readonly number[],
  groups: readonly string[],
  estimator: AdvantageEstimator,
): number[] {
  if (rewards.length !== groups.length)
    throw new Error(`groupAdvantages: ${rewards.length} rewards but ${groups.length} group keys`);
  for (const r of rewards) if (!Number.isFinite(r)) throw new Error(`groupAdvantages: non-finite reward ${r}`);
  if (estimator === "reinforce") return rewards.slice();
  const out = new Array<number>(rewards.length).fill(0);
  for (const idx of groupIndices(groups)) {
    const rs = idx.map((i) => rewards[i]);
    const n = rs.length;
    if (n < 2) continue;
    const m = mean(rs);
    if (estimator === "reinforce_baseline") {
      for (const i of idx) out[i] = rewards[i] - m;
    } else if (estimator === "group_norm") {
      const sd = unbiasedStd(rs);
      for (const i of idx) out[i] = (rewards[i] - m) / (sd + GROUP_NORM_EPS);
    } else if (estimator === "rloo") {
      const sum = m * n;
      for (const i of idx) out[i] = rewards[i] - (sum - rewards[i]) / (n - 1);
    } else {
      throw new Error(`unknown advantage estimator ${String(estimator)}`);
    }
  }
  return out;
}

/** Clamp every value to [lo, hi] (upstream `reward_clip_range`, default (−10, 10)). */
export function clampRewards(rewards: readonly number[], lo = -10, hi = 10): number[] {
  return rewards.map((r) => Math.min(hi, Math.max(lo, r)));
}

/**
 * Per-token rewards of one sequence: `reward_t = −β·kl_t` for every t, plus the outcome reward on the LAST response
 * token — even when that token is masked (upstream behaviour). `kl` must already be masked (see `klPenalty`).
 * β ≤ 0 counts as 0. An empty response yields an empty array (the outcome reward has no token to land on).
 */
export function tokenRewards(outcome: number, kl: Vec | null, length: number, beta: number): number[] {
  if (kl && kl.length !== length) throw new Error(`tokenRewards: kl has ${kl.length} entries for ${length} tokens`);
  const b = beta > 0 ? beta : 0;
  const out = new Array<number>(length);
  for (let t = 0; t < length; t++) out[t] = kl && b !== 0 ? -b * kl[t] : 0;
  if (length > 0) out[length - 1] += outcome;
  return out;
}

/**
 * Reverse cumulative returns `G_t = Σ_{s≥t} γ^(s−t)·reward_s`, then multiplied by the mask (masked tokens get 0).
 * With γ = 1 (upstream) every policy token of an outcome-only sequence gets the outcome reward.
 */
export function cumulativeReturns(rewards: Vec, mask: Vec, gamma = 1): number[] {
  if (rewards.length !== mask.length)
    throw new Error(`cumulativeReturns: ${rewards.length} rewards, ${mask.length} mask entries`);
  const n = rewards.length;
  const out = new Array<number>(n);
  let g = 0;
  for (let t = n - 1; t >= 0; t--) {
    g = rewards[t] + gamma * g;
    out[t] = g * mask[t];
  }
  return out;
}

export interface WhitenStats {
  mean: number;
  /** sqrt(max(var, 1e-8)) — the divisor actually used. */
  std: number;
  /** Number of unmasked tokens (Σ mask). */
  count: number;
}

/**
 * Masked whitening over a whole batch of sequences (upstream replay-buffer normalization):
 *   mean = Σ A_t·m_t / Σ m_t;  var = Σ (A_t − mean)²·m_t / Σ m_t;  A_t ← (A_t − mean) / sqrt(max(var, 1e-8))
 * applied to ALL positions, so masked positions (A_t = 0 after masked returns) become −mean/std; losses ignore them.
 * When the batch has no unmasked token the advantages are returned unchanged (count 0).
 */
export function maskedWhiten(
  advantages: readonly Vec[],
  masks: readonly Vec[],
): { advantages: number[][]; stats: WhitenStats } {
  if (advantages.length !== masks.length)
    throw new Error(`maskedWhiten: ${advantages.length} sequences, ${masks.length} masks`);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < advantages.length; i++) {
    const a = advantages[i];
    const m = masks[i];
    if (a.length !== m.length)
      throw new Error(`maskedWhiten: sequence ${i} has ${a.length} advantages, ${m.length} mask entries`);
    for (let t = 0; t < a.length; t++) {
      sum += a[t] * m[t];
      count += m[t];
    }
  }
  if (count === 0) return { advantages: advantages.map((a) => Array.from(a)), stats: { mean: 0, std: 1, count: 0 } };
  const mu = sum / count;
  let sq = 0;
  for (let i = 0; i < advantages.length; i++) {
    const a = advantages[i];
    const m = masks[i];
    for (let t = 0; t < a.length; t++) sq += (a[t] - mu) * (a[t] - mu) * m[t];
  }
  const std = Math.sqrt(Math.max(sq / count, WHITEN_VAR_FLOOR));
  return {
    advantages: advantages.map((a) => Array.from(a, (x) => (x - mu) / std)),
    stats: { mean: mu, std, count },
  };
}

export interface AdvantageSample {
  /** Scalar outcome reward of the sample (reward server / preset). */
  reward: number;
  /** Group key (question id). */
  group: string;
  /** Per response token: 1 = policy token, 0 = environment token. */
  mask: Vec;
  /** Per response token masked KL penalty (k1 of policy vs reference, already × mask); omit when β = 0. */
  kl?: Vec | null;
}

export interface AdvantageOptions {
  estimator: AdvantageEstimator;
  /** KL coefficient β (`init_kl_coef`, fixed controller). Default 0. */
  klCoef?: number;
  /** Discount γ. Default 1. */
  gamma?: number;
  /** Reward clip range applied after the group baseline. Default [−10, 10]. */
  rewardClip?: readonly [number, number];
  /** Force whitening on/off; default: on for every estimator except `group_norm`. */
  whiten?: boolean;
}

export interface AdvantageResult {
  /** Per sample, per response token. */
  advantages: number[][];
  /** Per sample, per response token (masked returns, before whitening). */
  returns: number[][];
  /** Per sample, per response token rewards (−β·kl plus the outcome on the last token). */
  tokenRewards: number[][];
  /** Scalar per-sample rewards after the group baseline and clamp. */
  shapedRewards: number[];
  /** Per sample Σ_t reward_t (upstream's logged "return"). */
  sampleReturns: number[];
  whiten: WhitenStats | null;
}

/** The whole advantage pipeline of one rollout step (see the file comment). */
export function computeAdvantages(samples: readonly AdvantageSample[], opts: AdvantageOptions): AdvantageResult {
  const beta = opts.klCoef ?? 0;
  const gamma = opts.gamma ?? 1;
  const [lo, hi] = opts.rewardClip ?? [-10, 10];
  const base = groupAdvantages(
    samples.map((s) => s.reward),
    samples.map((s) => s.group),
    opts.estimator,
  );
  const shaped = clampRewards(base, lo, hi);
  const rewardsPerToken = samples.map((s, i) => tokenRewards(shaped[i], s.kl ?? null, s.mask.length, beta));
  const returns = samples.map((s, i) => cumulativeReturns(rewardsPerToken[i], s.mask, gamma));
  const sampleReturns = rewardsPerToken.map((r) => r.reduce((a, b) => a + b, 0));
  const whiten = opts.whiten ?? estimatorWhitens(opts.estimator);
  if (!whiten) {
    return {
      advantages: returns.map((r) => r.slice()),
      returns,
      tokenRewards: rewardsPerToken,
      shapedRewards: shaped,
      sampleReturns,
      whiten: null,
    };
  }
  const w = maskedWhiten(
    returns,
    samples.map((s) => s.mask),
  );
  return {
    advantages: w.advantages,
    returns,
    tokenRewards: rewardsPerToken,
    shapedRewards: shaped,
    sampleReturns,
    whiten: w.stats,
  };
}
