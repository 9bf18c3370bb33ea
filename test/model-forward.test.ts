/**
 * The built-in transformer against a plain float64 reference forward, finite-difference gradients, the XNNPACK matmul
 * path, and KV-cache decoding against the full forward pass — on each compute engine (native MLAS and tfjs-wasm).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Transformer, type ModelConfigInput } from "../src/model/index.js";
import { referenceLogits } from "../src/model/reference.js";
import { getRuntime } from "../src/model/runtime.js";

/** Perturb norms/biases so that a bug in their handling cannot hide behind the 1 / 0 initialisation. */
function perturb(m: Transformer): void {
  const W = m.weights();
  for (const e of m.params) {
    if (e.name.endsWith("norm") || e.name.endsWith("bqkv")) {
      for (let i = 0; i < e.size; i++) W[e.offset + i] += 0.2 * Math.sin(1.7 * i + e.offset);
    }
  }
  m.markWeightsChanged();
}

const CONFIGS: Record<string, ModelConfigInput> = {
  "llama GQA tied": {
    vocabSize: 64,
    hiddenSize: 32,
    intermediateSize: 40,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    maxPositions: 64,
  },
  "qwen2 bias untied": {
    architecture: "qwen2",
    vocabSize: 53,
    hiddenSize: 24,
    intermediateSize: 36,
    numLayers: 2,
    numHeads: 3,
    numKvHeads: 1,
    headDim: 12,
    maxPositions: 64,
    attentionBias: true,
    tieEmbeddings: false,
  },
  // Widths that are not multiples of 4 take the plain-JS kernels instead of the SIMD ones.
  "odd widths (JS kernels)": {
    vocabSize: 37,
    hiddenSize: 18,
    intermediateSize: 22,
    numLayers: 1,
    numHeads: 3,
    headDim: 6,
    maxPositions: 64,
  },
};

function logSoftmax(x: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const l = m + Math.log(s);
  return Array.from(x, (v) => v - l);
}

describe("XNNPACK matmul through the runtime", () => {
  it("matches a naive product for odd shapes (incl. k = 0)", async () => {
    const rt = await getRuntime();
    for (const [m, k, n] of [
      [1, 1, 1],
      [7, 13, 5],
      [33, 17, 65],
      [5, 0, 3],
    ]) {
      const a = rt.allocF32(m * k);
      const b = rt.allocF32(k * n);
      const o = rt.allocF32(m * n);
      const A = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
      const B = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
      rt.view(a, m * k).set(A);
      rt.view(b, k * n).set(B);
      rt.view(o, m * n).fill(123);
      rt.matmulPtr(a, b, o, m, k, n);
      const O = rt.view(o, m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += A[i * k + t] * B[t * n + j];
          expect(O[i * n + j]).toBeCloseTo(s, 4);
        }
      }
      for (const p of [a, b, o]) rt.free(p);
    }
  });
});

const ENGINES = ["native", "wasm"] as const;

