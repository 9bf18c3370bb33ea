// Public API of src/corpus (re-exported by src/index.ts).
export * from "./lines.js";
export * from "./kilt.js";
export * from "./readers.js";
