// The synthetic world (docs/world.md).
export * from "./types.js";
export { WORLD_PRESETS, WORLD_PRESET_NAMES, worldConfig } from "./presets.js";
export { generateWorld, factId as worldFactId } from "./generate.js";
export { RELATION_KEYWORD, QUESTION_TEXTS } from "./templates.js";
export { SYLLABLES, PROFESSIONS, GENRES } from "./names.js";
export {
  checkWorld,
  worldStats,
  deriveAnswer,
  answerLeaks,
  sentenceStatesFact,
  sentenceAboutFact,
  approxTokens as approxTokenCount,
  type WorldStats,
} from "./check.js";
export {
  renderIdealTrajectory,
  trajectoryTags,
  needPhrase,
  worldPassageToPassage,
  type IdealMode,
  type IdealTrajectory,
  type IdealTrajectoryOptions,
  type TrajectoryTags,
} from "./trajectory.js";
export {
  worldPretrainDocs,
  protocolPriorDocs,
  searchToolManual,
  singleHopQuestion,
  singleHopWorldQuestion,
  trainOnlyFacts,
  DEFAULT_QA_WRAPPER,
  SINGLE_HOP_TEMPLATE,
  type PretrainDoc,
  type PretrainOptions,
  type PretrainSource,
  type ProtocolPriorOptions,
} from "./pretrain.js";
export {
  WORLD_FILES,
  WORLD_FORMAT_VERSION,
  WorldQuestionSchema,
  idealLengths,
  loadWorldDir,
  readWorldQuestions,
  worldCorpusJsonlRow,
  worldCorpusPassages,
  worldCorpusTsvLine,
  writeWorldDir,
  type WorldSummary,
  type WriteWorldOptions,
} from "./io.js";
