/** Unit tests of the pure RL/SFT algorithms against hand-computed values and finite differences. */
import { describe, expect, it } from "vitest";
import { Rng } from "../../util/rng.js";
import {
  clampRewards,
  computeAdvantages,
  cumulativeReturns,
  groupAdvantages,
  maskedWhiten,
  tokenRewards,
  unbiasedStd,
} from "./advantages.js";
import { klLoss, klPenalty, maskedMean } from "./kl.js";
import { maskedEntropy, ppoClipLoss, type PolicyLossSequence } from "./policy-loss.js";
import { maskedNll, memorizationLoss } from "./nll.js";
import { lrAt, lrFactor, warmupSteps } from "./lr-schedule.js";

const close = (a: number, b: number, digits = 9) => expect(a).toBeCloseTo(b, digits);
const closeArr = (a: ArrayLike<number>, b: number[], digits = 9) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(a[i], `index ${i}`).toBeCloseTo(b[i], digits);
};

describe("group baselines", () => {
  // group a = samples 0, 2, 4 with rewards 1, 0, 0.5; group b = samples 1, 3 with rewards 2, 2 (non-contiguous).
  const rewards = [1, 2, 0, 2, 0.5];
  const groups = ["a", "b", "a", "b", "a"];
  it("reinforce keeps the raw reward", () => {
    expect(groupAdvantages(rewards, groups, "reinforce")).toEqual(rewards);
  });
  it("reinforce_baseline subtracts the group mean", () => {
    closeArr(groupAdvantages(rewards, groups, "reinforce_baseline"), [0.5, 0, -0.5, 0, 0]);
  });
  it("group_norm divides by the unbiased std + 1e-9", () => {
    // group a: mean 0.5, unbiased std sqrt((0.25+0.25+0)/2) = 0.5; group b: std 0 -> 0/(0+1e-9) = 0
    closeArr(groupAdvantages(rewards, groups, "group_norm"), [1, 0, -1, 0, 0], 7);
    expect(unbiasedStd([1, 0, 0])).toBeCloseTo(Math.sqrt(1 / 3), 12);
    // the epsilon is visible with a tiny spread: (1e-9 - 0.5e-9) / (std + 1e-9)
    const g = groupAdvantages([1e-9, 0], ["x", "x"], "group_norm");
    const sd = Math.sqrt((0.5e-9 ** 2 * 2) / 1);
    close(g[0], 0.5e-9 / (sd + 1e-9), 12);
  });
  it("rloo subtracts the leave-one-out mean", () => {
    // group a sum 1.5: 1 - 0.5/2, 0 - 1.5/2, 0.5 - 1/2
    closeArr(groupAdvantages(rewards, groups, "rloo"), [0.75, 0, -0.75, 0, 0]);
  });
  it("singleton groups get no signal from baseline estimators", () => {
    expect(groupAdvantages([3], ["q"], "reinforce_baseline")).toEqual([0]);
    expect(groupAdvantages([3], ["q"], "group_norm")).toEqual([0]);
    expect(groupAdvantages([3], ["q"], "rloo")).toEqual([0]);
  });
  it("rejects bad input", () => {
    expect(() => groupAdvantages([1], ["a", "b"], "reinforce")).toThrow(/group keys/);
    expect(() => groupAdvantages([NaN], ["a"], "reinforce")).toThrow(/non-finite/);
  });
  it("clamps to (-10, 10)", () => {
    expect(clampRewards([15, -12, 3])).toEqual([10, -10, 3]);
  });
});

describe("token rewards and returns", () => {
  it("-beta*kl on every token, outcome on the last token", () => {
    closeArr(tokenRewards(2, [0.1, 0, -0.2], 3, 0.5), [-0.05, 0, 2.1]);
    expect(tokenRewards(2, [0.1, 0, -0.2], 3, -1)).toEqual([0, 0, 2]); // beta <= 0 -> 0
    expect(tokenRewards(1, null, 0, 0)).toEqual([]);
  });
  it("gamma = 1 reverse cumulative sum, masked afterwards", () => {
    closeArr(cumulativeReturns([-0.05, 0, 2.1], [1, 0, 1]), [2.05, 0, 2.1]);
    closeArr(cumulativeReturns([1, 2, 4], [1, 1, 1], 0.5), [3, 4, 4]);
  });
  it("an outcome reward on a masked last token still reaches the earlier policy tokens", () => {
    const r = tokenRewards(1, [0, 0], 2, 0);
    expect(cumulativeReturns(r, [1, 0])).toEqual([1, 0]);
  });
});

