export * from "./common.js";
export * from "./agent-client.js";
export * from "./agent.js";
export * from "./reward.js";
export * from "./retrieval.js";
export * from "./retrieval-conformance.js";
