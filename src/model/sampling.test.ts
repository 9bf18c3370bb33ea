/** Sampling: greedy, temperature, top-k then top-p against a sort-based reference, raw log-probs. */
import { describe, expect, it } from "vitest";
import { Rng } from "../util/rng.js";
import { sampleToken } from "./sampling.js";

/** Reference: the kept distribution after temperature, top-k and top-p (sorted, vLLM order). */
function reference(logits: number[], t: number, topK: number, topP: number): Map<number, number> {
  const m = Math.max(...logits);
  let p = logits.map((z) => Math.exp((z - m) / t));
  const idx = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
  const keep = new Set<number>();
  const k = topK > 0 ? topK : logits.length;
  let kept = idx.slice(0, k);
  const mass = kept.reduce((s, i) => s + p[i], 0);
  let cum = 0;
  const out: number[] = [];
  for (const i of kept) {
    out.push(i);
    cum += p[i];
    if (cum >= topP * mass) break;
  }
  kept = out;
  for (const i of kept) keep.add(i);
  p = p.map((v, i) => (keep.has(i) ? v : 0));
  const z = p.reduce((a, b) => a + b, 0);
  return new Map(kept.map((i) => [i, p[i] / z]));
}

describe("sampleToken", () => {
  const rng = new Rng(7);
  const V = 300;
  const logits = Float32Array.from({ length: V }, (_, i) => 3 * Math.sin(i * 1.3) + (i % 7 === 0 ? 2 : 0));
  const raw = (() => {
    const m = Math.max(...logits);
    const l = m + Math.log(logits.reduce((s, z) => s + Math.exp(z - m), 0));
    return Array.from(logits, (z) => z - l);
  })();

  it("greedy returns the argmax with its raw log-prob", () => {
    const r = sampleToken(logits, { temperature: 0, topP: 1 }, rng);
    const arg = raw.indexOf(Math.max(...raw));
    expect(r.token).toBe(arg);
    expect(r.logprob).toBeCloseTo(raw[arg], 5);
  });

  for (const [t, k, p] of [
    [1, 0, 1],
    [0.7, 0, 0.9],
    [1.3, 20, 1],
    [1, 25, 0.8],
    [0.5, 0, 0.5],
  ]) {
    it(`matches the reference distribution (temperature ${t}, top-k ${k}, top-p ${p})`, () => {
      const ref = reference(Array.from(logits), t, k, p);
      const n = 8000;
      const counts = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const r = sampleToken(logits, { temperature: t, topP: p, topK: k }, rng, new Float32Array(V));
        expect(ref.has(r.token), `token ${r.token} outside the kept set`).toBe(true);
        expect(r.logprob).toBeCloseTo(raw[r.token], 4);
        counts.set(r.token, (counts.get(r.token) ?? 0) + 1);
      }
      for (const [tok, q] of ref) {
        const f = (counts.get(tok) ?? 0) / n;
        expect(Math.abs(f - q)).toBeLessThan(4 * Math.sqrt((q * (1 - q)) / n) + 1e-3);
      }
    });
  }
});

describe("sampleToken with a precomputed softmax (the model's SIMD pass at temperature 1)", () => {
  it("draws the same tokens with the same log-probs as computing the softmax itself", () => {
    const V = 512;
    let same = 0;
    let draws = 0;
    for (let b = 0; b < 40; b++) {
      const logits = Float32Array.from({ length: V }, (_, i) => Math.sin(i * 0.37 + b) * 3 + Math.cos(i * 0.013 * b));
      let max = -Infinity;
      for (const x of logits) max = Math.max(max, x);
      let sum = 0;
      for (const x of logits) sum += Math.exp(x - max);
      for (const params of [
        { temperature: 1, topP: 0.9 },
        { temperature: 1, topP: 1, topK: 20 },
        { temperature: 1, topP: 1 },
      ]) {
        const probs = Float32Array.from(logits, (x) => Math.exp(x - max) / sum);
        const a = sampleToken(logits, params, new Rng(b), new Float32Array(V));
        const c = sampleToken(logits, params, new Rng(b), new Float32Array(V), { probs, max, sum });
        expect(c.logprob).toBeCloseTo(logits[c.token] - max - Math.log(sum), 6);
        if (a.token === c.token) same++;
        draws++;
      }
    }
    // Normalised vs unnormalised probabilities only move the cut points by rounding.
    expect(same / draws).toBeGreaterThan(0.97);
  });
});
