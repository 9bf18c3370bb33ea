// Public API of src/eval (re-exported by src/index.ts).
export {
  BUNDLED_EVAL_DATASETS,
  bundledEvalDir,
  loadEvalItems,
  resolveEvalDataset,
  type BundledEvalDataset,
  type EvalItem,
} from "./datasets.js";
export {
  evaluate,
  NAIVE_RAG_PROMPT,
  NO_RETRIEVAL_PROMPT,
  renderBaselineDocuments,
  summarizeResultsFile,
  summaryFileFor,
  toEvalRecord,
  type BaselinePrompt,
  type EvalMode,
  type EvalRecord,
  type EvalSummary,
  type EvaluateOptions,
  type EvaluateResult,
} from "./evaluate.js";
