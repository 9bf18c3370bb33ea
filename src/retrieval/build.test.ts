import { describe, expect, it, beforeAll } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Rng } from "../util/rng.js";
import { buildIndex, cleanStaleBuilds } from "./build.js";
import { openIndex, openRetriever } from "./factory.js";
import { readIndexManifest } from "./manifest.js";
import { HybridRetriever } from "./hybrid.js";
import { writeTinyEmbeddingModel } from "./dense/tiny-model.js";
import { embeddingPreset, OnnxEmbedder } from "./dense/encoder.js";
import { exactTopK } from "./dense/vector-index.js";
import { tempDirs } from "../../test/temp-dirs.js";

const SAMPLES = path.resolve(__dirname, "../../data/r1-searcher/kilt_samples");
const KILT_TSV = path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv");
const ABS_TSV = path.join(SAMPLES, "train_np_title_abs_sample_100.tsv");

const tmp = tempDirs();

describe("BM25 index build and search", () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp("bm25idx-"), "idx");
    await buildIndex({ corpus: KILT_TSV, out: dir, bm25: { engine: "lance" }, progress: false });
  });

  it("writes manifest last, with the layout and analyzer recorded", () => {
    const m = readIndexManifest(dir);
    expect(m).toMatchObject({
      format: "searchrl-index",
      version: 1,
      kind: "bm25",
      size: 93,
      corpus: { format: "kilt-tsv" },
      dense: null,
    });
    expect(m.bm25).toMatchObject({
      engine: "lancedb-fts",
      analyzer: { name: "searchrl-en-v1", stem: "porter", stopwords: "english" },
      scoring: { k1: 1.2, b: 0.75 },
    });
    expect(readdirSync(dir).sort()).toEqual(["bm25", "manifest.json", "passages.jsonl", "passages.offsets"]);
  });

  it("memory and LanceDB engines return the same passages; raw lines are the corpus lines", async () => {
    const mem = await openRetriever(dir, { bm25Engine: "memory" });
    const lance = await openRetriever(dir, { bm25Engine: "lancedb" });
    const qs = ["alphabet letter vowel", "albedo reflection sunlight", "Gershwin Paris orchestra", "zzzz qqqq"];
    const a = await mem.search(qs, 5);
    const b = await lance.search(qs, 5);
    expect(a.map((l) => l.map((p) => p.id))).toEqual(b.map((l) => l.map((p) => p.id)));
    a.flat().forEach((p, i) => expect(p.score!).toBeCloseTo(b.flat()[i].score!, 3));
    expect(a[3]).toEqual([]);
    expect(a[0].length).toBe(5);
    const lines = readFileSync(KILT_TSV, "utf8").split("\n");
    for (const p of a.flat()) expect(p.raw).toBe(lines[Number(p.id)]);
    expect(a[0][0].title).toBe("A");
    expect(await mem.info()).toMatchObject({ kind: "bm25", size: 93, engine: "memory" });
    expect(await lance.info()).toMatchObject({ kind: "bm25", size: 93, engine: "lancedb" });
    // a batch equals single queries
    for (let i = 0; i < qs.length; i++) expect((await lance.search([qs[i]], 5))[0]).toEqual(b[i]);
    await mem.close();
    await lance.close();
  });

  it("abstract TSV: raw lines (BOM, CSV quoting) are returned verbatim", async () => {
    const d = path.join(tmp("absidx-"), "idx");
    await buildIndex({ corpus: ABS_TSV, out: d, progress: false });
    const r = await openRetriever(d);
    const [res] = await r.search(["Professional Football League of Ukraine"], 1);
    expect(res[0].id).toBe("0");
    expect(res[0].raw).toBe(readFileSync(ABS_TSV, "utf8").split(/\r?\n/)[0]); // CRLF file: the CR is not part of the line
    expect(res[0].title).toBe("Professional Football League of Ukraine");
    await r.close();
  });

  it("clear errors: no manifest, missing corpus, nothing to build, bad mode", async () => {
    const empty = tmp("noidx-");
    await expect(openRetriever(empty)).rejects.toThrow(/manifest\.json is missing/);
    await expect(
      buildIndex({ corpus: "/nonexistent.tsv", out: path.join(empty, "x"), progress: false }),
    ).rejects.toThrow(/does not exist/);
    await expect(
      buildIndex({ corpus: KILT_TSV, out: path.join(empty, "x"), bm25: false, progress: false }),
    ).rejects.toThrow(/nothing to build/);
    await expect(openRetriever(dir, { mode: "dense" })).rejects.toThrow(/no dense part/);
    await expect(openRetriever("web:nope")).rejects.toThrow(/unknown web search provider "nope"/);
    const web = await openRetriever("web:serper");
    expect(web.name).toBe("web:serper");
    await web.close();
  });
});

