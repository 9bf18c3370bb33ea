// Public API of src/model (re-exported by src/index.ts).
export {
  type ModelConfig,
  type ModelConfigInput,
  ModelConfigSchema,
  resolveModelConfig,
  countParameters,
  trainFlopsPerToken,
  toHfConfig,
  fromHfConfig,
} from "./config.js";
export {
  Transformer,
  type TransformerOptions,
  type ParamEntry,
  type LogprobBatch,
  type LogprobResult,
  type LogprobLossFn,
  type AccumulateResult,
  type CacheTarget,
  type RowSoftmax,
  TrainingPass,
} from "./transformer.js";
export { modelProfile } from "./profile.js";
export { ParallelModel, WorkerReplica, defaultWorkerCount, type ParallelModelOptions } from "./parallel.js";
export { LocalReplica, type Replica, type SampledToken } from "./replica.js";
export { AdamW, type AdamWOptions, type AdamWState } from "./optim.js";
export {
  BatchGenerator,
  type GeneratorOptions,
  type GenerateInput as ModelGenerateInput,
  type GenerateOutput as ModelGenerateOutput,
  type SampleOptions as ModelSampleOptions,
  sampleToken,
} from "./generate.js";
export {
  saveCheckpoint,
  loadCheckpoint,
  readCheckpointConfig,
  exportHfTensors,
  importHfTensors,
  openHfTensors,
  type SaveCheckpointOptions,
  type HfTensor,
  type HfTensorSource,
} from "./checkpoint.js";
export { exportGguf, exportGgufFromCheckpoint, ggufBytes, type GgufExportOptions } from "./gguf.js";
export {
  readSafetensors,
  writeSafetensors,
  SafetensorsFile,
  type SafetensorsDtype,
  type SafetensorsWriteTensor,
} from "./safetensors.js";
export { BpeTokenizer, trainBpe, type TrainBpeOptions, type AddedTokenSpec } from "./tokenizer/bpe.js";
export { HfTokenizer, loadTokenizer, type HfTokenizerOptions } from "./tokenizer/hf.js";
export {
  getRuntime as getWasmRuntime,
  WasmRuntime,
  type RuntimeOptions,
  engineChoice,
  describeEngine,
  type EngineChoice,
  type EngineName,
} from "./runtime.js";
export { referenceLogits, type ReferenceWeights } from "./reference.js";
