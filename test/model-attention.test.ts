/**
 * The attention of src/model/attention.ts (all heads of a sequence in batched products) against a float64 naive
 * attention, forward and backward, on each engine, with grouped kv heads, lengths that are multiples of 4 (the SIMD
 * softmax backward) and lengths that are not (the JS one), and the model's log-probs of a long and a short
 * sequence against the float64 reference.
 */
import { afterAll, describe, expect, it } from "vitest";
import { attentionBackward, attentionForward, attentionProbFloats } from "../src/model/attention.js";
import { Transformer } from "../src/model/index.js";
import { referenceLogits } from "../src/model/reference.js";
import { getRuntime } from "../src/model/runtime.js";

afterAll(async () => (await getRuntime()).useEngine("native"));

/** Float64 causal attention: o, and the gradients of sum(o * g). */
function naive(q: Float64Array, k: Float64Array, v: Float64Array, g: Float64Array, T: number, dh: number) {
  const P = new Float64Array(T * T);
  const o = new Float64Array(T * dh);
  for (let i = 0; i < T; i++) {
    let m = -Infinity;
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let e = 0; e < dh; e++) s += q[i * dh + e] * k[j * dh + e];
      P[i * T + j] = s;
      m = Math.max(m, s);
    }
    let z = 0;
    for (let j = 0; j <= i; j++) z += P[i * T + j] = Math.exp(P[i * T + j] - m);
    for (let j = 0; j <= i; j++) P[i * T + j] /= z;
    for (let j = 0; j <= i; j++) for (let e = 0; e < dh; e++) o[i * dh + e] += P[i * T + j] * v[j * dh + e];
  }
  const dq = new Float64Array(T * dh);
  const dk = new Float64Array(T * dh);
  const dv = new Float64Array(T * dh);
  for (let i = 0; i < T; i++) {
    const dp = new Float64Array(i + 1);
    let dot = 0;
    for (let j = 0; j <= i; j++) {
      for (let e = 0; e < dh; e++) {
        dp[j] += g[i * dh + e] * v[j * dh + e];
        dv[j * dh + e] += P[i * T + j] * g[i * dh + e];
      }
      dot += dp[j] * P[i * T + j];
    }
    for (let j = 0; j <= i; j++) {
      const ds = P[i * T + j] * (dp[j] - dot);
      for (let e = 0; e < dh; e++) {
        dq[i * dh + e] += ds * k[j * dh + e];
        dk[j * dh + e] += ds * q[i * dh + e];
      }
    }
  }
  return { o, dq, dk, dv };
}

function maxRelErr(got: Float32Array, want: Float64Array): number {
  let scale = 1e-6;
  for (const x of want) scale = Math.max(scale, Math.abs(x));
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / scale;
}

