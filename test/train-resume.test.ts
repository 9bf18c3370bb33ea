/**
 * Checkpoint resume after `kill -9`: `searchrl train` runs as a real process (built-in model, rollout engine, BM25
 * index, reward preset, KL reference); it is killed with SIGKILL in the middle of a step after its second checkpoint,
 * resumed with `--resume`, and must end with exactly the weights and metrics of an uninterrupted run.
 *
 * The kill is deterministic, not timed: the trainer searches through a real retrieval server (src/server/retrieval,
 * `/queries` over the toy world's BM25 index) whose request hook holds every search of the killed run once its
 * checkpoint step-000002 exists. The trainer is therefore stuck in the rollout of step 3 when it is killed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRetrievalServer, type RetrievalServer } from "../src/server/retrieval.js";
import { loadTrainConfig } from "../src/train/config.js";
import { runRl } from "../src/train/api.js";
import type { RlConfig } from "../src/train/config.js";
import { buildToyWorld, TOY_TEMPLATE, type ToyWorld } from "../src/train/testing/world.js";

const ROOT = path.resolve(__dirname, "..");
const root = mkdtempSync(path.join(os.tmpdir(), "searchrl-train-resume-"));
let w: ToyWorld;
let configFile: string;
let server: RetrievalServer;
const killedRunDir = path.join(root, "killed");
/** Resolved when the server holds a search of the killed run (it is then inside step 3). */
let holding: () => void = () => {};
const held = new Promise<void>((resolve) => (holding = resolve));
let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));

beforeAll(async () => {
  w = await buildToyWorld(path.join(root, "world"), { pretrainSteps: 60, seed: 5 });
  server = await createRetrievalServer({ retriever: w.retriever, defaultK: 1 });
  const latest = path.join(killedRunDir, "checkpoints", "latest");
  server.app.addHook("onRequest", async (req) => {
    if (req.url !== "/queries" || !existsSync(latest)) return;
    if (Number(readFileSync(latest, "utf8").trim().replace("step-", "")) < 2) return;
    holding();
    await released;
  });
  const url = await server.app.listen({ host: "127.0.0.1", port: 0 });
  configFile = path.join(root, "rl.yaml");
  writeFileSync(
    configFile,
    [
      "preset: r1-searcher-llama-stage2",
      "seed: 11",
      `model: { init: ${JSON.stringify(w.baseCheckpoint)} }`,
      `data: { path: ${JSON.stringify(w.questionsFile)} }`,
      `protocol: { name: r1-searcher, template: ${JSON.stringify(TOY_TEMPLATE)} }`,
      `retriever: { spec: ${JSON.stringify(`${url}/queries`)}, k: 1 }`,
      "rollout: { nSamplesPerPrompt: 4, rolloutBatchSize: 3, maxTokensPerSegment: 24, maxRetrievals: 2, concurrency: 16 }",
      "algorithm: { initKlCoef: 0.01, trainBatchSize: 6, microTrainBatchSize: 3, microRolloutBatchSize: 12 }",
      "optim: { lr: 3e-4, totalSteps: 12 }",
      "run: { numEpisodes: 4, maxSteps: 6, saveSteps: 2, maxCheckpoints: 2 }",
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  release();
  await server?.close();
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

    // the CLI run, killed with SIGKILL while the server holds its first search of step 3 (after checkpoint 2)
    const runDir = killedRunDir;
    const p = spawnTrain(["--config", configFile, "--run-dir", runDir, "--quiet"]);
    const exited = waitExit(p);
    const first = await Promise.race([held.then(() => "held" as const), exited]);
    if (first !== "held") throw new Error(`trainer exited before step 3 searched: ${first.stderr}`);
    p.kill("SIGKILL");
    const killed = await exited;
    release(); // the resumed run searches freely
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
