// Public API of src/rollout (re-exported by src/index.ts).
export {};
