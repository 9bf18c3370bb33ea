export * from "./pystr.js";
export * from "./fsutil.js";
export * from "./jsonl.js";
export * from "./progress.js";
export * from "./rng.js";
export * from "./http.js";
export * from "./concurrency.js";
export * from "./types.js";
