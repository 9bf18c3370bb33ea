// Public API of src/protocol (re-exported by src/index.ts).
export {};
