import { beforeAll, describe, expect, it } from "vitest";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildIndex } from "./build.js";
import { openRetriever } from "./factory.js";
import { readIndexManifest } from "./manifest.js";
import { PostingsIndex } from "./bm25/postings.js";
import { Bm25MemoryBuilder } from "./bm25/memory.js";
import { Analyzer } from "./bm25/analyzer.js";
import { POSTINGS_HEADER, segmentFiles } from "./bm25/postings-format.js";
import { readCorpus } from "../corpus/readers.js";
import { serveRetrieval } from "../server/retrieval.js";
import { formatRetrievalConformanceReport, runRetrievalConformance } from "../server/retrieval-conformance.js";
import { tempDirs } from "../../test/temp-dirs.js";

const SAMPLES = path.resolve(__dirname, "../../data/r1-searcher/kilt_samples");
const KILT_TSV = path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv");
const QUERIES = [
  "alphabet letter vowel",
  "albedo reflection sunlight",
  "Gershwin Paris orchestra",
  "the letter A the letter A",
  "zzzz qqqq",
  "",
];

const tmp = tempDirs();

/** An index as built before the postings existed: no bm25/postings folder, no manifest field. */
function makeOldFormat(from: string): string {
  const dir = path.join(tmp("oldidx-"), "idx");
  cpSync(from, dir, { recursive: true });
  rmSync(path.join(dir, "bm25", "postings"), { recursive: true });
  const mf = path.join(dir, "manifest.json");
  const m = JSON.parse(readFileSync(mf, "utf8"));
  delete m.bm25.postings;
  delete m.build.postingsSeconds;
  writeFileSync(mf, JSON.stringify(m, null, 2));
  return dir;
}

describe("index build writes the BM25 postings; engine selection", () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp("postidx-"), "idx");
    // Segments of 40 passages: the 93-passage sample gives three segments.
    await buildIndex({
      corpus: KILT_TSV,
      out: dir,
      bm25: { engine: "lance", postings: { segmentSize: 40 } },
      progress: false,
    });
  });

  it("records the postings in the manifest and writes their files inside bm25/", () => {
    const m = readIndexManifest(dir);
    expect(m.bm25?.engine).toBe("lancedb-fts"); // LanceDB too (engine "lance")
    expect(m.bm25?.postings).toMatchObject({ path: "postings", version: 1, segments: 3, segmentSize: 40 });
    expect(m.bm25!.postings!.postings).toBeGreaterThan(1000);
    expect(m.build.postingsSeconds).toBeGreaterThan(0);
    const pdir = path.join(dir, "bm25", "postings");
    expect(existsSync(path.join(pdir, POSTINGS_HEADER))).toBe(true);
    const ix = PostingsIndex.open(pdir);
    expect(ix.size).toBe(93);
    expect(ix.segmentCount).toBe(3);
    expect(ix.avgdl).toBe(m.bm25!.avgdl);
  });

  it("the postings equal an in-memory index of the analyzed corpus (exact scores)", async () => {
    const a = new Analyzer();
    const b = new Bm25MemoryBuilder();
    for await (const p of readCorpus(KILT_TSV)) b.add(a.terms(p.title ? `${p.title}\n${p.text}` : p.text));
    const mem = b.finish();
    const ix = PostingsIndex.open(path.join(dir, "bm25", "postings"));
    for (const q of QUERIES)
      for (const k of [1, 5, 20]) expect(ix.search(a.terms(q), k)).toEqual(mem.search(a.terms(q), k));
  });

  it("auto picks postings; postings, memory and LanceDB return the same passages", async () => {
    const auto = await openRetriever(dir);
    const post = await openRetriever(dir, { bm25Engine: "postings" });
    const mem = await openRetriever(dir, { bm25Engine: "memory" });
    const lance = await openRetriever(dir, { bm25Engine: "lancedb" });
    expect(await auto.info()).toMatchObject({ kind: "bm25", size: 93, engine: "postings" });
    expect(auto.name).toBe("bm25:postings");
    const got = await post.search(QUERIES, 5);
    const m = await mem.search(QUERIES, 5);
    const l = await lance.search(QUERIES, 5);
    expect(got).toEqual(m); // same passages, same float64 scores
    expect(await auto.search(QUERIES, 5)).toEqual(got);
    expect(got.map((r) => r.map((p) => p.id))).toEqual(l.map((r) => r.map((p) => p.id)));
    expect(got[0].length).toBe(5);
    expect(got[4]).toEqual([]);
    expect(got[5]).toEqual([]);
    for (let i = 0; i < QUERIES.length; i++) expect((await post.search([QUERIES[i]], 5))[0]).toEqual(got[i]);
    for (const r of [auto, post, mem, lance]) await r.close();
  });

  it("the retrieval server over the postings engine passes the conformance suite", async () => {
    const retriever = await openRetriever(dir, { bm25Engine: "postings" });
    const server = await serveRetrieval({ retriever, port: 0 });
    try {
      const report = await runRetrievalConformance(server.url, { queries: QUERIES.slice(0, 3) });
      expect(report.ok, formatRetrievalConformanceReport(report)).toBe(true);
      expect(report.warnings, formatRetrievalConformanceReport(report)).toBe(0);
      const health = (await (await fetch(`${server.url}/health`)).json()) as { name: string };
      expect(health.name).toBe("bm25:postings");
    } finally {
      await server.close();
      await retriever.close();
    }
  });

  it("an index built before the postings existed opens exactly as before", async () => {
    const old = makeOldFormat(dir);
    const m = readIndexManifest(old);
    expect(m.bm25?.postings).toBeUndefined();
    const auto = await openRetriever(old); // ≤ 100 k passages: the in-memory scorer
    expect(await auto.info()).toMatchObject({ engine: "memory" });
    const big = await openRetriever(old, { memoryMaxPassages: 10 }); // above the limit: LanceDB
    expect(await big.info()).toMatchObject({ engine: "lancedb" });
    const ref = await openRetriever(dir, { bm25Engine: "postings" });
    expect(await auto.search(QUERIES, 5)).toEqual(await ref.search(QUERIES, 5));
    await expect(openRetriever(old, { bm25Engine: "postings" })).rejects.toThrow(
      /has no BM25 postings .*rebuild it with `searchrl index build` or choose the engine auto, memory or lancedb/,
    );
    for (const r of [auto, big, ref]) await r.close();
  });

  it("bm25: {engine: lance, postings: false} builds LanceDB only (auto falls back as for old indexes)", async () => {
    const d = path.join(tmp("nopost-"), "idx");
    await buildIndex({
      corpus: KILT_TSV,
      out: d,
      bm25: { engine: "lance", postings: false },
      progress: false,
      limit: 30,
    });
    expect(readIndexManifest(d).bm25?.postings).toBeUndefined();
    expect(existsSync(path.join(d, "bm25", "postings"))).toBe(false);
    const r = await openRetriever(d);
    expect(await r.info()).toMatchObject({ engine: "memory", size: 30 });
    await r.close();
  });

  it("a truncated postings file makes opening fail with an error naming it", async () => {
    const broken = path.join(tmp("broken-"), "idx");
    cpSync(dir, broken, { recursive: true });
    const f = segmentFiles(path.join(broken, "bm25", "postings"), "seg-0001").tfs;
    truncateSync(f, 10);
    await expect(openRetriever(broken)).rejects.toThrow(`${f}: size 10 bytes, expected`);
    // The other engines still open the same index.
    const l = await openRetriever(broken, { bm25Engine: "lancedb" });
    expect((await l.search(["albedo"], 1))[0].length).toBe(1);
    await l.close();
    // The manifest says there are postings but the folder is gone: a clear error, not a silent fallback.
    rmSync(path.join(broken, "bm25", "postings"), { recursive: true });
    await expect(openRetriever(broken)).rejects.toThrow(/postings\.json is missing/);
  });
});

