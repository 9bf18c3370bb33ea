/**
 * Exports for veRL (Parquet, read back with the hyparquet reader), OpenRLHF and FlashRAG, from the upstream
 * R1-Searcher JSONL and from world question files; and the `searchrl data world / export` commands end to end.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { register } from "../src/cli/commands/data.js";
import type { CommandGroups } from "../src/cli/groups.js";
import {
  checkWorld,
  generateWorld,
  loadWorldDir,
  normalizeQuestionRow,
  readParquetRows,
  readQuestionRows,
  readWorldQuestions,
  splitFromFileName,
  toFlashRagRows,
  toOpenRlhfRows,
  toVerlRows,
  worldConfig,
  writeExport,
  type WorldSummary,
} from "../src/data/index.js";
import { getProtocol } from "../src/protocol/index.js";
import { readJsonlAll } from "../src/util/jsonl.js";

const REPO = path.resolve(__dirname, "..");
const HOTPOT = path.join(REPO, "data/r1-searcher/eval_set/hotpotqa_500.jsonl");
const STAGE1 = path.join(REPO, "data/r1-searcher/training_set/stage_1.jsonl");
const tmp = mkdtempSync(path.join(tmpdir(), "searchrl-data-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const r1 = getProtocol("r1-searcher");
const plus = getProtocol("r1-searcher-plus");

describe("question rows", () => {
  it("normalizes upstream, world and FlashRAG rows and names what is wrong", () => {
    expect(normalizeQuestionRow({ idx: 3, question: "q?", answer: "a" }, 0)).toMatchObject({ idx: 3, answers: ["a"] });
    expect(normalizeQuestionRow({ idx: 4, question: "q?", answer: false }, 0).answers).toEqual(["no"]);
    expect(normalizeQuestionRow({ id: "x1", question: "q?", golden_answers: ["a", "b"] }, 0)).toMatchObject({
      idx: "x1",
      answers: ["a", "b"],
    });
    expect(() => normalizeQuestionRow({ idx: 1, answer: "a" }, 0)).toThrow(/question/);
    expect(() => normalizeQuestionRow({ idx: 1, question: "q" }, 0)).toThrow(/no gold answer/);
  });

  it("reports the file and row of a bad line", async () => {
    const bad = path.join(tmp, "bad.jsonl");
    writeFileSync(bad, '{"idx":1,"question":"a?","answer":"x"}\n{"idx":2,"answer":"y"}\n');
    await expect(readQuestionRows(bad)).rejects.toThrow(/bad\.jsonl: row 2: question/);
  });

  it("infers splits from file and folder names", () => {
    expect(splitFromFileName("/x/train.jsonl")).toBe("train");
    expect(splitFromFileName("/x/world_dev.jsonl")).toBe("dev");
    expect(splitFromFileName(HOTPOT)).toBe("test");
    expect(splitFromFileName(STAGE1)).toBe("train");
    expect(splitFromFileName("/x/questions.jsonl")).toBeUndefined();
  });
});

describe("veRL Parquet", () => {
  it("writes the upstream HotpotQA eval set and reads back every nested field", async () => {
    const rows = await readQuestionRows(HOTPOT);
    const out = path.join(tmp, "hotpot.parquet");
    const n = await writeExport("verl", rows, out, {
      protocol: r1,
      promptOptions: { variant: "eval-v0" },
      dataSource: "hotpotqa",
      defaultSplit: "test",
    });
    expect(n).toBe(500);
    const back = await readParquetRows(out);
    expect(back).toHaveLength(500);
    for (const i of [0, 1, 250, 499]) {
      const r = back[i] as {
        data_source: string;
        prompt: Array<{ role: string; content: string }>;
        ability: string;
        reward_model: { style: string; ground_truth: { target: string[] } };
        extra_info: { split: string; index: number; idx: string; question: string };
      };
      expect(r.data_source).toBe("hotpotqa");
      expect(r.prompt).toEqual([{ role: "user", content: r1.buildPrompt(rows[i].question, { variant: "eval-v0" }) }]);
      expect(r.ability).toBe("fact-reasoning");
      expect(r.reward_model).toEqual({ style: "rule", ground_truth: { target: rows[i].answers } });
      expect(r.extra_info).toEqual({ split: "test", index: i, idx: String(rows[i].idx), question: rows[i].question });
    }
  });

  it("keeps multi-answer targets and chat prompts intact", async () => {
    const rows = [
      normalizeQuestionRow({ id: "a", question: 'Who? "quoted" \u00e9', golden_answers: ["x", "y", "z"] }, 0),
      normalizeQuestionRow({ idx: 9, question: "Where?", answer: "w" }, 1),
    ];
    const out = path.join(tmp, "multi.parquet");
    await writeExport("verl", rows, out, { protocol: plus, dataSource: "mix", split: "train" });
    const back = (await readParquetRows(out)) as unknown as ReturnType<typeof toVerlRows>;
    expect(back).toEqual(toVerlRows(rows, { protocol: plus, dataSource: "mix", split: "train" }));
    expect(back[0].reward_model.ground_truth.target).toEqual(["x", "y", "z"]);
    expect(back[0].prompt[0].content).toContain('Who? "quoted" \u00e9');
  });

  it("writes the multi-turn tool layout with its nested create_kwargs", async () => {
    const rows = await readQuestionRows(STAGE1, 4);
    const out = path.join(tmp, "tools.parquet");
    const o = { protocol: getProtocol("search-r1"), dataSource: "searchR1_hotpotqa", verlTools: true };
    await writeExport("verl", rows, out, o);
    const back = await readParquetRows(out);
    expect(back).toEqual(toVerlRows(rows, o));
    expect(back[2]).toMatchObject({
      extra_info: {
        need_tools_kwargs: true,
        tools_kwargs: {
          search: {
            create_kwargs: {
              ground_truth: { target: rows[2].answers },
              question: rows[2].question,
              data_source: "searchR1_hotpotqa",
            },
          },
        },
      },
    });
  });

  it("writes JSON rows when the output ends in .jsonl", async () => {
    const rows = await readQuestionRows(STAGE1, 5);
    const out = path.join(tmp, "stage1.verl.jsonl");
    await writeExport("verl", rows, out, { protocol: r1, dataSource: "stage1" });
    const back = await readJsonlAll<{ extra_info: { idx: string } }>(out);
    expect(back.map((r) => r.extra_info.idx)).toEqual(rows.map((r) => String(r.idx)));
  });
});

describe("OpenRLHF and FlashRAG rows", () => {
  const world = generateWorld(worldConfig("tiny", 5));
  const worldRows = world.questions
    .filter((q) => q.metadata.split === "test")
    .map((q, i) => normalizeQuestionRow(JSON.parse(JSON.stringify(q)), i));

  it("OpenRLHF rows keep idx and the raw question (R1-Searcher fork) plus the rendered prompt and the label", async () => {
    const rows = await readQuestionRows(STAGE1, 3);
    const out = toOpenRlhfRows(rows, { protocol: r1, dataSource: "s" });
    expect(out[0]).toEqual({
      idx: rows[0].idx,
      question: rows[0].question,
      prompt: r1.buildPrompt(rows[0].question),
      answer: rows[0].answers[0],
    });
    const w = toOpenRlhfRows(worldRows, { protocol: r1, dataSource: "w" });
    expect(w[0].metadata).toMatchObject({ split: "test" });
  });

  it("FlashRAG rows carry golden_answers and the world metadata", () => {
    const out = toFlashRagRows(worldRows, { protocol: r1, dataSource: "w" });
    expect(out[0].id).toBe("test_0");
    expect(out[0].golden_answers).toEqual([worldRows[0].answers[0]]);
    expect(out[0].metadata).toMatchObject({ idx: worldRows[0].idx, split: "test", steps: expect.any(Array) });
  });
});

function program(): Command {
  const p = new Command("searchrl").exitOverride();
  const groups: CommandGroups = {
    serve: p.command("serve"),
    data: p.command("data").exitOverride(),
    corpus: p.command("corpus"),
    index: p.command("index"),
    model: p.command("model"),
  };
  register(p, groups);
  for (const c of groups.data.commands) c.exitOverride();
  return p;
}

async function run(args: string[]): Promise<string> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    await program().parseAsync(["node", "searchrl", ...args]);
  } finally {
    process.stdout.write = orig;
  }
  return chunks.join("");
}

describe("searchrl data world / export", () => {
  const dir = path.join(tmp, "world");

  it("writes a world directory that loads back identical and exports to Parquet", async () => {
    const out = await run(["data", "world", "--preset", "tiny", "--seed", "11", "--out", dir, "--prior-count", "5"]);
    expect(out).toMatch(/world tiny seed 11/);
    const summary = JSON.parse(readFileSync(path.join(dir, "world.json"), "utf8")) as WorldSummary;
    expect(summary.config.seed).toBe(11);
    expect(summary.stats.questions.test.total).toBe(30);
    for (const f of Object.values(summary.files)) expect(existsSync(path.join(dir, f)), f).toBe(true);

    const loaded = await loadWorldDir(dir);
    expect(checkWorld(loaded)).toEqual([]);
    const test = await readWorldQuestions(path.join(dir, "test.jsonl"));
    expect(test).toEqual(loaded.questions.filter((q) => q.metadata.split === "test"));
    const tsv = readFileSync(path.join(dir, "corpus.tsv"), "utf8").trimEnd().split("\n");
    expect(tsv).toHaveLength(loaded.passages.length);
    expect(tsv[0]).toBe(`0\t${loaded.passages[0].title}   ${loaded.passages[0].text}`);
    const jsonl = await readJsonlAll<{ id: string; contents: string }>(path.join(dir, "corpus.jsonl"));
    expect(jsonl[3]).toEqual({ id: "3", contents: `"${loaded.passages[3].title}"\n${loaded.passages[3].text}` });
    const prior = await readJsonlAll<{ source: string; protocol: string }>(
      path.join(dir, "prior.r1-searcher-plus.jsonl"),
    );
    expect(prior).toHaveLength(5);
    expect(prior.every((d) => d.source === "protocol-prior" && d.protocol === "r1-searcher-plus")).toBe(true);

    const pq = path.join(dir, "train.parquet");
    const msg = await run([
      "data",
      "export",
      "--format",
      "verl",
      "--in",
      path.join(dir, "train.jsonl"),
      "--out",
      pq,
      "--protocol",
      "r1-searcher-plus",
    ]);
    expect(msg).toMatch(/wrote 60 verl rows/);
    const back = await readParquetRows(pq);
    expect(back).toHaveLength(60);
    expect(back[0]).toMatchObject({ data_source: "searchrl_world", extra_info: { split: "train", index: 0 } });
  });

  it("refuses an edited world directory and bad options with a clear message", async () => {
    const tsv = path.join(dir, "corpus.tsv");
    writeFileSync(tsv, readFileSync(tsv, "utf8").replace("\t", "\tX"));
    await expect(loadWorldDir(dir)).rejects.toThrow(/differs from the world/);
    await expect(run(["data", "world", "--preset", "tiny", "--seed", "-1", "--out", dir])).rejects.toThrow(/--seed/);
    await expect(run(["data", "world", "--preset", "tiny", "--questions", "1,2", "--out", dir])).rejects.toThrow(
      /--questions/,
    );
    await expect(
      run([
        "data",
        "export",
        "--format",
        "verl",
        "--in",
        path.join(tmp, "missing.jsonl"),
        "--out",
        path.join(tmp, "x.parquet"),
      ]),
    ).rejects.toThrow(/missing\.jsonl/);
  });
});