describe("causal attention of a sequence (all heads in batched products)", () => {
  it.each(["native", "wasm"] as const)("forward and backward match float64 attention (%s engine)", async (engine) => {
    const rt = await getRuntime();
    rt.useEngine(engine, 1);
    const dh = 8;
    let cases = 0;
    for (const [T, Hkv, rep] of [
      [1, 1, 1],
      [5, 2, 1],
      [16, 1, 3],
      [37, 2, 2],
      [130, 3, 1],
      [64, 2, 2],
    ]) {
      const shape = { T, dh, Hkv, rep };
      const H = Hkv * rep;
      const rnd = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + s) * 1.3);
      const [q, g] = [rnd(H * T * dh, 1), rnd(H * T * dh, 4)];
      const [k, v] = [rnd(Hkv * T * dh, 2), rnd(Hkv * T * dh, 3)];
      // Ground truth per query head (head h = group g, member j: rows g*rep*T + j*T ...).
      const want = {
        o: new Float64Array(H * T * dh),
        dq: new Float64Array(H * T * dh),
        dk: new Float64Array(Hkv * T * dh),
        dv: new Float64Array(Hkv * T * dh),
      };
      for (let gi = 0; gi < Hkv; gi++)
        for (let j = 0; j < rep; j++) {
          const qo = (gi * rep + j) * T * dh;
          const ko = gi * T * dh;
          const r = naive(
            q.subarray(qo, qo + T * dh),
            k.subarray(ko, ko + T * dh),
            v.subarray(ko, ko + T * dh),
            g.subarray(qo, qo + T * dh),
            T,
            dh,
          );
          want.o.set(r.o, qo);
          want.dq.set(r.dq, qo);
          for (let i = 0; i < T * dh; i++) {
            want.dk[ko + i] += r.dk[i];
            want.dv[ko + i] += r.dv[i];
          }
        }
      const put = (x: Float64Array, fill = 0) => {
        const p = rt.allocF32(x.length);
        const view = rt.view(p, x.length);
        for (let i = 0; i < x.length; i++) view[i] = x[i] + fill;
        return p;
      };
      const [qp, kp, vp, gp] = [put(q), put(k), put(v), put(g)];
      const o = put(new Float64Array(H * T * dh), 7);
      const P = rt.allocF32(attentionProbFloats(shape));
      const dq = put(new Float64Array(H * T * dh), 99); // all overwritten
      const dk = put(new Float64Array(Hkv * T * dh), 99);
      const dv = put(new Float64Array(Hkv * T * dh), 99);
      const scratch = rt.allocF32(attentionProbFloats(shape));
      attentionForward(rt, qp, kp, vp, o, P, shape);
      attentionBackward(rt, qp, kp, vp, P, gp, dq, dk, dv, scratch, shape);
      const tag = `${engine} T=${T} Hkv=${Hkv} rep=${rep}`;
      expect(maxRelErr(rt.view(o, H * T * dh), want.o), tag).toBeLessThan(1e-5);
      expect(maxRelErr(rt.view(dq, H * T * dh), want.dq), tag).toBeLessThan(1e-4);
      expect(maxRelErr(rt.view(dk, Hkv * T * dh), want.dk), tag).toBeLessThan(1e-4);
      expect(maxRelErr(rt.view(dv, Hkv * T * dh), want.dv), tag).toBeLessThan(1e-4);
      for (const p of [qp, kp, vp, gp, o, P, dq, dk, dv, scratch]) rt.free(p);
      cases++;
    }
    expect(cases).toBe(6);
  });

  it.each(["native", "wasm"] as const)(
    "a model's log-probs of a long and a short sequence match the float64 reference (%s engine)",
    async (engine) => {
      const rt = await getRuntime();
      rt.useEngine(engine, 1);
      const m = await Transformer.create(
        {
          vocabSize: 97,
          hiddenSize: 32,
          intermediateSize: 64,
          numLayers: 2,
          numHeads: 4,
          numKvHeads: 2,
          maxPositions: 256,
        },
        { seed: 3 },
      );
      try {
        const seq = Array.from({ length: 201 }, (_, i) => (i * 13 + 5) % 97);
        const got = m.computeLogprobs({ sequences: [seq, seq.slice(0, 70)] }).logprobs;
        const logits = referenceLogits({ config: m.config, params: m.params, data: m.getWeights() }, seq);
        let err = 0;
        for (let t = 1; t < seq.length; t++) {
          const row = logits[t - 1];
          let mx = -Infinity;
          for (const x of row) mx = Math.max(mx, x);
          let z = 0;
          for (const x of row) z += Math.exp(x - mx);
          const want = row[seq[t]] - mx - Math.log(z);
          err = Math.max(err, Math.abs(got[0][t - 1] - want));
          if (t < 70) err = Math.max(err, Math.abs(got[1][t - 1] - want));
        }
        expect(err).toBeLessThan(2e-4);
      } finally {
        m.dispose();
      }
    },
  );
});

describe("single-query attention over the KV cache (decoding)", () => {
  it.each([32, 64, 12])("decode steps match full forwards at head width %i", async (dh) => {
    const rt = await getRuntime();
    rt.useEngine("native", 1);
    const m = await Transformer.create(
      {
        vocabSize: 64,
        hiddenSize: 2 * dh,
        intermediateSize: 48,
        numLayers: 2,
        numHeads: 2,
        numKvHeads: 1,
        headDim: dh,
        maxPositions: 64,
      },
      { seed: 5 },
    );
    try {
      const maxLen = 40;
      const seqs = [Array.from({ length: 37 }, (_, i) => (i * 11 + 3) % 64), [9, 8, 7, 6, 5]];
      const slots = seqs.map(() => rt.allocF32(m.cacheSlotFloats(maxLen)));
      const lens = [2, 1];
      m.prefill(
        seqs.map((s, b) => s.slice(0, lens[b])),
        { slotPtr: slots, maxLen },
      );
      let checked = 0;
      for (;;) {
        const live = [0, 1].filter((b) => lens[b] < seqs[b].length);
        if (live.length === 0) break;
        const out = m.decodeStep(
          live.map((b) => seqs[b][lens[b]]),
          live.map((b) => lens[b]),
          { slotPtr: live.map((b) => slots[b]), maxLen },
        );
        live.forEach((b, i) => {
          const want = m.logitsAll(seqs[b].slice(0, lens[b] + 1))[lens[b]];
          let md = 0;
          for (let v = 0; v < want.length; v++) md = Math.max(md, Math.abs(want[v] - out[i][v]));
          expect(md, `dh ${dh} seq ${b} pos ${lens[b]}`).toBeLessThan(1e-4);
          lens[b]++;
          checked++;
        });
      }
      expect(checked).toBe(35 + 4);
      for (const s of slots) rt.free(s);
    } finally {
      m.dispose();
    }
  });
});
