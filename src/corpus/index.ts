// Public API of src/corpus (re-exported by src/index.ts).
export {};
