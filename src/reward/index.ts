// Public API of src/reward (re-exported by src/index.ts).
export {};
