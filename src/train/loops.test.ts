/**
 * Trainer loops on the tabular bigram fixture (fast): SFT loss falls, masked tokens get no gradient, RL reward rises,
 * checkpoints + resume reproduce an uninterrupted run exactly, config errors are clear.
 */
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Trajectory } from "../rollout/types.js";
import { hashSeed, Rng } from "../util/rng.js";
import { resolveRlConfig, resolveSftConfig, TrainConfigError, loadTrainConfig } from "./config.js";
import type { QuestionRow } from "./data.js";
import { runRlLoop, type RewardFn, type RolloutFn } from "./rl.js";
import { runSftLoop } from "./sft.js";
import { CharTokenizer, TabularPolicy } from "./testing/tabular.js";

const tmp = () => mkdtempSync(path.join(os.tmpdir(), "searchrl-train-"));

describe("SFT loop", () => {
  it("loss falls on a pattern and masked tokens get no gradient", async () => {
    const tok = new CharTokenizer("abcxyz");
    const policy = new TabularPolicy(tok, { seed: 1 });
    const dir = tmp();
    const data = path.join(dir, "data.jsonl");
    // 'x' occurs only inside a masked span followed by 'y': row x of the table must not move
    const rows = [
      { promptTokens: [0, 2], responseTokens: tok.encode("bcxyab"), mask: [1, 1, 0, 0, 1, 1] },
      { text: "abcabcabc" },
      { text: "abcab" },
    ];
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const cfg = resolveSftConfig({
      stage: "sft",
      runDir: path.join(dir, "run"),
      data: { path: data, maxSeqLen: 16 },
      epochs: 30,
      batchSize: 3,
      microBatchSize: 2,
      optim: { lr: 0.05, schedule: "constant" },
      run: { saveSteps: 10 },
    });
    const xId = tok.encode("x")[0];
    const xRow = policy.W.slice(xId * policy.V, (xId + 1) * policy.V);
    const res = await runSftLoop(cfg, { policy, protocol: null }, { quiet: true });
    expect(res.steps).toBe(30);
    const losses = res.metrics.map((m) => m.loss!);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    expect(Array.from(policy.W.slice(xId * policy.V, (xId + 1) * policy.V))).toEqual(Array.from(xRow));
    // p(c | b) learned
    expect(policy.probs(3)[4]).toBeGreaterThan(0.5);
    expect(existsSync(path.join(dir, "run", "checkpoints", "step-000030", "trainer_state.json"))).toBe(true);
    expect(readFileSync(path.join(dir, "run", "checkpoints", "latest"), "utf8").trim()).toBe("step-000030");
    const cfgOut = JSON.parse(readFileSync(path.join(dir, "run", "config.json"), "utf8"));
    expect(cfgOut.epochs).toBe(30);
    expect(res.metrics[0]).toMatchObject({ step: 1, stage: "sft" });
    expect(typeof res.metrics[0].tokens_per_s).toBe("number");
  });
});

/** A rollout over the bigram fixture: the policy samples; sampling 'q' "retrieves" — the environment inserts "xy". */
function makeRollout(policy: TabularPolicy, tok: CharTokenizer): RolloutFn {
  const [q, x, y] = tok.encode("qxy");
  return async (reqs, { seed }) =>
    reqs.map((r, i) => {
      const rng = new Rng(hashSeed(seed, i));
      const promptTokens = [0, ...tok.encode(r.question)];
      const resp: number[] = [];
      const mask: number[] = [];
      const logprobs: number[] = [];
      let retrievals = 0;
      while (resp.length < 10) {
        const s = policy.sample([...promptTokens, ...resp], 1, rng);
        resp.push(s.tokens[0]);
        mask.push(1);
        logprobs.push(s.logprobs[0]);
        if (s.tokens[0] === 1) break;
        if (s.tokens[0] === q && retrievals === 0) {
          retrievals++;
          resp.push(x, y);
          mask.push(0, 0);
          logprobs.push(NaN, NaN);
        }
      }
      const t: Trajectory = {
        id: r.id,
        group: r.group,
        question: r.question,
        gold: r.gold,
        protocol: "toy",
        promptText: r.question,
        promptTokens,
        responseText: tok.decode(resp),
        responseTokens: resp,
        mask,
        logprobs,
        retrievals,
        queries: [],
        documents: [],
        answer: null,
        finish: resp[resp.length - 1] === 1 ? "eos" : "length",
        turns: 1 + retrievals,
        timings: { totalMs: 0, backendMs: 0, retrievalMs: 0 },
        warnings: [],
      };
      return t;
    });
}

