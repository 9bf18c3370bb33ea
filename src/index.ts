/**
 * searchrl library entry. Each module's public API is re-exported here; modules keep distinct export names.
 */
export { VERSION } from "./version.js";
export * from "./util/index.js";
export type * from "./protocol/types.js";
export type * from "./llm/types.js";
export type * from "./retrieval/types.js";
export type * from "./rollout/types.js";
