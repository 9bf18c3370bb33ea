// Pure RL / SFT algorithm functions (no model, no I/O): advantages, KL, losses with analytic gradients, LR schedules.
export {
  ADVANTAGE_ESTIMATORS,
  clampRewards,
  computeAdvantages,
  cumulativeReturns,
  estimatorWhitens,
  GROUP_NORM_EPS,
  groupAdvantages,
  groupIndices,
  maskedWhiten,
  tokenRewards,
  unbiasedStd,
  WHITEN_VAR_FLOOR,
  type AdvantageEstimator,
  type AdvantageOptions,
  type AdvantageResult,
  type AdvantageSample,
  type Vec as AlgoVec,
  type WhitenStats,
} from "./advantages.js";
export { KL_ESTIMATORS, klLoss, klPenalty, maskedMean, type KlEstimator, type KlLossResult } from "./kl.js";
export {
  LOSS_AGGREGATIONS,
  maskedEntropy,
  ppoClipLoss,
  type LossAggregation,
  type PolicyLossOptions,
  type PolicyLossResult,
  type PolicyLossSequence,
} from "./policy-loss.js";
export { maskedNll, memorizationLoss, MEMORIZATION_COEF, type NllOptions, type NllResult } from "./nll.js";
export {
  LR_SCHEDULES,
  lrAt,
  lrFactor,
  warmupSteps,
  type LrScheduleName,
  type LrScheduleOptions,
} from "./lr-schedule.js";
