// Public API of src/llm (re-exported by src/index.ts).
export {
  backendKind,
  createBackend,
  tokenizerFile as resolveTokenizerFile,
  type BackendKind,
  type CreateBackendOptions,
} from "./factory.js";
export { createOpenAIBackend, OpenAIBackend, type OpenAIBackendOptions } from "./openai.js";
export {
  createLlamaCppBackend,
  getCpuLlama,
  GgufTokenizer,
  LlamaCppBackend,
  type LlamaCppBackendOptions,
} from "./llamacpp.js";
export { sampleLogits, type SampleOptions as LogitSampleOptions, type Sampled as SampledLogit } from "./sampling.js";
export { StopStringMatcher, stableTextLength, type StopMatch } from "./stop.js";
export { isTextOnlyTokenizer, TextOnlyTokenizer } from "./text-tokenizer.js";
export { createBuiltinBackend, type BuiltinBackend, type BuiltinBackendOptions } from "./builtin.js";
