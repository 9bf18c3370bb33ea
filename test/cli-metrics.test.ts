/** `searchrl metrics` spawned as a real process. */
import { runCli } from "./cli-process.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { aggregateMetrics } from "../src/metrics/index.js";

const dir = mkdtempSync(path.join(tmpdir(), "searchrl-cli-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

function write(name: string, lines: string[]): string {
  const f = path.join(dir, name);
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

const recsA = [
  { question: "Q1", answer: "William Shakespeare", pred_ans: "Shakespeare", stop_reason_final: "finished" },
  { question: "Q2", answer: "A Sangre Fría", pred_ans: "sangre fría", stop_reason_final: "finished" },
  { question: "Q3", answer: "Paris", pred_ans: "I don't know.", stop_reason_final: "shot_down" },
  { question: "Q4", answer: "yes", pred_ans: "True", stop_reason_final: "finished" },
];
const recsB = recsA.map((r, i) => ({ ...r, gpt4o_output: i % 2 === 0 ? "True" : "False" }));

describe("searchrl metrics", () => {
  const a = write(
    "a.jsonl",
    recsA.map((r) => JSON.stringify(r)),
  );
  const b = write("b.jsonl", ["", ...recsB.map((r) => JSON.stringify(r))]);

  it("--json prints one object per file with fractions, judge null when absent", async () => {
    const r = await run(["metrics", a, b, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    const exp = aggregateMetrics(recsA);
    expect(rows[0]).toEqual({
      file: a,
      count: 4,
      em: exp.em,
      cem: exp.cem,
      f1: exp.f1,
      precision: exp.precision,
      recall: exp.recall,
      judge: null,
    });
    expect(rows[0].em).toBe(0.5); // "sangre fría" and True→yes match exactly
    expect(rows[0].cem).toBe(0.5);
    expect(rows[1].judge).toBe(0.5);
    expect(Object.keys(rows[1])).toEqual(["file", "count", "em", "cem", "f1", "precision", "recall", "judge"]);
  });

  it("human output and --limit", async () => {
    const r = await run(["metrics", b, "--limit", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(b);
    expect(r.stdout).toMatch(/records\s+1\n/);
    expect(r.stdout).toMatch(/F1\s+66\.7\n/);
    expect(r.stdout).toMatch(/judge\s+100\.0/);
    expect(r.stdout).toContain("upstream   em:0.0, cem:0.0, f1:66.7, acc_num:0");
  });

  it("--help says only the first 2,000 records are read", async () => {
    const r = await run(["metrics", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("only the first 2,000 records");
  });

  it("bad files: missing, invalid JSON line, missing field → error naming file and line, exit 1", async () => {
    const missing = path.join(dir, "nope.jsonl");
    const bad = write("bad.jsonl", [JSON.stringify(recsA[0]), JSON.stringify(recsA[1]), "{not json"]);
    const noPred = write("nopred.jsonl", [JSON.stringify(recsA[0]), JSON.stringify({ question: "q", answer: "a" })]);
    const [m, j, f] = await Promise.all([
      run(["metrics", missing]),
      run(["metrics", bad]),
      run(["metrics", noPred, "--json"]),
    ]);
    expect(m.code).toBe(1);
    expect(m.stderr).toContain(`${missing}: no such file`);
    expect(j.code).toBe(1);
    expect(j.stderr).toContain(`${bad}:3: invalid JSON`);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain(`${noPred}:2: invalid result record (pred_ans:`);
    expect(f.stdout).toBe("");
  });
});

describe("searchrl metrics on searchrl result files", () => {
  it("prints the mean retrieval count when records carry `retrievals`", async () => {
    const recs = recsA.map((r, i) => ({ ...r, retrievals: i }));
    const f = write(
      "c.jsonl",
      recs.map((r) => JSON.stringify(r)),
    );
    const human = await run(["metrics", f]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/retrievals\s+1\.50\s/);
    const json = await run(["metrics", f, "--json"]);
    expect(JSON.parse(json.stdout.trim()).retrievals).toBeCloseTo(1.5, 10);
    const upstream = await run([
      "metrics",
      write(
        "d.jsonl",
        recsA.map((r) => JSON.stringify(r)),
      ),
      "--json",
    ]);
    expect(JSON.parse(upstream.stdout.trim())).not.toHaveProperty("retrievals");
  });
});