describe("masked whitening", () => {
  it("uses only unmasked tokens for mean/var and maps masked tokens to -mean/std", () => {
    const { advantages, stats } = maskedWhiten([[1, 0, 3], [2]], [[1, 0, 1], [1]]);
    const sd = Math.sqrt(2 / 3);
    close(stats.mean, 2);
    close(stats.std, sd);
    expect(stats.count).toBe(3);
    closeArr(advantages[0], [-1 / sd, -2 / sd, 1 / sd]);
    closeArr(advantages[1], [0]);
  });
  it("floors the variance at 1e-8", () => {
    const { advantages, stats } = maskedWhiten([[5, 0, 5]], [[1, 0, 1]]);
    close(stats.std, 1e-4, 12);
    closeArr(advantages[0], [0, -50000, 0], 6);
  });
  it("returns the input unchanged when nothing is unmasked", () => {
    const { advantages, stats } = maskedWhiten([[1, 2]], [[0, 0]]);
    expect(advantages).toEqual([[1, 2]]);
    expect(stats.count).toBe(0);
  });
});

describe("computeAdvantages", () => {
  it("reinforce_baseline: group mean then global masked whitening", () => {
    const res = computeAdvantages(
      [
        { reward: 1, group: "a", mask: [1, 1] },
        { reward: -1, group: "a", mask: [1, 0, 1] },
        { reward: 0.5, group: "b", mask: [1] },
        { reward: 0.5, group: "b", mask: [0, 1] },
      ],
      { estimator: "reinforce_baseline" },
    );
    // returns: [1,1], [-1,0,-1], [0], [0,0]; unmasked values 1,1,-1,-1,0,0 -> mean 0, var 4/6
    const sd = Math.sqrt(4 / 6);
    closeArr(res.returns[1], [-1, 0, -1]);
    closeArr(res.advantages[0], [1 / sd, 1 / sd]);
    closeArr(res.advantages[1], [-1 / sd, 0, -1 / sd]);
    closeArr(res.advantages[3], [0, 0]);
    expect(res.whiten?.count).toBe(6);
    expect(res.shapedRewards).toEqual([1, -1, 0, 0]);
  });
  it("group_norm: GRPO normalization, no whitening", () => {
    const res = computeAdvantages(
      [
        { reward: 1, group: "q", mask: [1, 1] },
        { reward: 0, group: "q", mask: [1] },
        { reward: 0, group: "q", mask: [0, 1] },
      ],
      { estimator: "group_norm" },
    );
    const sd = Math.sqrt(1 / 3);
    const a = 2 / 3 / (sd + 1e-9);
    const b = -(1 / 3) / (sd + 1e-9);
    closeArr(res.advantages[0], [a, a]);
    closeArr(res.advantages[1], [b]);
    closeArr(res.advantages[2], [0, b]);
    expect(res.whiten).toBeNull();
  });
  it("folds beta * masked k1 KL into the returns and clamps the outcome", () => {
    const logp = [-1, -2, -0.5];
    const ref = [-1.5, -1, -0.5];
    const mask = [1, 0, 1];
    const kl = klPenalty(logp, ref, mask, "k1"); // [0.5, 0, 0]
    const res = computeAdvantages([{ reward: 25, group: "a", mask, kl }], {
      estimator: "reinforce",
      klCoef: 0.1,
      whiten: false,
    });
    expect(res.shapedRewards).toEqual([10]);
    closeArr(res.tokenRewards[0], [-0.05, 0, 10]);
    closeArr(res.returns[0], [9.95, 0, 10]);
    close(res.sampleReturns[0], 9.95);
  });
});

describe("KL estimators", () => {
  it("k1, k2, k3 on the masked log-ratio", () => {
    closeArr(klPenalty([-1, -2], [-1.5, -1], [1, 1], "k1"), [0.5, -1]);
    closeArr(klPenalty([-1, -2], [-1.5, -1], [1, 1], "k2"), [0.125, 0.5]);
    closeArr(klPenalty([-1, -2], [-1.5, -1], [1, 1], "k3"), [Math.exp(-0.5) - 0.5, Math.E - 2]);
    closeArr(klPenalty([-1, -2], [-1.5, -1], [1, 0], "k3"), [Math.exp(-0.5) - 0.5, 0]);
    close(maskedMean([1, 5, 3], [1, 0, 1]), 2);
  });
  it("klLoss gradient matches finite differences", () => {
    for (const estimator of ["k1", "k2", "k3"] as const) {
      const lp = [[-1, -2, -0.3], [-0.7]];
      const ref = [[-1.2, -1.5, -0.9], [-0.1]];
      const masks = [[1, 0, 1], [1]];
      const f = (x: number[][]) => klLoss(x, ref, masks, { coef: 0.3, estimator }).loss;
      const { grad } = klLoss(lp, ref, masks, { coef: 0.3, estimator });
      checkFiniteDiff(f, lp, grad);
      expect(grad[0][1]).toBe(0);
    }
  });
});