describe("the default BM25 build writes no LanceDB index", () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp("defidx-"), "idx");
    await buildIndex({ corpus: KILT_TSV, out: dir, progress: false });
  });

  it("bm25/ holds only the postings; the manifest says engine postings", () => {
    const m = readIndexManifest(dir);
    expect(m.bm25).toMatchObject({ engine: "postings", postings: { segments: 1 } });
    expect(m.bm25!.table).toBeUndefined();
    expect(readdirSync(path.join(dir, "bm25"))).toEqual(["postings"]);
  });

  it("auto and memory (rebuilt from the postings) answer; lancedb fails with what to do", async () => {
    const auto = await openRetriever(dir);
    const mem = await openRetriever(dir, { bm25Engine: "memory" });
    expect(await auto.info()).toMatchObject({ engine: "postings", size: 93 });
    expect(await mem.info()).toMatchObject({ engine: "memory", size: 93 });
    expect(await auto.search(QUERIES, 5)).toEqual(await mem.search(QUERIES, 5));
    await expect(openRetriever(dir, { bm25Engine: "lancedb" })).rejects.toThrow(
      /has no LanceDB table .*--engine lance/,
    );
    await auto.close();
    await mem.close();
  });

  it("the engine option is checked", async () => {
    const out = path.join(tmp("badeng-"), "idx");
    await expect(
      buildIndex({ corpus: KILT_TSV, out, bm25: { engine: "bogus" as never }, progress: false }),
    ).rejects.toThrow(/unknown BM25 engine "bogus"/);
    await expect(buildIndex({ corpus: KILT_TSV, out, bm25: { postings: false }, progress: false })).rejects.toThrow(
      /needs its postings/,
    );
  });
});

describe("LanceDB is optional", () => {
  it("a package that is not installed is reported with what to do", async () => {
    const { importOptional, LANCE_MISSING, loadLance } = await import("./bm25/lance.js");
    await expect(importOptional("@searchrl-test/not-installed-package", LANCE_MISSING)).rejects.toThrow(
      /LanceDB is not installed: .*npm install @lancedb\/lancedb/,
    );
    // Installed here: it loads (the "lance" engine's path).
    expect(typeof (await loadLance()).connect).toBe("function");
  });
});