const rewardQ: RewardFn = async (trajs) =>
  trajs.map((t) => ({ reward: t.retrievals > 0 ? 1 : 0, correct: t.retrievals > 0 }));

function initPolicy(tok: CharTokenizer): TabularPolicy {
  const p = new TabularPolicy(tok, { seed: 3 });
  const [, x, y] = tok.encode("qxy");
  // the policy (almost) never samples the environment's tokens, and 'q' starts rare
  for (let r = 0; r < p.V; r++) {
    p.W[r * p.V + x] = -30;
    p.W[r * p.V + y] = -30;
    p.W[r * p.V + tok.encode("q")[0]] = -2;
  }
  return p;
}

const questions: QuestionRow[] = ["ab", "ba", "aa", "bb"].map((q, i) => ({ id: String(i), question: q, raw: {} }));

function rlConfig(runDir: string, estimator: string, extra: Record<string, unknown> = {}) {
  return resolveRlConfig({
    runDir,
    seed: 5,
    data: { path: "unused.jsonl" },
    reward: { preset: "toy" },
    rollout: { nSamplesPerPrompt: 4, rolloutBatchSize: 2 },
    algorithm: {
      advantageEstimator: estimator,
      trainBatchSize: 4,
      microTrainBatchSize: 2,
      initKlCoef: 0.01,
      microRolloutBatchSize: 4,
    },
    optim: { lr: 0.1, schedule: "constant" },
    run: { numEpisodes: 50, maxSteps: 40, saveSteps: 10 },
    ...extra,
  });
}

describe("RL loop", () => {
  for (const estimator of ["reinforce_baseline", "group_norm", "rloo", "reinforce"]) {
    it(`${estimator}: reward rises; environment tokens get no gradient`, async () => {
      const tok = new CharTokenizer("abqxy");
      const policy = initPolicy(tok);
      const xId = tok.encode("x")[0];
      const xRow = Array.from(policy.W.slice(xId * policy.V, (xId + 1) * policy.V));
      const dir = tmp();
      const res = await runRlLoop(
        rlConfig(path.join(dir, "run"), estimator),
        { policy, rollout: makeRollout(policy, tok), reward: rewardQ, questions },
        { quiet: true },
      );
      expect(res.steps).toBe(40);
      const r = res.metrics.map((m) => m.reward_mean!);
      const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const first = avg(r.slice(0, 5));
      const lastR = avg(r.slice(-5));
      expect(lastR).toBeGreaterThan(first + 0.3);
      expect(lastR).toBeGreaterThan(0.75);
      // 'x' is only ever a previous token inside environment spans: its row never moves
      expect(Array.from(policy.W.slice(xId * policy.V, (xId + 1) * policy.V))).toEqual(xRow);
      const m = res.metrics[0];
      for (const k of [
        "reward_std",
        "accuracy",
        "retrievals_mean",
        "response_length_mean",
        "kl",
        "entropy",
        "clip_frac",
        "loss",
        "grad_norm",
        "tokens_per_s",
        "samples",
        "lr",
      ]) {
        expect(m, k).toHaveProperty(k);
      }
      expect(m.samples).toBe(8);
      expect(m.updates).toBe(2);
      const samples = readFileSync(path.join(dir, "run", "samples", "step-000001.jsonl"), "utf8")
        .trim()
        .split("\n");
      expect(samples).toHaveLength(8);
      expect(JSON.parse(samples[0])).toHaveProperty("reward");
    });
  }

  it("resume from a checkpoint reproduces the uninterrupted run exactly", async () => {
    const tok = new CharTokenizer("abqxy");
    const dirA = tmp();
    const pa = initPolicy(tok);
    const a = await runRlLoop(
      rlConfig(path.join(dirA, "run"), "reinforce_baseline", { run: { numEpisodes: 50, maxSteps: 6, saveSteps: 2 } }),
      {
        policy: pa,
        rollout: makeRollout(pa, tok),
        reward: rewardQ,
        questions,
      },
      { quiet: true },
    );
    const dirB = tmp();
    const cfgB = rlConfig(path.join(dirB, "run"), "reinforce_baseline", {
      run: { numEpisodes: 50, maxSteps: 6, saveSteps: 2 },
    });
    const pb = initPolicy(tok);
    const ref = await pb.frozenCopy();
    // first segment stops after 3 steps: checkpoint at 2, step 3 is logged but lost (as after a crash)
    await runRlLoop(
      cfgB,
      { policy: pb, reference: ref, rollout: makeRollout(pb, tok), reward: rewardQ, questions },
      { quiet: true, stopAfterSteps: 3 },
    );
    // simulate a crash after step 3 was logged but before any checkpoint: drop checkpoint 3
    const { rmSync } = await import("node:fs");
    rmSync(path.join(dirB, "run", "checkpoints", "step-000003"), { recursive: true });
    writeFileSync(path.join(dirB, "run", "checkpoints", "latest"), "step-000002\n");
    const pb2 = initPolicy(tok); // a fresh process: weights come from the checkpoint
    const b = await runRlLoop(
      cfgB,
      { policy: pb2, reference: ref, rollout: makeRollout(pb2, tok), reward: rewardQ, questions },
      {
        quiet: true,
        resume: true,
      },
    );
    expect(b.steps).toBe(6);
    expect(Array.from(pb2.W)).toEqual(Array.from(pa.W));
    const strip = (ms: typeof a.metrics) =>
      ms.map(({ time: _t, tokens_per_s: _s, rollout_s: _r, train_s: _tr, ...rest }) => rest);
    expect(strip(b.metrics)).toEqual(strip(a.metrics));
  });

  it("refuses to overwrite a run without --resume", async () => {
    const tok = new CharTokenizer("abqxy");
    const dir = tmp();
    const p = initPolicy(tok);
    const cfg = rlConfig(path.join(dir, "run"), "reinforce", { run: { numEpisodes: 1, maxSteps: 1, saveSteps: 0 } });
    await runRlLoop(cfg, { policy: p, rollout: makeRollout(p, tok), reward: rewardQ, questions }, { quiet: true });
    await expect(
      runRlLoop(cfg, { policy: p, rollout: makeRollout(p, tok), reward: rewardQ, questions }, { quiet: true }),
    ).rejects.toThrow(/--resume/);
  });
});