describe("dense and hybrid index (test-built ONNX model)", () => {
  const topics = [
    ["thames", "river", "london", "bridge"],
    ["python", "programming", "language", "code"],
    ["guitar", "music", "band", "song"],
    ["pharaoh", "egypt", "ahmose", "pyramid"],
    ["citibank", "bank", "founded", "finance"],
  ];
  let corpus: string;
  let model: string;
  let dir: string;
  beforeAll(async () => {
    const root = tmp("denseidx-");
    const rng = new Rng(3);
    const rows: string[] = [];
    for (let i = 0; i < 300; i++) {
      const t = topics[i % topics.length];
      const words = Array.from({ length: 12 }, () => t[rng.int(t.length)]);
      rows.push(JSON.stringify({ id: `p${i}`, contents: `"${t[0]} ${i}"\n${words.join(" ")}` }));
    }
    corpus = path.join(root, "corpus.jsonl");
    writeFileSync(corpus, rows.join("\n") + "\n");
    model = path.join(root, "model");
    await writeTinyEmbeddingModel(model, { words: topics.flat(), hidden: 32, seed: 5 });
    dir = path.join(root, "idx");
    await buildIndex({ corpus, out: dir, bm25: true, dense: { model, preset: "e5" }, progress: false });
  });

  it("builds a hybrid index; dense results equal exact search over the passage embeddings", async () => {
    const m = readIndexManifest(dir);
    expect(m.kind).toBe("hybrid");
    expect(m.dense).toMatchObject({
      encoder: { preset: "e5", queryPrefix: "query: ", pooling: "mean", dim: 32 },
      index: { type: "flat", size: 300 },
    });
    const dense = await openRetriever(dir, { mode: "dense" });
    const emb = await OnnxEmbedder.open(model, embeddingPreset("e5"));
    const [res] = await dense.search(["river in london"], 5);
    const qv = await emb.embedQueries(["river in london"]);
    // Re-embed the stored passages and search exactly.
    const rows = readFileSync(corpus, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; contents: string });
    const pv = await emb.embedPassages(
      rows.map((r) => ({ id: r.id, title: r.contents.split("\n")[0].slice(1, -1), text: r.contents.split("\n")[1] })),
    );
    const want = exactTopK(pv, 32, qv, 5);
    expect(res.map((p) => p.id)).toEqual(want.map((w) => rows[w.row].id));
    res.forEach((p, i) => expect(p.score!).toBeCloseTo(want[i].score, 4));
    // bag-of-words model: the river topic wins
    expect(res[0].title.startsWith("thames")).toBe(true);
    await dense.close();
    await emb.close();
  });

  it("default open is RRF(k=60) of BM25 and dense", async () => {
    const h = await openRetriever(dir);
    expect(h).toBeInstanceOf(HybridRetriever);
    const bm = await openRetriever(dir, { mode: "bm25" });
    const de = await openRetriever(dir, { mode: "dense" });
    const q = ["egypt pharaoh"];
    const [hr] = await h.search(q, 5);
    const [br] = await bm.search(q, 20);
    const [dr] = await de.search(q, 20);
    const fused = new Map<string, number>();
    br.forEach((p, i) => fused.set(p.id, (fused.get(p.id) ?? 0) + 1 / (61 + i)));
    dr.forEach((p, i) => fused.set(p.id, (fused.get(p.id) ?? 0) + 1 / (61 + i)));
    const best = [...fused.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    expect(hr.map((p) => p.score)).toEqual(best.map((b) => b[1]));
    expect(hr[0].title.startsWith("pharaoh")).toBe(true);
    expect((await h.info()).kind).toBe("hybrid");
    for (const r of [h, bm, de]) await r.close();
  });

  it("refuses a different model than the one the index was built with", async () => {
    const other = path.join(tmp("other-"), "m");
    await writeTinyEmbeddingModel(other, { words: ["a", "b"], hidden: 16 });
    await expect(openIndex(dir, { mode: "dense", modelDir: other })).rejects.toThrow(
      /not the model the index was built with/,
    );
  });
});

