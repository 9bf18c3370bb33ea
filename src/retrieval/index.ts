// Public API of src/retrieval (re-exported by src/index.ts). Internal helpers stay importable by path.
export { PassageStore, PassageStoreWriter, type PassageStoreOptions } from "./store.js";
export {
  INDEX_FORMAT,
  INDEX_FORMAT_VERSION,
  MANIFEST_FILE as INDEX_MANIFEST_FILE,
  IndexManifestSchema,
  readIndexManifest,
  isIndexDir,
  type IndexManifest,
} from "./manifest.js";
export { buildIndex, type BuildIndexOptions, type Bm25BuildEngine, type DenseBuildOptions } from "./build.js";
export { resumeDir as buildResumeDir } from "./build-resume.js";
export { openRetriever, openIndex, type OpenRetrieverOptions } from "./factory.js";
export {
  reciprocalRankFusion,
  HybridRetriever,
  RRF_K,
  passageKey,
  type FusionOptions,
  type HybridRetrieverOptions,
} from "./hybrid.js";
export {
  RemoteRetriever,
  parseRawPassageLine,
  resolveRemoteUrl,
  type RemoteApi,
  type RemoteRetrieverOptions,
} from "./remote.js";
export {
  Analyzer as Bm25Analyzer,
  ENGLISH_STOP_WORDS,
  analyzerConfig as bm25AnalyzerConfig,
  type AnalyzerOptions as Bm25AnalyzerOptions,
  type AnalyzerConfig as Bm25AnalyzerConfig,
} from "./bm25/analyzer.js";
export { porterStem } from "./bm25/porter.js";
export { Bm25MemoryBuilder, Bm25MemoryIndex, BM25_K1, BM25_B } from "./bm25/memory.js";
export { Bm25Retriever, openBm25Engine, type Bm25Engine, type Bm25EngineName } from "./bm25/retriever.js";
export { PostingsIndex, type PostingsOpenOptions, type PostingsSearchStats } from "./bm25/postings.js";
export { PostingsWriter, type PostingsWriterOptions, type PostingsSummary } from "./bm25/postings-writer.js";
export {
  POSTINGS_FORMAT,
  POSTINGS_VERSION,
  PostingsHeaderSchema,
  type PostingsHeader,
} from "./bm25/postings-format.js";
export {
  OnnxEmbedder,
  embeddingPreset,
  passageEmbeddingText,
  BGE_QUERY_INSTRUCTION,
  type TextEmbedder,
  type EmbeddingConfig,
  type EmbeddingPresetName,
  type EmbeddingPresetOptions,
} from "./dense/encoder.js";
export {
  buildOnnxModel,
  type OnnxModelSpec,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
  type OnnxAttribute,
  type OnnxDType,
} from "./dense/onnx-writer.js";
export {
  writeTinyEmbeddingModel,
  tinyEmbeddingReference,
  type TinyEmbeddingModelOptions,
  type TinyEmbeddingWeights,
} from "./dense/tiny-model.js";
export {
  buildVectorIndex,
  VectorIndex,
  type VectorIndexMeta,
  type BuildVectorIndexOptions,
  type VectorSearchOptions,
} from "./dense/vector-index.js";
export { DenseRetriever } from "./dense/retriever.js";
export * from "./web/index.js";
