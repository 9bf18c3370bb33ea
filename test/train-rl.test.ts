/**
 * End-to-end RL with the real components: the built-in transformer (pre-trained here with the SFT trainer), the
 * built-in sampling backend, the rollout engine, a BM25 index built with src/retrieval, and the r1-searcher protocol.
 * Toy task: reward 1 when the model issues a query and the retriever returns the passage holding the answer. The
 * pre-trained model searches about half of the time; every estimator must push that up.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../src/model/checkpoint.js";
import { BuiltinPolicy } from "../src/train/builtin-policy.js";
import { ppoClipLoss } from "../src/train/algorithms/policy-loss.js";
import { maskedNll } from "../src/train/algorithms/nll.js";
import { runRl } from "../src/train/api.js";
import type { RewardFn } from "../src/train/rl.js";
import { buildToyWorld, TOY_TEMPLATE, type ToyWorld } from "../src/train/testing/world.js";

let w: ToyWorld;
const root = mkdtempSync(path.join(os.tmpdir(), "searchrl-train-rl-"));

beforeAll(async () => {
  w = await buildToyWorld(path.join(root, "world"), { pretrainSteps: 120, seed: 3 });
}, 120_000);

afterAll(async () => {
  await w?.retriever.close();
});

/** 1 when a retrieval returned the passage that holds the gold answer. */
const searchHit: RewardFn = async (trajs, rows) =>
  trajs.map((t, i) => {
    const hit = t.documents.some((ps) => ps.some((p) => p.text.includes(String(rows[i].gold))));
    return { reward: hit ? 1 : 0, correct: t.answer !== null && t.answer.trim() === rows[i].gold };
  });

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("RL end to end: built-in model + rollout engine + BM25", () => {
  it("pre-training on the demonstrations converged", () => {
    expect(w.pretrainLoss[1]).toBeLessThan(w.pretrainLoss[0] / 10);
  });

  for (const estimator of ["reinforce_baseline", "group_norm", "rloo", "reinforce"] as const) {
    it(`${estimator}: the search-hit reward rises`, async () => {
      const beta = estimator === "group_norm" ? 1e-3 : 0;
      const res = await runRl(
        {
          runDir: path.join(root, `rl-${estimator}`),
          seed: 3,
          model: { init: w.baseCheckpoint },
          data: { path: w.questionsFile },
          protocol: { name: "r1-searcher", template: TOY_TEMPLATE },
          retriever: { spec: w.indexDir, k: 1 },
          reward: { preset: "r1-searcher-llama-stage2" },
          rollout: {
            nSamplesPerPrompt: 4,
            rolloutBatchSize: 6,
            maxTokensPerSegment: 24,
            maxRetrievals: 2,
            concurrency: 32,
          },
          algorithm: {
            advantageEstimator: estimator,
            initKlCoef: beta,
            trainBatchSize: 12,
            microTrainBatchSize: 12,
            microRolloutBatchSize: 24,
          },
          optim: { lr: 3e-4, schedule: "constant" },
          run: { numEpisodes: 20, maxSteps: 8, saveSteps: 4 },
        },
        { retriever: w.retriever, reward: searchHit },
        { quiet: true },
      );
      expect(res.steps).toBe(8);
      const r = res.metrics.map((m) => m.reward_mean!);
      const first = avg(r.slice(0, 2));
      const last = avg(r.slice(-3));
      expect(last, `rewards ${r.map((x) => x.toFixed(2)).join(" ")}`).toBeGreaterThan(first + 0.2);
      expect(last).toBeGreaterThanOrEqual(0.8);
      const ret = res.metrics.map((m) => m.retrievals_mean!);
      expect(avg(ret.slice(-3))).toBeGreaterThan(avg(ret.slice(0, 2)));
      const m = res.metrics[1];
      expect(m.samples).toBe(24);
      expect(m.updates).toBe(2); // 24 samples / train batch 12
      for (const k of [
        "reward_std",
        "accuracy",
        "response_length_mean",
        "entropy",
        "clip_frac",
        "loss",
        "grad_norm",
        "tokens_per_s",
        "lr",
      ]) {
        expect(Number.isFinite(m[k] as number), k).toBe(true);
      }
      if (beta > 0) expect(res.metrics[3].kl).toBeGreaterThan(0);
      else expect(m.kl).toBeUndefined();
      // samples of a step: exact tokens, documents masked
      const rows = readFileSync(path.join(root, `rl-${estimator}`, "samples", "step-000001.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(rows).toHaveLength(24);
      const withDocs = rows.find((t) => t.retrievals > 0);
      expect(withDocs.mask).toContain(0);
      expect(withDocs.mask.length).toBe(withDocs.responseTokens.length);
      expect(res.checkpoint).toMatch(/step-000008$/);
    }, 60_000);
  }

  it("masked (environment) tokens get no gradient in the real model", async () => {
    const model = await loadCheckpoint(w.baseCheckpoint);
    try {
      const policy = new BuiltinPolicy(model, w.tokenizer);
      const tok = w.tokenizer;
      const prompt = tok.encode(w.protocol.buildPrompt(w.questions[0].question, { template: TOY_TEMPLATE }));
      const act = tok.encode(`${w.protocol.queryOpen}zorb color${w.protocol.queryClose}`);
      // two different retrieved blocks at the end of the response: only the environment's tokens differ
      const docsA = tok.encode(w.protocol.renderObservation([w.passages[0]]));
      const docsB = tok.encode(w.protocol.renderObservation([w.passages[3]]));
      const grads = async (docs: number[], maskDocs: boolean, loss: "ppo" | "nll") => {
        const seq = { tokens: [...prompt, ...act, ...docs], start: prompt.length };
        const mask = [...act.map(() => 1), ...docs.map(() => (maskDocs ? 0 : 1))];
        const [old] = await policy.logprobs([seq]);
        policy.zeroGrad();
        await policy.accumulateGradients([seq], (lp) =>
          loss === "ppo"
            ? ppoClipLoss([{ logp: lp[0], oldLogp: old.logp, advantages: mask.map(() => 1.5), mask }])
            : maskedNll(lp, [mask]),
        );
        return model.grads().slice();
      };
      for (const loss of ["ppo", "nll"] as const) {
        const a = await grads(docsA, true, loss);
        const b = await grads(docsB, true, loss);
        expect(a.some((x) => x !== 0)).toBe(true);
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `${loss}: masked tokens changed the gradient`).toBe(
          true,
        );
        // control: unmasked, the same change of document tokens does change the gradient
        const c = await grads(docsA, false, loss);
        const d = await grads(docsB, false, loss);
        expect(Buffer.from(c.buffer).equals(Buffer.from(d.buffer))).toBe(false);
      }
    } finally {
      model.dispose();
    }
  });
});
