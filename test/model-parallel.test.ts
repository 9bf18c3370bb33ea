/**
 * ParallelModel: worker-thread replicas give the same log-probs, gradients and greedy samples as the single-thread
 * model, pick up new weights after an optimizer step, and shard uneven batches.
 */
import { afterAll, describe, expect, it } from "vitest";
import { AdamW, BatchGenerator, ParallelModel, Transformer, getWasmRuntime, trainBpe } from "../src/model/index.js";

const CFG = {
  vocabSize: 300,
  hiddenSize: 48,
  intermediateSize: 80,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositions: 128,
};

describe("ParallelModel with one worker", async () => {
  const model = await Transformer.create(CFG, { seed: 3, initStd: 0.2 });
  const twin = await Transformer.create(CFG, { seed: 3, initStd: 0.2 });
  const pm = await ParallelModel.create(model, { workers: 1 });
  afterAll(async () => {
    await pm.close();
    model.dispose();
    twin.dispose();
  });
  const seqs = Array.from({ length: 7 }, (_, b) =>
    Array.from({ length: 10 + 9 * b }, (_, i) => (i * 13 + b * 7) % 300),
  );
  const from = seqs.map((_, b) => 1 + (b % 3));
  const lossFn = (lps: Float32Array[]) => {
    let loss = 0;
    const grad = lps.map((a, b) =>
      Float32Array.from(a, (x, i) => {
        const c = Math.cos(i + b);
        loss += c * x;
        return c;
      }),
    );
    return { loss, grad };
  };

  it("log-probs equal the single-thread model's", async () => {
    const a = await pm.computeLogprobs({ sequences: seqs, from });
    const b = twin.computeLogprobs({ sequences: seqs, from });
    for (let i = 0; i < seqs.length; i++) {
      expect(a.logprobs[i].length).toBe(seqs[i].length - from[i]);
      for (let t = 0; t < a.logprobs[i].length; t++) expect(a.logprobs[i][t]).toBeCloseTo(b.logprobs[i][t], 5);
    }
  });

  it("gradients summed over replicas equal one-pass gradients; optimizer steps reach the workers", async () => {
    const optA = new AdamW(model);
    const optB = new AdamW(twin);
    for (let step = 0; step < 2; step++) {
      model.zeroGrad();
      twin.zeroGrad();
      const ra = await pm.accumulateGradients({ sequences: seqs, from }, lossFn);
      const rb = twin.accumulateGradients({ sequences: seqs, from }, lossFn);
      expect(ra.loss).toBeCloseTo(rb.loss, 3);
      expect(ra.tokens).toBe(rb.tokens);
      const ga = model.grads();
      const gb = twin.grads();
      let md = 0;
      let mx = 0;
      for (let i = 0; i < ga.length; i++) {
        md = Math.max(md, Math.abs(ga[i] - gb[i]));
        mx = Math.max(mx, Math.abs(gb[i]));
      }
      expect(mx).toBeGreaterThan(0);
      expect(md / mx).toBeLessThan(1e-5);
      optA.step(1e-2);
      optB.step(1e-2);
    }
    // After the steps, worker log-probs follow the new weights.
    const a = await pm.computeLogprobs({ sequences: seqs });
    const b = twin.computeLogprobs({ sequences: seqs });
    for (let i = 0; i < seqs.length; i++)
      for (let t = 0; t < 3; t++) expect(a.logprobs[i][t]).toBeCloseTo(b.logprobs[i][t], 4);
  });

  it("a lossFn error releases the passes and propagates", async () => {
    await expect(
      pm.accumulateGradients({ sequences: seqs }, () => {
        throw new Error("bad loss");
      }),
    ).rejects.toThrow(/bad loss/);
    // Still usable afterwards.
    const r = await pm.accumulateGradients({ sequences: seqs }, lossFn);
    expect(Number.isFinite(r.loss)).toBe(true);
  });

  it("sampling over replicas equals single-thread sampling", async () => {
    twin.copyWeightsFrom(model);
    const tok = trainBpe(["the quick brown fox jumps over the lazy dog\n"], {
      vocabSize: 300,
      specialTokens: ["<|endoftext|>"],
      minFrequency: 1,
    });
    const g1 = new BatchGenerator(pm, tok, { maxBatch: 16 });
    const g2 = new BatchGenerator(twin, tok, { maxBatch: 16 });
    const reqs = Array.from({ length: 6 }, (_, i) => ({
      tokens: tok.encode("the quick".slice(0, 3 + i)),
      params: { temperature: i % 2 ? 0.8 : 0, topP: 0.9, maxTokens: 12, stop: [], seed: 100 + i },
    }));
    const a = await g1.generateBatch(reqs);
    const b = await g2.generateBatch(reqs);
    for (let i = 0; i < reqs.length; i++) {
      expect(a[i].tokens).toEqual(b[i].tokens);
      for (let t = 0; t < a[i].tokens.length; t++) expect(a[i].logprobs![t]).toBeCloseTo(b[i].logprobs![t], 4);
    }
    // All sampling in the worker (the calling thread's event loop stays free): same results.
    const g3 = new BatchGenerator(pm, tok, { maxBatch: 16, useCallingThread: false });
    const c = await g3.generateBatch(reqs);
    for (let i = 0; i < reqs.length; i++) expect(c[i].tokens).toEqual(b[i].tokens);
    g1.close();
    g2.close();
    g3.close();
  });
});

describe("multi-threaded XNNPACK runtime (opt-in)", () => {
  it("gives the same log-probs and gradients as the single-threaded runtime", async () => {
    const rt2 = await getWasmRuntime({ threads: 2 });
    expect(rt2.threads).toBe(2);
    const a = await Transformer.create(CFG, { seed: 4 });
    const b = await Transformer.create(CFG, { seed: 4, runtime: rt2 });
    expect(b.rt).not.toBe(a.rt);
    const seqs = [
      Array.from({ length: 40 }, (_, i) => (i * 7) % 300),
      Array.from({ length: 17 }, (_, i) => (i * 3) % 300),
    ];
    const la = a.computeLogprobs({ sequences: seqs }).logprobs;
    const lb = b.computeLogprobs({ sequences: seqs }).logprobs;
    for (let i = 0; i < seqs.length; i++)
      for (let t = 0; t < la[i].length; t++) expect(lb[i][t]).toBeCloseTo(la[i][t], 5);
    const loss = (lps: Float32Array[]) => ({ loss: 0, grad: lps.map((x) => new Float32Array(x.length).fill(0.01)) });
    a.zeroGrad();
    b.zeroGrad();
    a.accumulateGradients({ sequences: seqs }, loss);
    b.accumulateGradients({ sequences: seqs }, loss);
    const ga = a.grads();
    const gb = b.grads();
    let md = 0;
    for (let i = 0; i < ga.length; i++) md = Math.max(md, Math.abs(ga[i] - gb[i]));
    expect(md).toBeLessThan(1e-5);
    a.dispose();
    b.dispose();
  });
});
