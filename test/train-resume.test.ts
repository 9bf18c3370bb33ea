/**
 * Checkpoint resume after `kill -9`: `searchrl train` runs as a real process (built-in model, rollout engine, BM25
 * index, reward preset, KL reference); it is killed with SIGKILL in the middle of a step after its second checkpoint,
 * resumed with `--resume`, and must end with exactly the weights and metrics of an uninterrupted run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTrainConfig } from "../src/train/config.js";
import { runRl } from "../src/train/api.js";
import type { RlConfig } from "../src/train/config.js";
import { buildToyWorld, TOY_TEMPLATE, type ToyWorld } from "../src/train/testing/world.js";

const ROOT = path.resolve(__dirname, "..");
const root = mkdtempSync(path.join(os.tmpdir(), "searchrl-train-resume-"));
let w: ToyWorld;
let configFile: string;

beforeAll(async () => {
  w = await buildToyWorld(path.join(root, "world"), { pretrainSteps: 60, seed: 5 });
  configFile = path.join(root, "rl.yaml");
  writeFileSync(
    configFile,
    [
      "preset: r1-searcher-llama-stage2",
      "seed: 11",
      `model: { init: ${JSON.stringify(w.baseCheckpoint)} }`,
      `data: { path: ${JSON.stringify(w.questionsFile)} }`,
      `protocol: { name: r1-searcher, template: ${JSON.stringify(TOY_TEMPLATE)} }`,
      `retriever: { spec: ${JSON.stringify(w.indexDir)}, k: 1 }`,
      "rollout: { nSamplesPerPrompt: 4, rolloutBatchSize: 3, maxTokensPerSegment: 24, maxRetrievals: 2, concurrency: 16 }",
      "algorithm: { initKlCoef: 0.01, trainBatchSize: 6, microTrainBatchSize: 3, microRolloutBatchSize: 12 }",
      "optim: { lr: 3e-4, totalSteps: 12 }",
      "run: { numEpisodes: 4, maxSteps: 6, saveSteps: 2, maxCheckpoints: 2 }",
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  await w?.retriever.close();
});

function spawnTrain(args: string[]): ChildProcess {
  // one process (no tsx wrapper process), so SIGKILL hits the trainer itself
  return spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "cli", "main.ts"), "train", ...args], {
    cwd: ROOT,
    env: { ...process.env, SEARCHRL_CLI_ENTRY: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function waitExit(
  p: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (d) => (stdout += d));
  p.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function metricsOf(runDir: string): Array<Record<string, unknown>> {
  return readFileSync(path.join(runDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .map(({ time: _t, tokens_per_s: _s, rollout_s: _r, train_s: _tr, ...rest }) => rest);
}

describe("train --resume after kill -9", () => {
  it("continues from the last checkpoint with the same state as an uninterrupted run", async () => {
    // uninterrupted reference run (same config, in process)
    const refDir = path.join(root, "ref");
    const cfg = (await loadTrainConfig(configFile, "rl")) as RlConfig;
    const ref = await runRl(cfg, {}, { runDir: refDir, quiet: true });
    expect(ref.steps).toBe(6);

    // the CLI run, killed with SIGKILL in the middle of step 3 (after checkpoint step-000002)
    const runDir = path.join(root, "killed");
    const p = spawnTrain(["--config", configFile, "--run-dir", runDir, "--quiet"]);
    let done = false;
    const exited = waitExit(p).then((r) => {
      done = true;
      return r;
    });
    const latest = path.join(runDir, "checkpoints", "latest");
    const t0 = Date.now();
    while (!(existsSync(latest) && readFileSync(latest, "utf8").trim() === "step-000002")) {
      if (Date.now() - t0 > 50_000) throw new Error("the trainer did not write checkpoint 2 in time");
      if (done) throw new Error(`trainer exited early: ${(await exited).stderr}`);
      await sleep(20);
    }
    await sleep(150);
    p.kill("SIGKILL");
    const killed = await exited;
    expect(killed.signal).toBe("SIGKILL");
    expect(existsSync(path.join(runDir, "checkpoints", "step-000004"))).toBe(false);
    expect(existsSync(path.join(runDir, "checkpoints", "step-000002", "trainer_state.json"))).toBe(true);

    // resume
    const resumed = await waitExit(spawnTrain(["--config", configFile, "--run-dir", runDir, "--resume", "--quiet"]));
    expect(resumed.code, resumed.stderr).toBe(0);
    const summary = JSON.parse(resumed.stdout.trim().split("\n").pop()!);
    expect(summary.steps).toBe(6);
    expect(resumed.stderr).toMatch(/resuming from .*step-000002 \(step 2\)/);

    // same metrics (every step exactly once) and bit-identical final weights and optimizer state
    const m = metricsOf(runDir);
    expect(m.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(m).toEqual(metricsOf(refDir));
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      const a = readFileSync(path.join(refDir, "checkpoints", "step-000006", f));
      const b = readFileSync(path.join(runDir, "checkpoints", "step-000006", f));
      expect(a.equals(b), f).toBe(true);
    }
    const state = JSON.parse(
      readFileSync(path.join(runDir, "checkpoints", "step-000006", "trainer_state.json"), "utf8"),
    );
    expect(state).toMatchObject({ step: 6, optimizerSteps: 12, seed: 11, stage: "rl" });
    // maxCheckpoints 2: only the two newest remain
    expect(existsSync(path.join(runDir, "checkpoints", "step-000002"))).toBe(false);
    expect(existsSync(path.join(runDir, "checkpoints", "step-000004"))).toBe(true);
    // the resolved config was written
    const written = JSON.parse(readFileSync(path.join(runDir, "config.json"), "utf8"));
    expect(written.algorithm.advantageEstimator).toBe("reinforce_baseline");
    expect(written.rollout.nSamplesPerPrompt).toBe(4);
  }, 120_000);

  it("refuses to start over an existing run without --resume", async () => {
    const r = await waitExit(spawnTrain(["--config", configFile, "--run-dir", path.join(root, "ref"), "--quiet"]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--resume/);
  }, 60_000);
});
