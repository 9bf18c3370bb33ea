// Public API of src/metrics (re-exported by src/index.ts).
export {
  boolMapping,
  coverExactMatch,
  coverExactMatch2,
  exactMatch,
  f1Score,
  normalizeAnswer,
  scoreAnswer,
  type AnswerScores,
  type F1Result,
  type GoldAnswer,
} from "./answer.js";
export {
  aggregateMetrics,
  formatUpstreamMetrics,
  MetricsAccumulator,
  pyRound1,
  recordGold,
  ResultRecordSchema,
  UPSTREAM_RECORD_LIMIT,
  type MetricsSummary,
  type ResultRecord,
} from "./aggregate.js";
export { metricsForFile, readResultRecords, ResultFileError } from "./files.js";
export {
  buildJudgePrompt,
  chatCompletionsUrl,
  createJudgeClient,
  judgeReferenceText,
  judgeVerdictLenient,
  judgeVerdictStrict,
  LLM_JUDGE_PROMPT,
  type JudgeClient,
  type JudgeClientOptions,
  type JudgeInput,
  type JudgeReference,
  type JudgeResult,
} from "./judge.js";
