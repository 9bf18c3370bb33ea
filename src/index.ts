/**
 * searchrl library entry. Each module's public API is re-exported here; modules keep distinct export names
 * (a clash is a compile error here, so rename at the source).
 */
export { VERSION } from "./version.js";
export * from "./util/index.js";
export * from "./protocol/index.js";
export * from "./metrics/index.js";
export * from "./model/index.js";
export * from "./corpus/index.js";
export * from "./llm/index.js";
export * from "./llm/chat/index.js";
export * from "./retrieval/index.js";
export * from "./reward/index.js";
export * from "./rollout/index.js";
export * from "./rollout/chat-tool.js";
export * from "./eval/index.js";
export * from "./train/index.js";
export * from "./data/index.js";
export * from "./server/index.js";
export * from "./quickstart/index.js";
export type * from "./protocol/types.js";
export type * from "./llm/types.js";
export type * from "./retrieval/types.js";
export type * from "./rollout/types.js";