describe.each(ENGINES.flatMap((e) => Object.entries(CONFIGS).map(([n, c]) => [e, n, c] as const)))(
  "transformer on %s (%s)",
  (engine, _name, cfg) => {
    beforeAll(async () => (await getRuntime()).useEngine(engine));
    afterAll(async () => (await getRuntime()).useEngine("native"));

    it("forward logits match the float64 reference", async () => {
      const m = await Transformer.create(cfg, { seed: 5, initStd: 0.2 });
      perturb(m);
      const toks = [1, 5, 7, 3, 9, 11, 2, 4, 8, 10, 12, 40, 0, 17].map((t) => t % m.config.vocabSize);
      const ref = referenceLogits({ config: m.config, params: m.params, data: m.getWeights() }, toks);
      const got = m.logitsAll(toks);
      let maxDiff = 0;
      let maxAbs = 0;
      for (let t = 0; t < toks.length; t++) {
        for (let v = 0; v < m.config.vocabSize; v++) {
          maxDiff = Math.max(maxDiff, Math.abs(ref[t][v] - got[t][v]));
          maxAbs = Math.max(maxAbs, Math.abs(ref[t][v]));
        }
      }
      expect(maxAbs).toBeGreaterThan(0.5);
      expect(maxDiff / maxAbs).toBeLessThan(1e-5);
      m.dispose();
    });

    it("packed log-probs and entropies equal per-sequence log-softmax of the reference", async () => {
      const m = await Transformer.create(cfg, { seed: 6, initStd: 0.2 });
      perturb(m);
      const seqs = [
        [3, 1, 4, 1, 5, 9, 2, 6],
        [2, 7, 1, 8],
        [9, 9, 9],
      ];
      const from = [1, 2, 2];
      const res = m.computeLogprobs({ sequences: seqs, from });
      expect(res.logprobs.map((x) => x.length)).toEqual([7, 2, 1]);
      const w = { config: m.config, params: m.params, data: m.getWeights() };
      seqs.forEach((s, b) => {
        const ref = referenceLogits(w, s);
        for (let t = from[b]; t < s.length; t++) {
          const ls = logSoftmax(ref[t - 1]);
          expect(res.logprobs[b][t - from[b]]).toBeCloseTo(ls[s[t]], 4);
          const ent = -ls.reduce((acc, l) => acc + Math.exp(l) * l, 0);
          expect(res.entropy[b][t - from[b]]).toBeCloseTo(ent, 4);
        }
      });
      m.dispose();
    });

    it("gradients match float64 finite differences of the reference forward", async () => {
      const m = await Transformer.create(cfg, { seed: 7, initStd: 0.3 });
      perturb(m);
      // Lengths 10, 6 and 12: both the SIMD (width % 4 == 0) and the JS attention-backward paths run.
      const seqs = [
        [1, 5, 7, 3, 9, 11, 2, 4, 8, 10],
        [3, 4, 5, 6, 7, 8],
        [2, 9, 4, 7, 1, 1, 3, 5, 8, 13, 21, 34],
      ].map((s) => s.map((t) => t % m.config.vocabSize));
      const coef = seqs.map((s, b) => Float64Array.from({ length: s.length - 1 }, (_, i) => Math.cos(i + 2 * b)));
      const lossFn = (lps: Float32Array[]) => {
        let loss = 0;
        const grad = lps.map((a, b) => {
          const g = new Float32Array(a.length);
          for (let i = 0; i < a.length; i++) {
            loss += coef[b][i] * a[i];
            g[i] = coef[b][i];
          }
          return g;
        });
        return { loss, grad };
      };
      m.zeroGrad();
      m.accumulateGradients({ sequences: seqs }, lossFn);
      const G = m.grads().slice();
      // The same loss in float64 through the reference forward, differentiated numerically.
      const data = Float64Array.from(m.getWeights());
      const w32 = new Float32Array(data.length);
      const refLoss = (): number => {
        // The reference reads float32 weights; perturbations are applied in float64 and rounded once, so use a step
        // large enough to survive the rounding and small enough for the central difference to be exact to ~1e-6.
        for (let i = 0; i < data.length; i++) w32[i] = data[i];
        const w = { config: m.config, params: m.params, data: w32 };
        let loss = 0;
        seqs.forEach((s, b) => {
          const logits = referenceLogits(w, s);
          for (let t = 1; t < s.length; t++) loss += coef[b][t - 1] * logSoftmax(logits[t - 1])[s[t]];
        });
        return loss;
      };
      let checked = 0;
      for (const e of m.params) {
        for (const k of [0, Math.floor(e.size / 2), e.size - 1]) {
          const i = e.offset + k;
          const w0 = data[i];
          const h = 1e-3 * Math.max(1, Math.abs(w0));
          data[i] = w0 + h;
          const fp = refLoss();
          data[i] = w0 - h;
          const fm = refLoss();
          data[i] = w0;
          // The float32 rounding of w0 ± h is the actual step taken.
          const step = Math.fround(w0 + h) - Math.fround(w0 - h);
          const num = (fp - fm) / step;
          const err = Math.abs(num - G[i]);
          expect(err, `${e.name}[${k}] numeric ${num} analytic ${G[i]}`).toBeLessThan(2e-3 * Math.abs(num) + 1e-4);
          checked++;
        }
      }
      expect(checked).toBe(3 * m.params.length);
      m.dispose();
    });

    it("KV-cache prefill + decode steps give the full-forward logits", async () => {
      const m = await Transformer.create(cfg, { seed: 8, initStd: 0.2 });
      perturb(m);
      const rt = m.rt;
      const maxLen = 24;
      const seqs = [
        [4, 8, 15, 16, 23, 42 % m.config.vocabSize, 7, 1, 2, 3],
        [5, 6],
        [1, 2, 3, 4, 5, 6, 7],
      ];
      const slots = seqs.map(() => rt.allocF32(m.cacheSlotFloats(maxLen)));
      const prompt = [3, 1, 4];
      const cache = { slotPtr: slots, maxLen };
      const first = m.prefill(
        seqs.map((s) => s.slice(0, prompt[seqs.indexOf(s)])),
        cache,
      );
      const lens = seqs.map((_, i) => prompt[i]);
      // Check prefill logits, then feed the remaining tokens one by one (sequences of different lengths together).
      seqs.forEach((s, b) => {
        const full = m.logitsAll(s);
        for (let v = 0; v < 5; v++) expect(first[b][v]).toBeCloseTo(full[lens[b] - 1][v], 4);
      });
      for (let step = 0; step < 9; step++) {
        const live = seqs.map((s, b) => b).filter((b) => lens[b] < seqs[b].length);
        if (live.length === 0) break;
        const out = m.decodeStep(
          live.map((b) => seqs[b][lens[b]]),
          live.map((b) => lens[b]),
          { slotPtr: live.map((b) => slots[b]), maxLen },
        );
        live.forEach((b, i) => {
          const full = m.logitsAll(seqs[b].slice(0, lens[b] + 1));
          const want = full[lens[b]];
          let md = 0;
          for (let v = 0; v < want.length; v++) md = Math.max(md, Math.abs(want[v] - out[i][v]));
          expect(md).toBeLessThan(1e-4);
          lens[b]++;
        });
      }
      for (const s of slots) rt.free(s);
      m.dispose();
    });
  },
);