describe("config", () => {
  it("presets resolve with overrides and keep upstream values", () => {
    const c = resolveRlConfig({
      preset: "r1-searcher-llama-stage1",
      data: { path: "x.jsonl" },
      rollout: { nSamplesPerPrompt: 4 },
    });
    expect(c.algorithm.advantageEstimator).toBe("group_norm");
    expect(c.algorithm.initKlCoef).toBe(1e-4);
    expect(c.rollout.nSamplesPerPrompt).toBe(4);
    expect(c.rollout.rolloutBatchSize).toBe(15);
    expect(c.reward.preset).toBe("r1-searcher-llama-stage1");
    const q = resolveRlConfig({ preset: "r1-searcher-qwen-zero", data: { path: "x.jsonl" } });
    expect(q.algorithm.initKlCoef).toBe(0);
    expect(q.algorithm.trainBatchSize).toBe(256);
    expect(q.optim.lr).toBe(2e-6);
    const p = resolveRlConfig({ preset: "r1-searcher-plus-rl", data: { path: "x.jsonl" } });
    expect(p.memorization.enabled).toBe(true);
    expect(p.memorization.coef).toBe(0.1);
    expect(p.algorithm.advantageEstimator).toBe("reinforce");
    const s = resolveSftConfig({ preset: "r1-searcher-plus-sft", data: { path: "t.jsonl" } });
    expect([s.epochs, s.batchSize, s.optim.lr]).toEqual([6, 64, 2e-5]);
  });
  it("errors name every bad field", () => {
    try {
      resolveRlConfig({
        preset: "r1-searcher-qwen-zero",
        data: { path: "x" },
        rollout: { nSamplesPerPrompt: 0, tempreature: 1 },
        algorithm: { advantageEstimator: "gae" },
      });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TrainConfigError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/rollout\.nSamplesPerPrompt/);
      expect(msg).toMatch(/tempreature/);
      expect(msg).toMatch(/algorithm\.advantageEstimator/);
    }
    expect(() => resolveRlConfig({ preset: "nope", data: { path: "x" } })).toThrow(
      /unknown preset "nope".*r1-searcher-qwen-zero/,
    );
    expect(() =>
      resolveRlConfig({ data: { path: "x" }, reward: { preset: "a" }, rollout: { nSamplesPerPrompt: 1 } }),
    ).toThrow(/needs at least 2 samples/);
    expect(() => resolveSftConfig({ stage: "rl", data: { path: "x" } })).toThrow(/searchrl train/);
  });
  it("loads YAML and resolves relative paths against the config file", async () => {
    const dir = tmp();
    const f = path.join(dir, "c.yaml");
    writeFileSync(
      f,
      "preset: r1-searcher-llama-stage2\ndata:\n  path: data/q.jsonl\nretriever:\n  spec: ./index\nrunDir: runs/a\n",
    );
    const c = await loadTrainConfig(f, "rl");
    expect(c.data.path).toBe(path.join(dir, "data/q.jsonl"));
    expect(c.runDir).toBe(path.join(dir, "runs/a"));
    if (c.stage === "rl") expect(c.retriever.spec).toBe(path.join(dir, "index"));
    writeFileSync(f, "data: [1, 2\n");
    await expect(loadTrainConfig(f, "rl")).rejects.toThrow(/cannot parse YAML/);
  });
});

