// Public API of src/data (re-exported by src/index.ts).
export * from "./world/index.js";
export { normalizeQuestionRow, readQuestionRows, type QuestionRow } from "./questions.js";
export {
  EXPORT_FORMATS as DATA_EXPORT_FORMATS,
  splitFromFileName,
  toFlashRagRows,
  toOpenRlhfRows,
  toVerlRows,
  writeExport,
  type ExportFormat as DataExportFormat,
  type ExportOptions as DataExportOptions,
  type FlashRagRow,
  type OpenRlhfRow,
} from "./export.js";
export {
  readParquetRows,
  verlParquetSchema,
  verlRowsToParquet,
  writeVerlParquet,
  type VerlMessage,
  type VerlRow,
} from "./parquet.js";
export {
  DIFFICULTY_BUCKETS,
  UPSTREAM_DIFFICULTY_THRESHOLDS,
  bucketCounts,
  difficultyBucket,
  difficultyRecord,
  rolloutsNeeded,
  runDifficulty,
  writeBucketFiles,
  type BucketOptions,
  type DifficultyBucket,
  type DifficultyRecord,
  type DifficultyThresholds,
  type NeededEstimator,
  type RunDifficultyOptions,
} from "./difficulty.js";
