/**
 * Difficulty bucketing: the pure rules (upstream thresholds easy < 10, medium 10–20, hard > 20), and a full run
 * through the real rollout engine and OpenAI-compatible client against a scripted completions server on loopback
 * (a test double implementing the OpenAI/vLLM HTTP shape), including resuming from the output file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { register } from "../src/cli/commands/data.js";
import type { CommandGroups } from "../src/cli/groups.js";
import {
  bucketCounts,
  difficultyBucket,
  difficultyRecord,
  normalizeQuestionRow,
  rolloutsNeeded,
  runDifficulty,
  generateWorld,
  worldConfig,
  writeBucketFiles,
  writeWorldDir,
  type DifficultyRecord,
} from "../src/data/index.js";
import { buildIndex } from "../src/retrieval/index.js";
import { countOccurrences } from "../src/util/pystr.js";
import { createOpenAIBackend } from "../src/llm/openai.js";
import { EOS, startScriptedOpenAIServer } from "../src/llm/testing/scripted-openai-server.js";
import { TEST_PIECES, VocabTokenizer } from "../src/llm/testing/vocab-tokenizer.js";
import { getProtocol } from "../src/protocol/index.js";
import { KeywordRetriever } from "../src/rollout/testing/keyword-retriever.js";
import { readJsonlAll } from "../src/util/jsonl.js";
import { hashSeed } from "../src/util/rng.js";

const tmp = mkdtempSync(path.join(tmpdir(), "searchrl-difficulty-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("difficulty rules", () => {
  it("counts rollouts until the first correct one, or the geometric mean wait", () => {
    expect(rolloutsNeeded([false, false, true, false])).toBe(3);
    expect(rolloutsNeeded([true])).toBe(1);
    expect(rolloutsNeeded([false, false])).toBeNull();
    expect(rolloutsNeeded([false, true, false, true], "expected")).toBe(2);
    expect(rolloutsNeeded([false, false, false, true], "expected")).toBe(4);
  });

  it("buckets by the upstream thresholds and by configured ones", () => {
    expect(difficultyBucket(1)).toBe("easy");
    expect(difficultyBucket(9)).toBe("easy");
    expect(difficultyBucket(10)).toBe("medium");
    expect(difficultyBucket(20)).toBe("medium");
    expect(difficultyBucket(21)).toBe("hard");
    expect(difficultyBucket(null)).toBe("unsolved");
    const t = { easyBelow: 2, hardAbove: 4 };
    expect([1, 2, 4, 5].map((n) => difficultyBucket(n, t))).toEqual(["easy", "medium", "medium", "hard"]);
    expect(() => difficultyBucket(1, { easyBelow: 9, hardAbove: 3 })).toThrow(/thresholds/);
  });

  it("builds records and counts", () => {
    const row = normalizeQuestionRow({ idx: 1, question: "q", answer: "a" }, 0);
    const rec = difficultyRecord(
      row,
      Array.from({ length: 30 }, (_, i) => i >= 14),
      [1, 3],
    );
    expect(rec).toMatchObject({ n: 30, needed: 15, bucket: "medium", meanRetrievals: 2 });
    expect(bucketCounts([rec, { bucket: "easy" }, { bucket: "easy" }] as DifficultyRecord[])).toEqual({
      easy: 2,
      medium: 1,
      hard: 0,
      unsolved: 0,
    });
  });
});

describe("runDifficulty with the rollout engine", () => {
  it("samples N rollouts per question over HTTP, buckets them, and resumes from its output", async () => {
    const N = 24;
    const SEED = 5;
    // Question i answers correctly from sample firstCorrect[i] (0-based) on; -1 = never.
    const firstCorrect: Record<string, number> = { "1": 0, "2": 11, "3": 22, "4": -1 };
    const rows = Object.keys(firstCorrect).map((idx, i) =>
      normalizeQuestionRow({ idx: Number(idx), question: `Where is place number ${idx}?`, answer: `Town${idx}` }, i),
    );
    const sample = new Map<number, [string, number]>();
    for (const idx of Object.keys(firstCorrect))
      for (let k = 0; k < N; k++) sample.set(hashSeed(SEED, `${idx}#${k}`, 0), [idx, k]);
    const tok = new VocabTokenizer(TEST_PIECES);
    const srv = await startScriptedOpenAIServer({
      tokenizer: tok,
      script: (_prompt, req) => {
        const [idx, k] = sample.get(req.seed as number)!;
        const ok = firstCorrect[idx] >= 0 && k >= firstCorrect[idx];
        return ` I think.</think>\n\n<answer> ${ok ? `Town${idx}` : "Elsewhere"} </answer>${EOS}`;
      },
    });
    try {
      const backend = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, backoffMs: 1 });
      const out = path.join(tmp, "difficulty.jsonl");
      const opts = {
        rows,
        protocol: getProtocol("r1-searcher"),
        backend,
        retriever: new KeywordRetriever([]),
        n: N,
        sampling: { seed: SEED },
        chunk: 2,
        out,
      };
      const first = await runDifficulty({ ...opts, rows: rows.slice(0, 2) });
      expect(first.map((r) => r.bucket)).toEqual(["easy", "medium"]);
      const requests = srv.requests.length;
      expect(requests).toBe(2 * N);
      const all = await runDifficulty(opts);
      expect(srv.requests.length - requests).toBe(2 * N); // the first two questions were not sampled again
      expect(all.map((r) => [r.idx, r.needed, r.bucket])).toEqual([
        [1, 1, "easy"],
        [2, 12, "medium"],
        [3, 23, "hard"],
        [4, null, "unsolved"],
      ]);
      expect((await readJsonlAll<DifficultyRecord>(out)).map((r) => r.idx)).toEqual([1, 2, 3, 4]);
      const counts = await writeBucketFiles(path.join(tmp, "buckets"), rows, all);
      expect(counts).toEqual({ easy: 1, medium: 1, hard: 1, unsolved: 1 });
      expect(await readJsonlAll(path.join(tmp, "buckets", "hard.jsonl"))).toEqual([rows[2].raw]);
    } finally {
      await srv.close();
    }
  });
});

describe("searchrl data difficulty", () => {
  it("runs end to end: HTTP model, BM25 index over a world corpus, bucket files", async () => {
    const dir = path.join(tmp, "world");
    const world = generateWorld(worldConfig("tiny", 2));
    await writeWorldDir(world, dir, { priorProtocols: [] });
    const index = path.join(tmp, "index");
    await buildIndex({ corpus: path.join(dir, "corpus.tsv"), out: index, progress: false });
    const qs = world.questions.filter((q) => q.metadata.split === "test").slice(0, 3);
    const N = 4;
    const SEED = 9;
    const firstCorrect = new Map<string, number>([
      [String(qs[0].idx), 0],
      [String(qs[1].idx), 2],
      [String(qs[2].idx), -1],
    ]);
    const sample = new Map<number, [string, number, number]>();
    for (const [idx] of firstCorrect)
      for (let k = 0; k < N; k++)
        for (const turn of [0, 1]) sample.set(hashSeed(SEED, `${idx}#${k}`, turn), [idx, k, turn]);
    const r1 = getProtocol("r1-searcher");
    const srv = await startScriptedOpenAIServer({
      tokenizer: new VocabTokenizer(TEST_PIECES),
      script: (prompt, req) => {
        const [idx, k, turn] = sample.get(req.seed as number)!;
        const q = qs.find((x) => String(x.idx) === idx)!;
        // First turn: search with the first step's query; then answer (the documents must be in the prompt by then).
        if (turn === 1) expect(countOccurrences(prompt, `${r1.queryClose}\n\n`)).toBe(1);
        if (turn === 0) return ` Let me search. ${r1.queryOpen} ${q.metadata.steps[0].query}${r1.queryClose}`;
        const ok = firstCorrect.get(idx)! >= 0 && k >= firstCorrect.get(idx)!;
        return ` Found it.</think>\n\n<answer> ${ok ? q.answer : "Nobody"} </answer>${EOS}`;
      },
    });
    try {
      const data = path.join(tmp, "some.jsonl");
      writeFileSync(data, qs.map((q) => JSON.stringify(q)).join("\n") + "\n");
      const p = new Command("searchrl").exitOverride();
      const groups = {
        serve: p.command("serve"),
        data: p.command("data"),
        corpus: p.command("corpus"),
        index: p.command("index"),
        model: p.command("model"),
      } as CommandGroups;
      register(p, groups);
      const out = path.join(tmp, "cli-difficulty.jsonl");
      const lines: string[] = [];
      const orig = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stdout.write;
      try {
        await p.parseAsync([
          "node",
          "searchrl",
          "data",
          "difficulty",
          "--llm",
          `${srv.url}/v1#m`,
          "--retriever",
          index,
          "--data",
          data,
          "--n",
          String(N),
          "--out",
          out,
          "--easy-below",
          "2",
          "--hard-above",
          "2",
          "--seed",
          String(SEED),
          "--buckets-dir",
          path.join(tmp, "cli-buckets"),
          "--quiet",
        ]);
      } finally {
        process.stdout.write = orig;
      }
      expect(lines.join("")).toMatch(/3 questions, 4 rollouts each: easy 1, medium 0, hard 1, unsolved 1/);
      const recs = await readJsonlAll<DifficultyRecord>(out);
      expect(recs.map((r) => r.bucket)).toEqual(["easy", "hard", "unsolved"]);
      expect(recs.every((r) => r.meanRetrievals === 1)).toBe(true);
      expect(readFileSync(path.join(tmp, "cli-buckets", "unsolved.jsonl"), "utf8")).toContain(qs[2].question);
    } finally {
      await srv.close();
    }
  });
});