describe("data", () => {
  it("RL prompt batches: seeded shuffle per episode, last partial batch dropped", async () => {
    const { rlStepPrompts } = await import("./data.js");
    const a = rlStepPrompts(7, 3, 0, 1, true);
    const b = rlStepPrompts(7, 3, 1, 1, true);
    const c = rlStepPrompts(7, 3, 2, 1, true); // episode 1
    expect(a.episode).toBe(0);
    expect(c.episode).toBe(1);
    expect(new Set([...a.indices, ...b.indices]).size).toBe(6);
    expect(rlStepPrompts(7, 3, 0, 1, true)).toEqual(a);
    expect(rlStepPrompts(7, 3, 0, 1, false).indices).toEqual([0, 1, 2]);
    expect(() => rlStepPrompts(2, 3, 0, 1, true)).toThrow(/fewer than one rollout batch/);
  });
  it("text rows become overlapping windows; every token is predicted once", async () => {
    const { buildSftExamples } = await import("./data.js");
    const tok = new CharTokenizer("abcdefgh");
    const o = {
      tokenizer: tok,
      protocol: null,
      maskEnvironment: true,
      maxSeqLen: 4,
      addBos: true,
      addEos: true,
      format: "auto" as const,
      textKey: "text",
      promptKey: "prompt",
      responseKey: "response",
    };
    const ex = buildSftExamples({ text: "abcdefg" }, "r", o);
    // BOS a b c d e f g EOS = 9 tokens -> 8 predicted
    expect(ex.reduce((n, e) => n + e.mask.length, 0)).toBe(8);
    expect(ex[0].tokens).toEqual([0, ...tok.encode("abc")]);
    expect(ex[1].tokens[0]).toBe(tok.encode("c")[0]);
    // prompt/response longer than maxSeqLen: the prompt keeps its end, the response its start
    const [pr] = buildSftExamples({ prompt: "abcdef", response: "gh" }, "r", { ...o, maxSeqLen: 5 });
    expect(pr.tokens).toEqual(tok.encode("cdefg"));
    expect(pr.start).toBe(4);
    expect(pr.mask).toEqual([1]);
    expect(() => buildSftExamples({ foo: 1 }, "file:3", o)).toThrow(/file:3: cannot tell the row kind/);
    expect(() => buildSftExamples({ promptTokens: [0], responseTokens: [2, 3], mask: [1] }, "f:1", o)).toThrow(
      /mask has 1 entries/,
    );
  });
});

describe("stopping", () => {
  it("an abort signal stops after the current step and writes a checkpoint", async () => {
    const tok = new CharTokenizer("abqxy");
    const p = initPolicy(tok);
    const dir = tmp();
    const ac = new AbortController();
    const res = await runRlLoop(
      rlConfig(path.join(dir, "run"), "reinforce_baseline", { run: { numEpisodes: 50, maxSteps: 10, saveSteps: 0 } }),
      { policy: p, rollout: makeRollout(p, tok), reward: rewardQ, questions },
      { quiet: true, signal: ac.signal, onStep: (m) => void (m.step === 2 && ac.abort()) },
    );
    expect(res.steps).toBe(2);
    expect(res.stoppedEarly).toBe(true);
    expect(res.checkpoint).toMatch(/step-000002$/);
    expect(existsSync(path.join(dir, "run", "checkpoints", "step-000002", "trainer_state.json"))).toBe(true);
  });
});
