// Public API of src/quickstart (re-exported by src/index.ts).
export {};