describe("training batch handling", () => {
  it("the micro-batched (recompute) path gives the same gradients as one pass", async () => {
    const cfg = CONFIGS["llama GQA tied"];
    const m = await Transformer.create(cfg, { seed: 9, initStd: 0.2 });
    const seqs = Array.from({ length: 6 }, (_, b) => Array.from({ length: 12 + b }, (_, i) => (i * 7 + b * 3) % 61));
    const lossFn = (lps: Float32Array[]) => {
      let n = 0;
      for (const a of lps) n += a.length;
      let loss = 0;
      for (const a of lps) for (const x of a) loss -= x / n;
      return { loss, grad: lps.map((a) => new Float32Array(a.length).fill(-1 / n)) };
    };
    m.zeroGrad();
    const one = m.accumulateGradients({ sequences: seqs }, lossFn);
    const g1 = m.grads().slice();
    m.zeroGrad();
    m.activationBudgetBytes = 30_000;
    const two = m.accumulateGradients({ sequences: seqs }, lossFn);
    const g2 = m.grads().slice();
    expect(one.recomputed).toBe(false);
    expect(two.recomputed).toBe(true);
    expect(two.loss).toBeCloseTo(one.loss, 5);
    let md = 0;
    let mx = 0;
    for (let i = 0; i < g1.length; i++) {
      md = Math.max(md, Math.abs(g1[i] - g2[i]));
      mx = Math.max(mx, Math.abs(g1[i]));
    }
    expect(mx).toBeGreaterThan(0);
    expect(md / mx).toBeLessThan(1e-5);
    m.dispose();
  });

  it("chunked weight-gradient products equal unchunked ones", async () => {
    const m = await Transformer.create(CONFIGS["qwen2 bias untied"], { seed: 10, initStd: 0.2 });
    const seqs = [
      Array.from({ length: 40 }, (_, i) => (i * 5) % 53),
      Array.from({ length: 23 }, (_, i) => (i * 3 + 1) % 53),
    ];
    const lossFn = (lps: Float32Array[]) => ({
      loss: 0,
      grad: lps.map((a) => Float32Array.from(a, (_, i) => Math.sin(i))),
    });
    const run = (chunk: number): Float32Array => {
      m.tuning = { wgradChunk: chunk, headChunk: chunk };
      m.zeroGrad();
      m.accumulateGradients({ sequences: seqs }, lossFn);
      return m.grads().slice();
    };
    const a = run(4096);
    const b = run(7);
    let md = 0;
    let mx = 0;
    for (let i = 0; i < a.length; i++) {
      md = Math.max(md, Math.abs(a[i] - b[i]));
      mx = Math.max(mx, Math.abs(a[i]));
    }
    expect(mx).toBeGreaterThan(0);
    expect(md / mx).toBeLessThan(1e-5);
    m.dispose();
  });

  it("rejects malformed batches and loss gradients with clear errors", async () => {
    const m = await Transformer.create(CONFIGS["llama GQA tied"], { seed: 1 });
    expect(() => m.computeLogprobs({ sequences: [[1, 2, 999]] })).toThrow(/token id 999/);
    expect(() => m.computeLogprobs({ sequences: [[1, 2]], from: [0] })).toThrow(/from\[0\]/);
    expect(() => m.computeLogprobs({ sequences: [Array(65).fill(1)] })).toThrow(/maxPositions/);
    expect(() =>
      m.accumulateGradients({ sequences: [[1, 2, 3]] }, (lps) => ({
        loss: 0,
        grad: lps.map(() => new Float32Array(5)),
      })),
    ).toThrow(/length 5, expected 2/);
    m.dispose();
  });
});
