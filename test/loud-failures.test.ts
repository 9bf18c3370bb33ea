/**
 * Loud failures (issue 16): `searchrl eval`, `data difficulty` and `data rejection-sample` run as child processes
 * against a scripted OpenAI-compatible completions server on loopback (a test double implementing the real HTTP
 * shape, standing in for vLLM & co.). Questions whose generation fails must make the command exit non-zero, say how
 * many failed and that a rerun retries them, and be retried (only them) by that rerun. A server that ignores
 * `stream: true` and answers with one JSON completion must still be read.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli-process.js";
import { tempDirs } from "./temp-dirs.js";
import { EOS, startScriptedOpenAIServer, type ScriptedServer } from "../src/llm/testing/scripted-openai-server.js";
import { TEST_PIECES, VocabTokenizer } from "../src/llm/testing/vocab-tokenizer.js";
import { buildIndex } from "../src/retrieval/index.js";

const tmpDir = tempDirs();
const tok = new VocabTokenizer(TEST_PIECES);
let dir: string;
let dataFile: string;
let indexDir: string;
/** Questions whose prompt contains one of these words get HTTP 400 from the model server. */
const failing = new Set<string>();
let servers: ScriptedServer[] = [];

const answer = ` I know it.</think>\n\n<answer> Paris </answer>${EOS}`;
function script(prompt: string): string {
  for (const w of failing) {
    if (prompt.includes(w)) throw Object.assign(new Error(`scripted refusal for ${w}`), { status: 400 });
  }
  return answer;
}

beforeAll(async () => {
  dir = tmpDir("searchrl-loud-");
  dataFile = path.join(dir, "qa.jsonl");
  writeFileSync(
    dataFile,
    ["Alpha", "Bravo", "Charlie", "Delta"]
      .map((w, i) => JSON.stringify({ idx: i + 1, question: `What is the capital, asks ${w}?`, answer: "Paris" }))
      .join("\n") + "\n",
  );
  indexDir = path.join(dir, "index");
  await buildIndex({
    corpus: [
      {
        id: "1",
        title: "Paris",
        text: "Paris is the capital of France.",
        raw: "1\tParis   Paris is the capital of France.",
      },
    ],
    out: indexDir,
    progress: false,
  });
  servers = [
    await startScriptedOpenAIServer({ tokenizer: tok, script }),
    await startScriptedOpenAIServer({ tokenizer: tok, flavor: "text", ignoreStream: true, script }),
  ];
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const lines = (file: string): Array<Record<string, unknown>> =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("loud failures", () => {
  it("eval exits non-zero when questions failed, names how many, and the rerun retries only them", async () => {
    const out = path.join(dir, "eval", "results.jsonl");
    const args = ["eval", "--dataset", dataFile, "--llm", `${servers[0].url}#m`, "--mode", "no-retrieval"];
    failing.clear();
    failing.add("Bravo").add("Delta");
    const r = await runCli([...args, "--out", out, "--quiet", "--json"]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/2 of 4 question\(s\) failed.*run the same command again to retry them/);
    expect(JSON.parse(r.stdout)).toMatchObject({ count: 2, failed: 2, ran: 4 });
    expect(lines(out).map((x) => x.idx)).toEqual(expect.arrayContaining([1, 3]));
    expect(lines(out)).toHaveLength(2);
    failing.clear();
    const again = await runCli([...args, "--out", out, "--quiet", "--json"]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ count: 4, failed: 0, ran: 2, resumed: 2 });
    expect(
      lines(out)
        .map((x) => x.idx)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
  }, 60_000);

  it("eval reads a server that answers stream requests with one JSON completion (no empty generations)", async () => {
    const out = path.join(dir, "eval-nostream", "results.jsonl");
    failing.clear();
    const r = await runCli([
      "eval",
      "--dataset",
      dataFile,
      "--llm",
      `${servers[1].url}/v1#m`,
      "--mode",
      "no-retrieval",
      "--out",
      out,
      "--quiet",
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(servers[1].requests.some((q) => q.body.stream === true)).toBe(true);
    const recs = lines(out);
    expect(recs).toHaveLength(4);
    for (const rec of recs) expect(rec.pred_ans, JSON.stringify(rec)).toBe(" Paris ");
    expect(JSON.parse(r.stdout)).toMatchObject({ count: 4, em: 1 });
  }, 60_000);

  it("data difficulty exits non-zero for failed questions, does not bucket them, and retries them", async () => {
    const out = path.join(dir, "difficulty.jsonl");
    const args = ["data", "difficulty", "--llm", `${servers[0].url}#m`, "--retriever", indexDir, "--data", dataFile];
    const rest = ["--n", "3", "--out", out, "--quiet", "--seed", "1"];
    failing.clear();
    failing.add("Charlie");
    const r = await runCli([...args, ...rest]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/1 of 4 question\(s\) failed.*run the same command again to retry them/);
    expect(
      lines(out)
        .map((x) => x.idx)
        .sort(),
    ).toEqual([1, 2, 4]);
    failing.clear();
    const again = await runCli([...args, ...rest]);
    expect(again.code, again.stderr).toBe(0);
    expect(
      lines(out)
        .map((x) => x.idx)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
    expect(lines(out).every((x) => x.bucket === "easy")).toBe(true);
  }, 60_000);

  it("data rejection-sample exits non-zero for failed questions, does not mark them tried, and retries them", async () => {
    const out = path.join(dir, "rs.jsonl");
    const args = [
      "data",
      "rejection-sample",
      "--llm",
      `${servers[0].url}#m`,
      "--retriever",
      indexDir,
      "--protocol",
      "r1-searcher",
      "--data",
      dataFile,
      "--n",
      "2",
      "--out",
      out,
      "--quiet",
    ];
    failing.clear();
    failing.add("Alpha");
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/1 of 4 question\(s\) failed.*run the same command again to retry them/);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toMatchObject({ failed: 1, kept: 3 });
    failing.clear();
    const again = await runCli(args);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout.trim().split("\n").pop()!)).toMatchObject({ failed: 0, kept: 1, skipped: 3 });
    expect(
      lines(out)
        .map((x) => x.question_id)
        .sort(),
    ).toEqual(["1", "2", "3", "4"]);
  }, 60_000);
});
