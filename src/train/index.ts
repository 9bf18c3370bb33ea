// Public API of src/train (re-exported by src/index.ts).
export * from "./algorithms/index.js";
export {
  AlgorithmSchema,
  applyPreset,
  loadTrainConfig,
  MemorizationSchema,
  OptimSchema,
  readConfigFile,
  resolveConfigPaths,
  resolveRlConfig,
  resolveSftConfig,
  RlConfigSchema,
  RolloutSchema,
  SftConfigSchema,
  TrainConfigError,
  type RlConfig,
  type RlConfigInput,
  type RlConfigLike,
  type SftConfigLike,
  type SftConfig,
  type SftConfigInput,
  type TrainConfig,
} from "./config.js";
export { TRAIN_PRESETS, TRAIN_PRESET_NAMES } from "./presets.js";
export {
  CheckpointManager,
  readTrainerState,
  stepDirName,
  type CheckpointInfo,
  type CheckpointWriters,
  type TrainerState,
} from "./checkpoint.js";
export { MetricsLog, samplesFile, writeSamples, type TrainMetrics } from "./metrics-log.js";
export {
  buildSftExamples,
  epochOrder,
  loadQuestions,
  loadSftExamples,
  questionFromRow,
  rlStepPrompts,
  type QuestionRow as TrainQuestionRow,
  type SftBuildOptions,
  type SftExample,
} from "./data.js";
export {
  chunk as chunkSequences,
  scoreInBatches,
  type OptimizerStepResult,
  type ScoringModel,
  type SequenceLossFn,
  type SequenceScores,
  type TokenSequence,
  type TrainablePolicy,
} from "./policy.js";
export { BuiltinPolicy, BuiltinScorer, tokenizerJsonOf, type BuiltinPolicyOptions } from "./builtin-policy.js";
export { runSftLoop, sftSchedule, type SftComponents } from "./sft.js";
export {
  runRlLoop,
  rlSchedule,
  type RewardFn,
  type RlComponents,
  type RolloutFn,
  type RolloutRequest,
  type ScoredTrajectory,
} from "./rl.js";
export { engineRollout, presetReward } from "./components.js";
export {
  buildMemorizationSet,
  DEFAULT_REWRITER_PROMPT,
  internalTags,
  LlmRewriter,
  selectSupportingSentence,
  splitSentences,
  TemplateRewriter,
  type MemorizationExample,
  type MemorizationOptions,
  type RewriteInput,
  type Rewriter,
} from "./rewriter.js";
export {
  rejectionSample,
  rejectReason,
  type RejectionSampleOptions,
  type RejectionSampleSummary,
} from "./rejection.js";
export { runRl, runSft, type ModelComponents, type RlComponentsInput, type SftComponentsInput } from "./api.js";
export type { TrainHooks, TrainResult } from "./run-common.js";
