/** src/quickstart's modules import each other without a circle (layout.ts is what the pipeline, results and report share). */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const dir = path.resolve(__dirname);

/** Local imports (`./x.js`) of every non-test module of src/quickstart, type-only imports included. */
function localImports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))) {
    const src = readFileSync(path.join(dir, f), "utf8");
    const deps = [...src.matchAll(/(?:import|export)\s[^;]*?from\s+"\.\/([\w-]+)\.js"/gs)].map((m) => `${m[1]}.ts`);
    graph.set(f, [...new Set(deps)]);
  }
  return graph;
}

/** One import circle as a path (a → b → … → a), or null. */
function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === "done") return null;
    if (state.get(n) === "open") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "open");
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, "done");
    return null;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe("src/quickstart module graph", () => {
  it("finds a circle when there is one (the check itself)", () => {
    const g = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
    ]);
    expect(findCycle(g)).toEqual(["a.ts", "b.ts", "c.ts", "a.ts"]);
    expect(findCycle(new Map([["a.ts", ["b.ts"]]]))).toBeNull();
  });

  it("has no import circle; pipeline, results and report share layout.ts", () => {
    const g = localImports();
    expect(g.get("pipeline.ts")).toContain("results.ts");
    expect(findCycle(g)).toBeNull();
    for (const m of ["pipeline.ts", "results.ts"]) expect(g.get(m), m).toContain("layout.ts");
    expect(g.get("layout.ts")?.filter((d) => d !== "presets.ts")).toEqual([]);
  });
});
