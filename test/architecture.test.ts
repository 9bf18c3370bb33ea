/**
 * Imports flow one way (docs/architecture.md): a module may import from its own folder or from a lower layer, never
 * from the same layer or above. This test reads every source file's relative imports and fails on a violation.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

export const LAYERS: Record<string, number> = {
  util: 0,
  protocol: 1,
  metrics: 1,
  model: 1,
  corpus: 1,
  llm: 2,
  retrieval: 2,
  reward: 2,
  rollout: 3,
  eval: 4,
  train: 4,
  data: 4,
  server: 5,
  quickstart: 5,
  cli: 6,
};

const SRC = path.resolve(__dirname, "..", "src");

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function topFolder(file: string): string | null {
  const rel = path.relative(SRC, file);
  const parts = rel.split(path.sep);
  return parts.length > 1 ? parts[0] : null;
}

describe("architecture: one-way imports", () => {
  const files = walk(SRC);
  it("every src folder has a layer", () => {
    const folders = new Set(files.map(topFolder).filter((x): x is string => x !== null));
    for (const f of folders)
      expect(LAYERS, `folder src/${f} needs a layer in test/architecture.test.ts`).toHaveProperty(f);
  });
  it("no import goes sideways or up", () => {
    const violations: string[] = [];
    const re = /(?:import|export)\s[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
    for (const file of files) {
      const from = topFolder(file);
      if (from === null) continue; // src/index.ts, src/version.ts: the library entry may import anything
      if (file.endsWith(".test.ts")) continue; // tests may use anything to build fixtures
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(re)) {
        const spec = m[1] ?? m[2];
        if (!spec.startsWith(".")) continue;
        const target = path.resolve(path.dirname(file), spec);
        const to = topFolder(target);
        if (to === null || to === from) continue;
        if (!(LAYERS[to] < LAYERS[from]))
          violations.push(`${path.relative(SRC, file)} imports ${spec} (${from} -> ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });
});