function checkFiniteDiff(f: (x: number[][]) => number, x: number[][], grad: number[][], h = 1e-6, tol = 1e-6): void {
  for (let i = 0; i < x.length; i++) {
    for (let t = 0; t < x[i].length; t++) {
      const plus = x.map((r) => r.slice());
      const minus = x.map((r) => r.slice());
      plus[i][t] += h;
      minus[i][t] -= h;
      const num = (f(plus) - f(minus)) / (2 * h);
      expect(Math.abs(num - grad[i][t]), `d/dx[${i}][${t}]: numeric ${num}, analytic ${grad[i][t]}`).toBeLessThan(tol);
    }
  }
}

describe("PPO-clip policy loss", () => {
  const seqA: PolicyLossSequence = {
    logp: [Math.log(1.5), Math.log(0.5), Math.log(1.1), Math.log(0.7)],
    oldLogp: [0, 0, 0, 0],
    advantages: [1, -1, 2, 1],
    mask: [1, 1, 1, 0],
  };
  const seqB: PolicyLossSequence = { logp: [0], oldLogp: [0], advantages: [3], mask: [1] };
  it("hand-computed loss, gradient, clip fraction and approx KL", () => {
    // t0: ratio 1.5, A 1 -> min(1.5, 1.2) = 1.2 clipped; t1: ratio .5, A -1 -> min(-.5, -.8) = -.8 clipped;
    // t2: ratio 1.1, A 2 -> 2.2 unclipped, grad -2.2; t3 masked.
    const r = ppoClipLoss([seqA]);
    close(r.loss, (-1.2 + 0.8 - 2.2) / 3);
    closeArr(r.grad[0], [0, 0, -2.2 / 3, 0]);
    expect(r.tokens).toBe(3);
    expect(r.clippedTokens).toBe(2);
    close(r.clipFrac, 2 / 3);
    close(r.approxKl, -(Math.log(1.5) + Math.log(0.5) + Math.log(1.1)) / 3);
  });
  it("the unclipped branch is the minimum on the other side of the clip range", () => {
    const r = ppoClipLoss([
      { logp: [Math.log(0.5), Math.log(1.5)], oldLogp: [0, 0], advantages: [1, -1], mask: [1, 1] },
    ]);
    // ratio .5, A 1: min(.5, .8) = .5 -> grad -.5/2; ratio 1.5, A -1: min(-1.5, -1.2) = -1.5 -> grad +1.5/2
    closeArr(r.grad[0], [-0.25, 0.75]);
    close(r.loss, (-0.5 + 1.5) / 2);
    expect(r.clippedTokens).toBe(0);
  });
  it("seq-mean-token-mean vs token-mean aggregation", () => {
    close(ppoClipLoss([seqA, seqB]).loss, (-2.6 / 3 - 3) / 2);
    close(ppoClipLoss([seqA, seqB], { aggregation: "token-mean" }).loss, (-2.6 - 3) / 4);
  });
  it("micro-batches with the batch normalizer add up to the full batch", () => {
    for (const aggregation of ["seq-mean-token-mean", "token-mean"] as const) {
      const full = ppoClipLoss([seqA, seqB], { aggregation });
      const normalizer = aggregation === "token-mean" ? 4 : 2;
      const a = ppoClipLoss([seqA], { aggregation, normalizer });
      const b = ppoClipLoss([seqB], { aggregation, normalizer });
      close(a.loss + b.loss, full.loss);
      closeArr(a.grad[0], full.grad[0]);
      closeArr(b.grad[0], full.grad[1]);
    }
  });
  it("asymmetric clip (clipEpsHigh)", () => {
    const r = ppoClipLoss([{ logp: [Math.log(1.25)], oldLogp: [0], advantages: [1], mask: [1] }], {
      clipEps: 0.2,
      clipEpsHigh: 0.28,
    });
    expect(r.clippedTokens).toBe(0);
    close(r.loss, -1.25);
  });
  it("analytic gradient matches finite differences on random data; masked tokens get exactly 0", () => {
    const rng = new Rng(7);
    for (const aggregation of ["seq-mean-token-mean", "token-mean"] as const) {
      for (let trial = 0; trial < 5; trial++) {
        const seqs: PolicyLossSequence[] = [];
        for (let i = 0; i < 3; i++) {
          const n = 2 + rng.int(6);
          const old = Array.from({ length: n }, () => -rng.next() * 3);
          const logp = old.map((o) => {
            // keep ratios away from the clip boundaries (finite differences are invalid at the kinks)
            let d = (rng.next() - 0.5) * 0.8;
            while (Math.abs(Math.exp(d) - 0.8) < 0.01 || Math.abs(Math.exp(d) - 1.2) < 0.01) d += 0.05;
            return o + d;
          });
          const mask = Array.from({ length: n }, () => (rng.next() < 0.3 ? 0 : 1));
          const adv = Array.from({ length: n }, () => rng.normal() * 100 * (mask.length ? 1 : 0));
          seqs.push({ logp, oldLogp: old, advantages: adv, mask });
        }
        const f = (x: number[][]) =>
          ppoClipLoss(
            seqs.map((s, i) => ({ ...s, logp: x[i] })),
            { aggregation },
          ).loss;
        const x = seqs.map((s) => Array.from(s.logp));
        const { grad } = ppoClipLoss(seqs, { aggregation });
        checkFiniteDiff(f, x, grad, 1e-6, 1e-4);
        seqs.forEach((s, i) => Array.from(s.mask).forEach((m, t) => m === 0 && expect(grad[i][t]).toBe(0)));
      }
    }
  });
  it("entropy is a masked token mean", () => {
    const e = maskedEntropy([[1, 100, 3], [2]], [[1, 0, 1], [1]]);
    close(e.mean, 2);
    expect(e.tokens).toBe(3);
  });
  it("rejects length mismatches", () => {
    expect(() => ppoClipLoss([{ logp: [0, 0], oldLogp: [0], advantages: [0, 0], mask: [1, 1] }])).toThrow(
      /length mismatch/,
    );
  });
});

