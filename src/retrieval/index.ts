// Public API of src/retrieval (re-exported by src/index.ts).
export {};
