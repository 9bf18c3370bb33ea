/**
 * `searchrl quickstart --preset micro`: the whole pipeline at a test size, through the real CLI (world, BM25 index,
 * tokenizer, pre-training, both R1-Searcher RL stages, rejection sampling → SFT → RL++, evaluation, report), at the
 * preset's default seed. Checks that every stage ran and left its files, that results.json and report.html are well
 * formed, that commands.sh is a valid script whose lines reproduce the evaluations, that the RL stages moved the reward
 * (not that they reached a target), that a second run resumes (skips every finished stage) and that a failed stage
 * fails the same way when it is run again.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT, runCli } from "./cli-process.js";
import { QUICKSTART_STAGES, QUICKSTART_SYSTEMS, quickstartConfig } from "../src/quickstart/index.js";
import { AgentRunsStore } from "../src/server/agent-data.js";

const out = path.join(mkdtempSync(path.join(os.tmpdir(), "searchrl-quickstart-")), "qs");

const readJsonl = (f: string) =>
  readFileSync(f, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

let first: { code: number | null; stdout: string; stderr: string };

beforeAll(async () => {
  // the preset's default seed (1): every preset runs at its default seed
  first = await runCli(["quickstart", "--preset", "micro", "--out", out, "--quiet", "--json"]);
}, 300_000);

describe("searchrl quickstart --preset micro", () => {
  it("runs every stage and records it in state.json", () => {
    expect(first.code, first.stderr).toBe(0);
    const state = JSON.parse(readFileSync(path.join(out, "state.json"), "utf8"));
    expect(state.config.preset).toBe("micro");
    expect(state.config.seed).toBe(1);
    for (const s of QUICKSTART_STAGES) {
      expect(state.stages[s]?.done, `stage ${s}`).toBe(true);
      expect(state.stages[s].seconds).toBeGreaterThanOrEqual(0);
    }
    for (const s of QUICKSTART_STAGES) expect(first.stderr).toContain(`] ${s}:`);
  });

  it("leaves the files of every stage: world, index, tokenizer, runs with checkpoints, configs, eval results", () => {
    for (const f of [
      "world/world.json",
      "world/corpus.tsv",
      "world/test.jsonl",
      "index/manifest.json",
      "tokenizer/tokenizer.json",
      "data/pretrain.jsonl",
      "data/plus-cold-start.jsonl",
    ]) {
      expect(existsSync(path.join(out, f)), f).toBe(true);
    }
    for (const run of ["pretrain", "r1-stage1", "r1-stage2", "plus-sft", "plus-rl"]) {
      const dir = path.join(out, "runs", run);
      expect(readFileSync(path.join(dir, "checkpoints", "latest"), "utf8").trim()).toMatch(/^step-\d{6}$/);
      expect(readJsonl(path.join(dir, "metrics.jsonl")).length).toBeGreaterThan(0);
      expect(existsSync(path.join(out, "configs", `${run}.json`)), `config of ${run}`).toBe(true);
    }
    // the R1-Searcher++ RL questions: the RL train questions + plus.rlSingle single-hop questions (micro: 20)
    const rlRows = readJsonl(path.join(out, "data", "rl-train.jsonl"));
    const plusRlRows = readJsonl(path.join(out, "data", "plus-rl-train.jsonl"));
    expect(plusRlRows.length).toBe(rlRows.length + quickstartConfig("micro", 1).plus.rlSingle);
    expect(plusRlRows.filter((r) => String(r.idx).startsWith("single-")).length).toBe(20);
    expect(JSON.parse(readFileSync(path.join(out, "configs", "plus-rl.json"), "utf8")).data.path).toBe(
      "../data/plus-rl-train.jsonl",
    );
    // RL runs log their samples (browsable with `searchrl ui --runs OUT/runs`)
    expect(readdirSync(path.join(out, "runs", "r1-stage1", "samples")).length).toBeGreaterThan(0);
    expect(readFileSync(path.join(out, "configs", "commands.sh"), "utf8")).toContain(
      "searchrl train --config configs/r1-stage2.json",
    );
    const cfg = quickstartConfig("micro", 1);
    for (const sys of QUICKSTART_SYSTEMS) {
      const rows = readJsonl(path.join(out, "eval", `${sys}.results.jsonl`));
      expect(rows.length, sys).toBe(cfg.eval.limit);
      for (const r of rows) {
        expect(typeof r.pred_ans).toBe("string");
        expect([0, 1]).toContain(r.cem);
        expect(typeof r.retrievals).toBe("number");
      }
    }
    // the baselines: no retrieval at all / exactly one (the system's) retrieval per question
    expect(readJsonl(path.join(out, "eval", "no-search.results.jsonl")).every((r) => r.retrievals === 0)).toBe(true);
    expect(readJsonl(path.join(out, "eval", "naive-rag.results.jsonl")).every((r) => r.retrievals === 1)).toBe(true);
  });

  it("writes a well-formed results.json whose numbers match the evaluation files", () => {
    const res = JSON.parse(readFileSync(path.join(out, "results.json"), "utf8"));
    expect(res.format).toBe("searchrl-quickstart-results");
    expect(Object.keys(res.systems).sort()).toEqual([...QUICKSTART_SYSTEMS].sort());
    for (const sys of QUICKSTART_SYSTEMS) {
      const rows = readJsonl(path.join(out, "eval", `${sys}.results.jsonl`));
      const cem = rows.reduce((a, r) => a + (r.cem as number), 0) / rows.length;
      const ret = rows.reduce((a, r) => a + (r.retrievals as number), 0) / rows.length;
      expect(res.systems[sys].cem).toBeCloseTo(cem, 10);
      expect(res.systems[sys].retrievals).toBeCloseTo(ret, 10);
    }
    // recall-or-search per fact: every test step of the evaluated questions counted once per kind; R1-Searcher's
    // format has no recall block; the baselines have no breakdown
    const world = readJsonl(path.join(out, "world", "test.jsonl"));
    const stepsOf = new Map(
      world.map((q) => [String(q.idx), (q.metadata as { steps: Array<{ internal: boolean }> }).steps]),
    );
    const evaluated = readJsonl(path.join(out, "eval", "plus-rl.results.jsonl")).flatMap(
      (r) => stepsOf.get(String(r.idx)) ?? [],
    );
    for (const sys of ["pretrained-search", "r1-stage1", "r1-stage2", "plus-sft", "plus-rl"]) {
      const st = res.systems[sys].steps;
      expect(st.internal.steps, sys).toBe(evaluated.filter((x) => x.internal).length);
      expect(st.external.steps, sys).toBe(evaluated.filter((x) => !x.internal).length);
      for (const u of [st.internal, st.external])
        for (const k of ["recalled", "recalledCorrect", "searched"]) {
          expect(u[k]).toBeGreaterThanOrEqual(0);
          expect(u[k]).toBeLessThanOrEqual(1);
        }
      if (sys.startsWith("r1") || sys === "pretrained-search")
        expect(st.internal.recalled + st.external.recalled, sys).toBe(0);
    }
    expect(res.systems["no-search"].steps).toBeUndefined();
    const c = res.claims;
    expect(c.r1BeatsBaselines.pass).toBe(
      c.r1BeatsBaselines.r1 > Math.max(c.r1BeatsBaselines.noSearch, c.r1BeatsBaselines.naiveRag),
    );
    expect(typeof c.plusFewerRetrievals.reduction).toBe("number");
    // claim 3, RL is the teacher: R1-Searcher after both RL stages vs the pre-trained model with the same search prompt
    expect(c.rlIsTheTeacher.r1Cem).toBe(res.systems["r1-stage2"].cem);
    expect(c.rlIsTheTeacher.pretrainedCem).toBe(res.systems["pretrained-search"].cem);
    expect(c.rlIsTheTeacher.gain).toBeCloseTo(100 * (c.rlIsTheTeacher.r1Cem - c.rlIsTheTeacher.pretrainedCem), 10);
    expect(c.rlIsTheTeacher.threshold).toBe(10);
    expect(c.rlIsTheTeacher.pass).toBe(c.rlIsTheTeacher.gain >= 10);
    const cfg = quickstartConfig("micro", 1);
    const steps: Record<string, number> = {
      "r1-stage1": cfg.r1Stage1.steps,
      "r1-stage2": cfg.r1Stage2.steps,
      "plus-rl": cfg.plus.rl.steps,
    };
    for (const [stage, n] of Object.entries(steps)) expect(res.curves[stage].length, stage).toBe(n);
    expect(res.curves.pretrain.length).toBeGreaterThan(0);
    // the --json summary printed on stdout is the same
    const printed = JSON.parse(first.stdout);
    expect(printed.claims).toEqual(res.claims);
  });

  it("writes a self-contained report.html with the tables and SVG curves", () => {
    const html = readFileSync(path.join(out, "report.html"), "utf8");
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain("R1-Searcher (stage 2)");
    expect(html).toContain("R1-Searcher++ (RL)");
    expect(html).toContain("Recall or search");
    expect(html).toContain("3. RL is the teacher:");
    // the data table shows labelled values, not JSON objects
    const data = html.slice(html.indexOf("<h2>Data, memory probe"), html.indexOf("<h2>Timings"));
    expect(data).not.toMatch(/[{}]|&quot;/);
    expect(data).toContain('<span class="k">test questions</span> 16');
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(6);
    expect(html).not.toMatch(/<script|<link |src="http/);
  });

  it("writes commands.sh as a valid script whose lines run as written and reproduce the evaluations", () => {
    const file = path.join(out, "configs", "commands.sh");
    const text = readFileSync(file, "utf8");
    const sh = (args: string[], input?: string) => spawnSync("sh", args, { cwd: out, input, encoding: "utf8" });
    const check = sh(["-n", file]);
    expect(check.status, check.stderr).toBe(0);
    // the commented serve lines run as written once their "# " is removed
    const serve = text.split("\n").filter((l) => l.startsWith("# npx searchrl serve agent"));
    expect(serve.length).toBe(2);
    const serveCheck = sh(["-n"], serve.map((l) => l.slice(2)).join("\n") + "\n");
    expect(serveCheck.status, serveCheck.stderr).toBe(0);
    // every prompt a line passes is the run's (data/prompts.json), read by the line itself
    const prompts = JSON.parse(readFileSync(path.join(out, "data", "prompts.json"), "utf8"));
    for (const key of ["r1", "plus", "direct", "naiveRag"]) {
      const sub = text.match(new RegExp(`"(\\$\\(node -p '[^']*\\.${key}'\\))"`));
      expect(sub, key).not.toBeNull();
      expect(execFileSync("sh", ["-c", `printf '%s' "${sub![1]}"`], { cwd: out, encoding: "utf8" })).toBe(prompts[key]);
    }
    // two evaluation lines run for real (npx searchrl → this checkout's CLI) and give the quickstart's answers
    const tsx = path.join(ROOT, "node_modules", "tsx", "dist", "loader.mjs");
    const cli = `npx() { shift; "${process.execPath}" --import "file://${tsx}" "${path.join(ROOT, "src", "cli", "main.ts")}" "$@"; }`;
    for (const sys of ["no-search", "r1-stage2"]) {
      const line = text.split("\n").find((l) => l.includes(`--out eval/${sys}.results.jsonl`));
      expect(line, sys).toBeDefined();
      const again = `eval/${sys}.again.results.jsonl`;
      const r = sh(["-c", `${cli}\n${line!.replace(`eval/${sys}.results.jsonl`, again)} --quiet`]);
      expect(r.status, r.stderr).toBe(0);
      const want = readJsonl(path.join(out, "eval", `${sys}.results.jsonl`));
      const got = readJsonl(path.join(out, again));
      expect(got.map((x) => [x.idx, x.pred_ans, x.retrievals])).toEqual(
        want.map((x) => [x.idx, x.pred_ans, x.retrievals]),
      );
    }
  }, 60_000);

  it("RL moved the reward: the rewards carry a signal and the updates changed the policy", () => {
    for (const stage of ["r1-stage1", "r1-stage2", "plus-rl"]) {
      const m = readJsonl(path.join(out, "runs", stage, "metrics.jsonl"));
      expect(
        m.every((r) => typeof r.reward_mean === "number"),
        stage,
      ).toBe(true);
      // rewards differ between samples (a learning signal exists) ...
      expect(
        m.some((r) => (r.reward_std as number) > 0),
        `${stage}: reward_std`,
      ).toBe(true);
      // ... and after the first update the policy has moved away from the stage's initial (reference) model
      expect(m[0].kl as number, `${stage}: kl at step 1`).toBeCloseTo(0, 6);
      expect(Math.abs(m[m.length - 1].kl as number), `${stage}: kl at the last step`).toBeGreaterThan(0);
      // the reward changed between the first and the last step
      expect(m[m.length - 1].reward_mean, `${stage}: reward moved`).not.toBe(m[0].reward_mean);
    }
  });

  it("is browsable with `searchrl ui --runs OUT`: the UI's store lists its runs and evaluation results", async () => {
    const store = new AgentRunsStore({ runsDir: out });
    const runs = (await store.runs()).map((r) => r.name);
    for (const run of ["pretrain", "r1-stage1", "r1-stage2", "plus-sft", "plus-rl"]) {
      expect(
        runs.some((n) => n.endsWith(run)),
        `run ${run} in ${runs.join(", ")}`,
      ).toBe(true);
    }
    const results = (await store.results()).map((r) => r.name);
    for (const sys of QUICKSTART_SYSTEMS) {
      expect(
        results.some((n) => n.includes(sys)),
        `results of ${sys} in ${results.join(", ")}`,
      ).toBe(true);
    }
  });

  it("a second run resumes: every stage is skipped", async () => {
    const again = await runCli(["quickstart", "--out", out, "--quiet"]);
    expect(again.code, again.stderr).toBe(0);
    for (const s of QUICKSTART_STAGES) expect(again.stderr).toMatch(new RegExp(`\\] ${s}: done \\(`));
    expect(again.stderr).not.toContain("starting from step 0");
    // another preset or seed in the same folder is refused with a clear message
    const clash = await runCli(["quickstart", "--out", out, "--seed", "4", "--quiet"]);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain("holds a quickstart run");
  }, 60_000);

  it("a failed stage fails the same way when it is run again", async () => {
    // a copy of the run whose rejection sampling cannot pass (4-token segments never reach an answer)
    const copy = path.join(path.dirname(out), "qs-failed");
    cpSync(out, copy, { recursive: true });
    const conf = path.join(path.dirname(out), "segments-4.json");
    execFileSync("sh", ["-c", `printf '%s' '{"segmentTokens": 4}' > '${conf}'`]);
    const reason = (r: { stderr: string }) => r.stderr.split("\n").find((l) => l.startsWith("searchrl: "));
    const failed = await runCli(["quickstart", "--out", copy, "--redo", "plus-data", "--config", conf, "--quiet"]);
    expect(failed.code).not.toBe(0);
    expect(reason(failed)).toMatch(/rejection sampling kept no trajectory of [1-9]\d* samples/);
    const again = await runCli(["quickstart", "--out", copy, "--quiet"]);
    expect(again.code).not.toBe(0);
    expect(reason(again)).toBe(reason(failed));
    const state = JSON.parse(readFileSync(path.join(copy, "state.json"), "utf8"));
    expect(state.stages["plus-data"]).toBeUndefined();
  }, 60_000);
});