describe("SFT masked NLL and memorization loss", () => {
  it("token-mean masked NLL with gradient", () => {
    const r = maskedNll([[-1, -2, -3], [-0.5]], [[1, 0, 1], [1]]);
    close(r.loss, (1 + 3 + 0.5) / 3);
    closeArr(r.grad[0], [-1 / 3, 0, -1 / 3]);
    closeArr(r.grad[1], [-1 / 3]);
    expect(r.tokens).toBe(3);
    close(r.nllSum, 4.5);
  });
  it("seq-mean-token-mean variant", () => {
    const r = maskedNll([[-1, -2, -3], [-0.5]], [[1, 0, 1], [1]], { aggregation: "seq-mean-token-mean" });
    close(r.loss, (2 + 0.5) / 2);
    closeArr(r.grad[0], [-0.25, 0, -0.25]);
  });
  it("memorization loss: mu * token-normalized NLL over the whole set, splittable in micro-batches", () => {
    const full = memorizationLoss([[-1, -1], [-2]], { coef: 0.1 });
    close(full.loss, (0.1 * 4) / 3);
    closeArr(full.grad[0], [-0.1 / 3, -0.1 / 3]);
    const a = memorizationLoss([[-1, -1]], { coef: 0.1, totalTokens: 3 });
    const b = memorizationLoss([[-2]], { coef: 0.1, totalTokens: 3 });
    close(a.loss + b.loss, full.loss);
  });
  it("gradient matches finite differences", () => {
    const x = [
      [-1.3, -0.2, -4],
      [-0.9, -0.1],
    ];
    const masks = [
      [1, 0, 1],
      [1, 1],
    ];
    const { grad } = maskedNll(x, masks, { coef: 0.7 });
    checkFiniteDiff((v) => maskedNll(v, masks, { coef: 0.7 }).loss, x, grad);
  });
});

describe("learning-rate schedules", () => {
  it("cosine with min lr = 0.1 lr, no warmup", () => {
    const o = { name: "cosine_with_min_lr" as const, lr: 2e-6, totalSteps: 10 };
    close(lrAt(0, o), 2e-6, 15);
    close(lrFactor(5, o), 0.55);
    close(lrFactor(10, o), 0.1);
    close(lrFactor(50, o), 0.1);
  });
  it("linear warmup from 0 (ceil of ratio * total)", () => {
    expect(warmupSteps(10, 0.15)).toBe(2);
    const o = { name: "cosine_with_min_lr" as const, totalSteps: 10, warmupRatio: 0.2 };
    expect(lrFactor(0, o)).toBe(0);
    close(lrFactor(1, o), 0.5);
    close(lrFactor(2, o), 1);
  });
  it("constant", () => {
    expect(lrFactor(7, { name: "constant", totalSteps: 10 })).toBe(1);
    close(lrFactor(1, { name: "constant", totalSteps: 10, warmupRatio: 0.5 }), 0.2);
  });
});
