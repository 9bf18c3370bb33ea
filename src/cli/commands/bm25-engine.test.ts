/** The `--engine` option of `searchrl search` / `serve retrieval` accepts the postings engine (real program, in-process). */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { main } from "../main.js";
import { buildIndex } from "../../retrieval/build.js";

const KILT_TSV = path.resolve(__dirname, "../../../data/r1-searcher/kilt_samples/train_kilt_full_page_sample_100.tsv");

async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = "";
  let err = "";
  const o = vi
    .spyOn(process.stdout, "write")
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi
    .spyOn(process.stderr, "write")
    .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  process.exitCode = 0;
  try {
    await main(["node", "searchrl", ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out, err, code };
}

describe("--engine postings", () => {
  let root: string;
  let idx: string;
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), "engine-cli-"));
    idx = path.join(root, "idx");
    await buildIndex({ corpus: KILT_TSV, out: idx, progress: false });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => vi.restoreAllMocks());

  it("search --engine postings|memory|lancedb rank the same passages; a bad name lists the engines", async () => {
    const ids: string[][] = [];
    for (const engine of ["postings", "memory", "lancedb"]) {
      const r = await run("search", idx, "albedo", "reflection", "sunlight", "-k", "3", "--json", "--engine", engine);
      expect(r.code, r.err).toBe(0);
      ids.push((JSON.parse(r.out) as { results: Array<{ id: string }> }).results.map((x) => x.id));
    }
    expect(ids[0]).toHaveLength(3);
    expect(ids[1]).toEqual(ids[0]);
    expect(ids[2]).toEqual(ids[0]);
    const bad = await run("search", idx, "albedo", "--engine", "bogus");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--engine must be auto, postings, memory or lancedb/);
    const badServe = await run("serve", "retrieval", "--index", idx, "--engine", "bogus");
    expect(badServe.code).toBe(1);
    expect(badServe.err).toMatch(/--engine must be auto, postings, memory or lancedb/);
  });
});
