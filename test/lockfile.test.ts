// The npm mirror on the development machine serves only linux-x64 builds, so `npm install` there
// writes a lock without the other platforms' optional packages, and `npm ci` then refuses the lock
// ("Missing: ... from lock file"). This test catches such a lock before CI does; the remedy is
// `node scripts/fix-lock.mjs`, which adds the missing platform entries (os/cpu-gated, so npm skips them
// on machines they do not match).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

interface LockPackage {
  version?: string;
  optionalDependencies?: Record<string, string>;
  dependencies?: Record<string, string>;
}

function unresolved(packages: Record<string, LockPackage>): string[] {
  const missing: string[] = [];
  for (const [path, pkg] of Object.entries(packages)) {
    const wanted = { ...(pkg.dependencies ?? {}), ...(pkg.optionalDependencies ?? {}) };
    for (const name of Object.keys(wanted)) {
      let base = path;
      let found = false;
      for (;;) {
        if (packages[`${base ? `${base}/` : ""}node_modules/${name}`]) {
          found = true;
          break;
        }
        if (!base) break;
        const i = base.lastIndexOf("/node_modules/");
        base = i < 0 ? "" : base.slice(0, i);
      }
      if (!found) missing.push(`${name} (wanted by ${path || "the root"})`);
    }
  }
  return missing;
}

describe("package-lock.json", () => {
  const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8")) as {
    packages: Record<string, LockPackage>;
  };

  it("has an entry for every dependency and optional dependency, all platforms included", () => {
    expect(unresolved(lock.packages)).toEqual([]);
  });

  it("detects a missing platform package (the check itself can fail)", () => {
    const broken = structuredClone(lock.packages);
    delete broken["node_modules/@lancedb/lancedb-darwin-arm64"];
    expect(unresolved(broken)).toContain("@lancedb/lancedb-darwin-arm64 (wanted by node_modules/@lancedb/lancedb)");
  });
});
