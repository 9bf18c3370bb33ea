/**
 * A deliberately plain forward pass of the same architecture in float64 JavaScript (no heap, no kernels), used by
 * tests as the ground truth for the wasm implementation and the GGUF export. Reads weights by internal name from a
 * flat array in the {@link Transformer} layout.
 */
import type { ModelConfig } from "./config.js";
import type { ParamEntry } from "./transformer.js";

export interface ReferenceWeights {
  config: ModelConfig;
  params: readonly ParamEntry[];
  /** Flat weights (Transformer.getWeights()). */
  data: Float32Array;
}

function get(w: ReferenceWeights, name: string): { v: Float32Array; shape: number[] } {
  const e = w.params.find((p) => p.name === name);
  if (!e) throw new Error(`reference: no parameter ${name}`);
  return { v: w.data.subarray(e.offset, e.offset + e.size), shape: e.shape };
}

function rmsnorm(x: Float64Array, g: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * s * g[i];
  return y;
}

/** y[out] = x[in] @ W[in, out] */
function matvec(x: Float64Array, W: Float32Array, inDim: number, outDim: number): Float64Array {
  const y = new Float64Array(outDim);
  for (let i = 0; i < inDim; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    const o = i * outDim;
    for (let j = 0; j < outDim; j++) y[j] += xi * W[o + j];
  }
  return y;
}

function rope(v: Float64Array, off: number, dh: number, pos: number, theta: number): void {
  for (let i = 0; i < dh / 2; i++) {
    const ang = pos * Math.pow(theta, (-2 * i) / dh);
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const a = v[off + 2 * i];
    const b = v[off + 2 * i + 1];
    v[off + 2 * i] = a * c - b * s;
    v[off + 2 * i + 1] = a * s + b * c;
  }
}

/** Logits of every position ([T][V]) for one token sequence. */
export function referenceLogits(w: ReferenceWeights, tokens: readonly number[]): Float64Array[] {
  const c = w.config;
  const d = c.hiddenSize;
  const dh = c.headDim;
  const H = c.numHeads;
  const Hkv = c.numKvHeads;
  const qDim = H * dh;
  const kvDim = Hkv * dh;
  const qkvDim = qDim + 2 * kvDim;
  const ffn = c.intermediateSize;
  const T = tokens.length;
  const E = get(w, "embed").v;
  let xs: Float64Array[] = tokens.map((t) => Float64Array.from(E.subarray(t * d, (t + 1) * d)));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `layers.${l}.`;
    const qs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const xn = rmsnorm(xs[t], get(w, p + "attn_norm").v, c.rmsNormEps);
      const qkv = matvec(xn, get(w, p + "wqkv").v, d, qkvDim);
      if (c.attentionBias) {
        const b = get(w, p + "bqkv").v;
        for (let j = 0; j < qkvDim; j++) qkv[j] += b[j];
      }
      for (let h = 0; h < H; h++) rope(qkv, h * dh, dh, t, c.ropeTheta);
      for (let g = 0; g < Hkv; g++) rope(qkv, qDim + g * dh, dh, t, c.ropeTheta);
      qs.push(qkv);
    }
    const next: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const ao = new Float64Array(qDim);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / Hkv));
        const sc = new Float64Array(t + 1);
        let m = -Infinity;
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += qs[t][h * dh + e] * qs[j][qDim + g * dh + e];
          sc[j] = dot / Math.sqrt(dh);
          m = Math.max(m, sc[j]);
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          sc[j] = Math.exp(sc[j] - m);
          sum += sc[j];
        }
        for (let j = 0; j <= t; j++) {
          for (let e = 0; e < dh; e++) ao[h * dh + e] += (sc[j] / sum) * qs[j][qDim + kvDim + g * dh + e];
        }
      }
      const o = matvec(ao, get(w, p + "wo").v, qDim, d);
      const xm = new Float64Array(d);
      for (let i = 0; i < d; i++) xm[i] = xs[t][i] + o[i];
      const xn2 = rmsnorm(xm, get(w, p + "mlp_norm").v, c.rmsNormEps);
      const gu = matvec(xn2, get(w, p + "wgu").v, d, 2 * ffn);
      const act = new Float64Array(ffn);
      for (let j = 0; j < ffn; j++) {
        const a = gu[j];
        act[j] = (a / (1 + Math.exp(-a))) * gu[ffn + j];
      }
      const dn = matvec(act, get(w, p + "wd").v, ffn, d);
      for (let i = 0; i < d; i++) xm[i] += dn[i];
      next.push(xm);
    }
    xs = next;
  }
  const head = get(w, c.tieEmbeddings ? "embed" : "lm_head").v;
  return xs.map((x) => {
    const xf = rmsnorm(x, get(w, "final_norm").v, c.rmsNormEps);
    const out = new Float64Array(c.vocabSize);
    for (let v = 0; v < c.vocabSize; v++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += xf[i] * head[v * d + i];
      out[v] = s;
    }
    return out;
  });
}
