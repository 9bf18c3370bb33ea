/**
 * The compute engines under the built-in model: which one this install selected, the native engine's GEMM forms
 * against a naive product, and the native engine against the wasm engine on the same batch (log-probs, entropies,
 * gradients, an AdamW step, seeded sampling) within float32 tolerance.
 */
import { afterAll, describe, expect, it } from "vitest";
import { AdamW, BatchGenerator, Transformer, trainBpe, type LogprobLossFn } from "../src/model/index.js";
import { engineChoice, getRuntime } from "../src/model/runtime.js";

afterAll(async () => (await getRuntime()).useEngine("native"));

describe("engine selection", () => {
  it("a fresh install runs the native engine (or says why not)", async () => {
    const rt = await getRuntime();
    const choice = engineChoice();
    console.log(`engine: ${rt.engineName}${choice.reason ? ` (${choice.reason})` : ""}`);
    if (process.env.SEARCHRL_ENGINE === "wasm") {
      expect(choice.engine).toBe("wasm");
      return;
    }
    // onnxruntime-node ships prebuilt CPU binaries for this platform inside its npm package: the native engine must load.
    expect(choice.reason).toBe("");
    expect(choice.engine).toBe("native");
    expect(rt.hasNative).toBe(true);
    expect(rt.engineName).toMatch(/^onnxruntime-mlas/);
  });

  it("SEARCHRL_ENGINE=wasm selects the fallback and a bad value is ignored", () => {
    const saved = process.env.SEARCHRL_ENGINE;
    try {
      process.env.SEARCHRL_ENGINE = "wasm";
      expect(engineChoice().engine).toBe("wasm");
      process.env.SEARCHRL_ENGINE = "bogus";
      expect(engineChoice().engine).toBe("native");
      expect(engineChoice("wasm").engine).toBe("wasm");
    } finally {
      if (saved === undefined) delete process.env.SEARCHRL_ENGINE;
      else process.env.SEARCHRL_ENGINE = saved;
    }
  });
});

describe("GEMM forms of each engine", () => {
  it.each([
    ["native", 1],
    ["native", 2],
    ["wasm", 1],
  ] as const)("transA × transB × accumulate match a naive product (%s, %i threads)", async (engine, threads) => {
    const rt = await getRuntime();
    rt.useEngine(engine, threads);
    for (const [m, k, n] of [
      [37, 53, 29],
      [1, 7, 5],
      [6, 0, 4],
    ]) {
      const A = rt.allocF32(Math.max(1, m * k));
      const B = rt.allocF32(Math.max(1, k * n));
      const O = rt.allocF32(m * n);
      const H = rt.f32();
      for (let i = 0; i < m * k; i++) H[(A >> 2) + i] = Math.sin(i);
      for (let i = 0; i < k * n; i++) H[(B >> 2) + i] = Math.cos(0.7 * i);
      for (const ta of [false, true])
        for (const tb of [false, true])
          for (const acc of [false, true]) {
            const init = (i: number) => (acc ? 0.25 * i : 99);
            const H0 = rt.f32();
            for (let i = 0; i < m * n; i++) H0[(O >> 2) + i] = init(i);
            rt.gemm(A, B, O, m, k, n, ta, tb, acc);
            const H1 = rt.f32();
            let err = 0;
            for (let i = 0; i < m; i++)
              for (let j = 0; j < n; j++) {
                let s = acc ? init(i * n + j) : 0;
                for (let p = 0; p < k; p++)
                  s += H1[(A >> 2) + (ta ? p * m + i : i * k + p)] * H1[(B >> 2) + (tb ? j * k + p : p * n + j)];
                err = Math.max(err, Math.abs(s - H1[(O >> 2) + i * n + j]) / (1 + Math.abs(s)));
              }
            expect(err, `m${m} k${k} n${n} ta${ta} tb${tb} acc${acc}`).toBeLessThan(1e-5);
          }
      for (const p of [A, B, O]) rt.free(p);
    }
    rt.useEngine("native");
  });
});

