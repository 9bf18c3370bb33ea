// Public API of src/reward (re-exported by src/index.ts).
export {
  getRewardPreset,
  REWARD_PRESET_NAMES,
  REWARD_PRESETS,
  resolveRewardItem,
  scoreBatch,
  scoreOne,
  type RewardDetails,
  type RewardItem,
  type RewardPreset,
  type RewardPresetName,
  type RewardResult,
  type ResolvedRewardItem,
  type ScoreBatchOptions,
} from "./batch.js";
export {
  goldFromValue,
  GoldTable,
  GoldValueSchema,
  loadGoldTable,
  normalizeQuestionKey,
  stripSequence,
  UnknownQuestionError,
  type GoldLookup,
} from "./lookup.js";
export {
  r1DocsOk,
  r1HasAnswerTags,
  r1HasChineseOutsideDocs,
  r1Prediction,
  r1TagCounts,
  rewardR1SearcherLlamaStage1,
  rewardR1SearcherLlamaStage2,
  rewardR1SearcherQwen,
  type R1RewardOutcome,
} from "./r1-searcher.js";
export {
  DEFAULT_PLUS_REWARD_OPTIONS,
  plusAnswerReward,
  plusFormatCheck,
  plusGroupRewards,
  type GroupRewardVariant,
  type GroupSample,
  type PlusFormatCheck,
  type PlusRewardOptions,
} from "./plus.js";