describe("atomic builds", () => {
  function syntheticTsv(file: string, n: number, seed: number): void {
    const rng = new Rng(seed);
    const lines: string[] = [];
    for (let i = 0; i < n; i++)
      lines.push(`${i}\tTitle ${i}   ${Array.from({ length: 60 }, () => `w${rng.int(5000)}`).join(" ")}`);
    writeFileSync(file, lines.join("\n") + "\n");
  }

  it("a failing build leaves the previous index untouched and no temporary directory", async () => {
    const root = tmp("atomic-");
    const out = path.join(root, "idx");
    await buildIndex({ corpus: KILT_TSV, out, progress: false });
    const bad = path.join(root, "bad.jsonl");
    writeFileSync(bad, '{"contents":"\\"A\\"\\nfine"}\n{"contents": oops}\n');
    await expect(buildIndex({ corpus: bad, out, format: "flashrag", progress: false })).rejects.toThrow(
      /bad\.jsonl:2: invalid JSON/,
    );
    expect(readIndexManifest(out).size).toBe(93);
    expect(readdirSync(root).sort()).toEqual(["bad.jsonl", "idx"]);
  });

  /** Start a child process building `corpus` into `out` (BM25, default engine), to be killed. */
  function spawnBuild(root: string, corpus: string, out: string, segmentSize: number) {
    const script = path.join(root, "child.mts");
    writeFileSync(
      script,
      `import { buildIndex } from ${JSON.stringify(path.resolve(__dirname, "build.ts"))};\n` +
        `await buildIndex({ corpus: process.argv[2], out: process.argv[3], bm25: { postings: { segmentSize: ${segmentSize} } }, progress: false });\n`,
    );
    return spawn(process.execPath, ["--import", "tsx", script, corpus, out], {
      cwd: path.resolve(__dirname, "../.."),
      stdio: "ignore",
    });
  }

  async function waitFor(cond: () => boolean, child: { exitCode: number | null }): Promise<boolean> {
    const started = Date.now();
    while (Date.now() - started < 60_000) {
      if (cond()) return true;
      if (child.exitCode !== null) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }

  it("a killed build (SIGKILL) never leaves a half index; its work directory is resumed or replaced", async () => {
    const root = tmp("kill-");
    const out = path.join(root, "idx");
    await buildIndex({ corpus: KILT_TSV, out, progress: false });
    const big = path.join(root, "big.tsv");
    syntheticTsv(big, 150_000, 1);
    const child = spawnBuild(root, big, out, 1_000_000);
    const partial = path.join(root, ".idx.partial");
    const sawWork = await waitFor(() => existsSync(path.join(partial, "passages.jsonl")), child);
    expect(sawWork).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    // The old index still loads, whole.
    expect(readIndexManifest(out).size).toBe(93);
    const r = await openRetriever(out);
    expect((await r.search(["alphabet"], 1))[0].length).toBe(1);
    await r.close();
    // The work directory stays (no segment finished: nothing to resume) and no per-process temporary is left.
    expect(readdirSync(root).sort()).toEqual([".idx.partial", "big.tsv", "child.mts", "idx"]);
    expect(existsSync(path.join(partial, "build-state.json"))).toBe(false);
    // The next build (another corpus: no checkpoint to resume) starts over in it and moves it into place.
    const m = await buildIndex({ corpus: KILT_TSV, out, limit: 50, progress: false });
    expect(m.size).toBe(50);
    expect(m.build.resumedFromRow).toBeUndefined();
    expect(readdirSync(root).sort()).toEqual(["big.tsv", "child.mts", "idx"]);
  }, 90_000);

  it("a build killed after finished segments resumes from the last one: the same files as an uninterrupted build", async () => {
    const root = tmp("resume-");
    const corpus = path.join(root, "big.tsv");
    syntheticTsv(corpus, 30_000, 2);
    const out = path.join(root, "idx");
    const child = spawnBuild(root, corpus, out, 4000);
    const state = path.join(root, ".idx.partial", "build-state.json");
    const segs = () => {
      try {
        return (JSON.parse(readFileSync(state, "utf8")) as { segments: unknown[] }).segments.length;
      } catch {
        return 0;
      }
    };
    const sawCheckpoint = await waitFor(() => segs() >= 2, child);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    expect(sawCheckpoint).toBe(true);
    expect(existsSync(out)).toBe(false);
    const done = segs();
    const m = await buildIndex({ corpus, out, bm25: { postings: { segmentSize: 4000 } }, progress: false });
    expect(m.build.resumedFromRow).toBeGreaterThanOrEqual(done * 4000);
    expect(m.size).toBe(30_000);
    expect(readdirSync(root).sort()).toEqual(["big.tsv", "child.mts", "idx"]);
    // Reference: the same build, uninterrupted and not resumable.
    const ref = path.join(root, "ref");
    await buildIndex({ corpus, out: ref, bm25: { postings: { segmentSize: 4000 } }, resume: false, progress: false });
    const files = (d: string): string[] =>
      readdirSync(d, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name !== "manifest.json")
        .map((e) => path.relative(d, path.join(e.parentPath, e.name)))
        .sort();
    expect(files(out)).toEqual(files(ref));
    expect(files(out)).toContain(path.join("bm25", "postings", "seg-0007.docs.i32"));
    for (const f of files(out))
      expect(readFileSync(path.join(out, f)).equals(readFileSync(path.join(ref, f))), f).toBe(true);
    const a = await openRetriever(out);
    const b = await openRetriever(ref);
    expect(await a.search(["w12 w345", "w7"], 5)).toEqual(await b.search(["w12 w345", "w7"], 5));
    await a.close();
    await b.close();
  }, 120_000);

  it("the next build removes a dead process's temporary directory (non-resumable builds)", async () => {
    const root = tmp("stale-");
    const out = path.join(root, "idx");
    mkdirSync(path.join(root, ".idx.tmp-999999999-abcd"));
    mkdirSync(path.join(root, `.idx.tmp-${process.pid}-live`));
    expect(await cleanStaleBuilds(out)).toEqual([".idx.tmp-999999999-abcd"]);
    expect(readdirSync(root)).toEqual([`.idx.tmp-${process.pid}-live`]);
  });

  it("a resumable build refuses a work directory held by a live process", async () => {
    const root = tmp("lock-");
    const out = path.join(root, "idx");
    const partial = path.join(root, ".idx.partial");
    mkdirSync(partial);
    writeFileSync(path.join(partial, "build.lock"), String(process.ppid));
    await expect(buildIndex({ corpus: KILT_TSV, out, progress: false })).rejects.toThrow(
      /another build of .*idx is running \(pid \d+/,
    );
  });
});

describe("resume keys", () => {
  it("differ when a nested setting (the analyzer) differs, and not with key order", async () => {
    const { buildKey } = await import("./build-resume.js");
    const a = buildKey({ corpus: KILT_TSV, analyzer: { stem: "porter", stopwords: "english" } });
    const b = buildKey({ corpus: KILT_TSV, analyzer: { stopwords: "english", stem: "porter" } });
    const c = buildKey({ corpus: KILT_TSV, analyzer: { stem: "none", stopwords: "english" } });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(a).toContain('"stem":"porter"');
  });
});