describe("native engine against the wasm engine", () => {
  const cfg = {
    vocabSize: 96,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    maxPositions: 64,
  };
  const seqs = [
    [1, 5, 9, 13, 2, 7, 11, 40, 3, 8, 12, 60, 70],
    [4, 4, 9, 31, 2],
    [88, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
  ];
  // A loss that weights positions differently, so a mix-up of rows shows.
  const loss: LogprobLossFn = (lps) => {
    let l = 0;
    const grad = lps.map((a, b) => Float32Array.from(a, (x, i) => ((b + 1) * (i % 3 === 0 ? -1 : -0.5)) / 40));
    lps.forEach((a, b) => a.forEach((x, i) => (l += grad[b][i] * x)));
    return { loss: l, grad };
  };

  async function run(engine: "native" | "wasm") {
    const rt = await getRuntime();
    rt.useEngine(engine);
    const m = await Transformer.create(cfg, { seed: 11, initStd: 0.1 });
    m.zeroGrad();
    const r = m.accumulateGradients({ sequences: seqs, from: [1, 2, 5] }, loss);
    const grads = m.grads().slice();
    const opt = new AdamW(m, { weightDecay: 0.1 });
    opt.clipGradNorm(0.5);
    opt.step(1e-2);
    const after = m.computeLogprobs({ sequences: seqs });
    const weights = m.weights().slice();
    opt.dispose();
    return { m, r, grads, after, weights };
  }

  it("log-probs, entropies, gradients and an AdamW step agree within float32 tolerance", async () => {
    const a = await run("native");
    const b = await run("wasm");
    const close = (x: ArrayLike<number>, y: ArrayLike<number>, tol: number, what: string) => {
      expect(x.length, what).toBe(y.length);
      let err = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        err = Math.max(err, Math.abs(x[i] - y[i]));
        scale = Math.max(scale, Math.abs(y[i]));
      }
      expect(err, `${what}: max |diff| ${err} (max |value| ${scale})`).toBeLessThan(tol * Math.max(1, scale));
    };
    expect(Math.abs(a.r.loss - b.r.loss)).toBeLessThan(1e-5);
    a.r.logprobs.forEach((x, i) => close(x, b.r.logprobs[i], 1e-5, `logprobs ${i}`));
    a.r.entropy.forEach((x, i) => close(x, b.r.entropy[i], 1e-5, `entropy ${i}`));
    close(a.grads, b.grads, 1e-4, "gradients");
    // The gradients are not all zero (the comparison means something).
    expect(a.grads.some((g) => Math.abs(g) > 1e-4)).toBe(true);
    // The first AdamW step moves each weight by about ±lr; tiny gradients make its sign sensitive to rounding.
    close(a.weights, b.weights, 1e-4, "weights after AdamW");
    a.after.logprobs.forEach((x, i) => close(x, b.after.logprobs[i], 1e-4, `logprobs after step ${i}`));
    a.m.dispose();
    b.m.dispose();
  });

  it("seeded sampling gives the same tokens on both engines", async () => {
    const tok = trainBpe(["the cat sat on the mat. the dog sat on the log. a cat and a dog."], {
      vocabSize: 300,
      specialTokens: ["<|endoftext|>"],
      minFrequency: 1,
    });
    const out: number[][][] = [];
    for (const engine of ["native", "wasm"] as const) {
      (await getRuntime()).useEngine(engine);
      const m = await Transformer.create({ ...cfg, vocabSize: tok.vocabSize }, { seed: 3, initStd: 0.3 });
      const gen = new BatchGenerator(m, tok, { maxBatch: 4 });
      const prompts = ["the cat", "a dog", "the", "on the mat"].map((s) => tok.encode(s));
      const res = await gen.generateBatch(
        prompts.map((t, i) => ({ tokens: t, params: { temperature: 1, topP: 0.9, maxTokens: 12, stop: [], seed: i } })),
      );
      out.push(res.map((r) => r.tokens));
      gen.close();
      m.dispose();
    }
    expect(out[0].flat().length).toBeGreaterThan(20);
    expect(out[0]).toEqual(out[1]);
  });
});
