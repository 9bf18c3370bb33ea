/** Temporary folders for one test file, removed after its tests: `const tmpDir = tempDirs();` at module level. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return (prefix: string) => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}
