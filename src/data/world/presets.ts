/** World size presets: `tiny` for tests, `small` for the quickstart (default), `medium` for longer GPU runs. */
import { WorldConfigSchema, type WorldConfig, type WorldConfigInput } from "./types.js";

const base = {
  internalShare: 0.5,
  splitShares: { train: 0.6, dev: 0.1, test: 0.3 },
  mix: { single: 0, bridge: 0.45, comparison: 0.3, compositional: 0.25 },
  pretrainFactRepeats: 3,
  pretrainQaPerFact: 1,
};

export const WORLD_PRESETS: Record<string, Omit<WorldConfigInput, "seed">> = {
  tiny: {
    ...base,
    preset: "tiny",
    countries: 3,
    cities: 9,
    persons: 24,
    organisations: 8,
    works: 8,
    questions: { train: 60, dev: 10, test: 30 },
    distractorRate: 0.2,
  },
  small: {
    ...base,
    preset: "small",
    countries: 6,
    cities: 24,
    persons: 80,
    organisations: 30,
    works: 30,
    questions: { train: 400, dev: 60, test: 200 },
    distractorRate: 0.25,
  },
  medium: {
    ...base,
    preset: "medium",
    countries: 12,
    cities: 100,
    persons: 400,
    organisations: 150,
    works: 150,
    questions: { train: 2000, dev: 300, test: 1000 },
    distractorRate: 0.5,
  },
};

export const WORLD_PRESET_NAMES = Object.keys(WORLD_PRESETS);

/** A validated config from a preset name, a seed and optional overrides. */
export function worldConfig(preset = "small", seed = 1, overrides: Partial<WorldConfigInput> = {}): WorldConfig {
  const p = WORLD_PRESETS[preset];
  if (!p) throw new Error(`unknown world preset ${JSON.stringify(preset)} (known: ${WORLD_PRESET_NAMES.join(", ")})`);
  const parsed = WorldConfigSchema.safeParse({ ...p, seed, ...overrides });
  if (!parsed.success) {
    throw new Error(`invalid world config: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return parsed.data;
}
