// Public API of src/rollout (re-exported by src/index.ts).
export {
  RolloutEngine,
  createRolloutEngine,
  defaultRolloutConcurrency,
  runRollouts,
  runTrajectory,
  stopOverhang,
  upstreamPredAnswer,
} from "./engine.js";
export {
  ROLLOUT_DEFAULTS,
  UPSTREAM_UNKNOWN_ANSWER,
  type RolloutBatchingOptions,
  type RolloutEngineOptions,
  type RolloutItem,
  type RolloutLimits,
  type RolloutRetryOptions,
  type RunOneOptions,
  type RunRolloutsOptions,
} from "./options.js";
export {
  CHAT_NO_TOKEN_IDS_WARNING,
  MAX_TOOL_ERROR_TURNS,
  runChatTrajectory,
  type ChatRunContext,
  type ChatRunItem,
} from "./chat-engine.js";
export { MicroBatcher, type MicroBatcherOptions } from "./batcher.js";
export { encodeResponseWithMask, encodeWithSpans, maskFromSpans, type TokensWithMask } from "./mask.js";
