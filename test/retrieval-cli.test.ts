/** The retrieval CLI commands, run in-process through the real `searchrl` program. */
import { describe, expect, it, afterEach, vi } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { main } from "../src/cli/main.js";
import { buildIndex, openRetriever } from "../src/retrieval/index.js";
import { serveRetrieval } from "../src/server/retrieval.js";
import { tempDirs } from "./temp-dirs.js";

const tmpDir = tempDirs();

const SAMPLES = path.resolve(__dirname, "../data/r1-searcher/kilt_samples");

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

afterEach(() => vi.restoreAllMocks());

describe("searchrl corpus / index / search / serve retrieval --check", () => {
  it("split-kilt → index build → search --json → conformance check", async () => {
    const dir = tmpDir("cli-");
    const tsv = path.join(dir, "kilt.tsv");
    const r1 = await run("corpus", "split-kilt", path.join(SAMPLES, "filtered_kilt_sample_100.jsonl"), tsv, "--quiet");
    expect(r1.code).toBe(0);
    expect(r1.out).toMatch(/99 pages → 2375 passages/);
    const shipped = readFileSync(path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv"));
    expect(readFileSync(tsv).subarray(0, shipped.length).equals(shipped)).toBe(true);

    const idx = path.join(dir, "idx");
    const r2 = await run("index", "build", "--corpus", tsv, "--out", idx, "--bm25", "--quiet");
    expect(r2.code).toBe(0);
    expect(r2.out).toMatch(/built bm25 index: 2375 passages/);

    const r3 = await run("search", idx, "Achilles", "heel", "-k", "2", "--json");
    expect(r3.code).toBe(0);
    const j = JSON.parse(r3.out) as { query: string; results: Array<{ title: string; raw: string }> };
    expect(j.query).toBe("Achilles heel");
    expect(j.results).toHaveLength(2);
    expect(j.results[0].title).toBe("Achilles");
    expect(j.results[0].raw.startsWith(`${(j.results[0] as unknown as { id: string }).id}\tAchilles   `)).toBe(true);

    const retriever = await openRetriever(idx);
    const server = await serveRetrieval({ retriever, port: 0 });
    try {
      const r4 = await run(
        "serve",
        "retrieval",
        "--check",
        server.url,
        "--queries",
        "Achilles",
        "letter alphabet",
        "Albedo",
      );
      expect(r4.code, r4.out).toBe(0);
      expect(r4.out).toMatch(/CONFORMS: \d+ passed, 0 failed \(must\), 0 warnings/);
    } finally {
      await server.close();
      await retriever.close();
    }
  });

  it("bad options are clear errors with exit code 1", async () => {
    const r = await run("index", "build", "--corpus", "x.tsv", "--out", "y");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/choose --bm25 and\/or --dense MODEL_DIR/);
    const r2 = await run("search", "/nonexistent-index", "q");
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/does not exist/);
    const r3 = await run("serve", "retrieval");
    expect(r3.err).toMatch(/--index is required/);
  });
});

describe("index build --engine", () => {
  it("postings (default, no LanceDB files) or lance (LanceDB too); a bad name is refused", async () => {
    const corpus = path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv");
    const dir = tmpDir("build-engine-");
    const r1 = await run("index", "build", "--corpus", corpus, "--out", path.join(dir, "a"), "--bm25", "--quiet");
    expect(r1.code, r1.err).toBe(0);
    expect(JSON.parse(readFileSync(path.join(dir, "a", "manifest.json"), "utf8")).bm25.engine).toBe("postings");
    const r2 = await run(
      "index",
      "build",
      "--corpus",
      corpus,
      "--out",
      path.join(dir, "b"),
      "--bm25",
      "--engine",
      "lance",
      "--no-resume",
      "--quiet",
    );
    expect(r2.code, r2.err).toBe(0);
    expect(JSON.parse(readFileSync(path.join(dir, "b", "manifest.json"), "utf8")).bm25.engine).toBe("lancedb-fts");
    const bad = await run(
      "index",
      "build",
      "--corpus",
      corpus,
      "--out",
      path.join(dir, "c"),
      "--bm25",
      "--engine",
      "x",
    );
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--engine must be postings or lance/);
  });
});

describe("--engine postings", () => {
  it("search --engine postings|memory|lancedb rank the same passages; a bad name lists the engines", async () => {
    const idx = path.join(tmpDir("engine-cli-"), "idx");
    await buildIndex({
      corpus: path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv"),
      out: idx,
      bm25: { engine: "lance" },
      progress: false,
    });
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
