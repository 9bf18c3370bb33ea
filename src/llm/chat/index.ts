// Chat backends (AI SDK); re-exported by src/index.ts. Kept out of src/llm/index.ts so the CLI loads the AI SDK only
// when a chat spec is used.
export {
  AiSdkChatBackend,
  createAiSdkChatBackend,
  reportedCost as chatReportedCost,
  type AiSdkChatBackendOptions,
} from "./ai-sdk.js";
export { chatModelFromSpec, createChatBackend, type ChatSpecOptions } from "./spec.js";
export { CHAT_PROVIDERS, isChatSpec, parseChatSpec, type ChatProvider, type ParsedChatSpec } from "./parse.js";
export {
  isChatBackend,
  type ChatBackend,
  type ChatFinishReason,
  type ChatMessage,
  type ChatParams,
  type ChatRequest,
  type ChatResult,
  type ChatResultToolCall,
  type ChatToolCall,
  type ChatToolSpec,
  type ChatUsage,
} from "./types.js";
