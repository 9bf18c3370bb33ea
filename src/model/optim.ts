/**
 * AdamW (decoupled weight decay) over the flat parameter/gradient buffers of a {@link Transformer}, global gradient
 * norm clipping, and optimizer state save/restore for resumable checkpoints.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteFile } from "../util/fsutil.js";
import { readSafetensors, writeSafetensors } from "./safetensors.js";
import type { Transformer } from "./transformer.js";

export interface AdamWOptions {
  /** Default (0.9, 0.95). */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay coefficient, applied to matrices only (default 0). */
  weightDecay?: number;
}

/** Serializable optimizer state (moments in the model's flat parameter layout). */
export interface AdamWState {
  step: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** First moment, length = model.numParams. */
  m: Float32Array;
  /** Second moment, length = model.numParams. */
  v: Float32Array;
}

/**
 * AdamW for one model. Usage per optimizer step: `model.zeroGrad()`, one or more `model.accumulateGradients(...)`,
 * `opt.clipGradNorm(1.0)` (optional), `opt.step(lr)`.
 */
/** Frees heap moments of optimizers that were dropped without {@link AdamW.dispose}. */
const heapMoments = new FinalizationRegistry<{ free: (p: number) => void; ptrs: number[] }>((h) => {
  for (const p of h.ptrs) h.free(p);
});

export class AdamW {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** Moments: on the model's heap (byte pointers) where its SIMD kernels run, else in JS arrays. */
  private heapM: number;
  private heapV: number;
  private readonly jsM: Float32Array | null;
  private readonly jsV: Float32Array | null;
  private decayMask: Uint8Array;
  /** Number of steps taken. */
  stepCount = 0;

  constructor(
    readonly model: Transformer,
    opts: AdamWOptions = {},
  ) {
    this.betas = opts.betas ?? [0.9, 0.95];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    const [b1, b2] = this.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error("AdamW: betas must be in [0, 1)");
    if (!(this.eps > 0)) throw new Error("AdamW: eps must be > 0");
    if (!(this.weightDecay >= 0)) throw new Error("AdamW: weightDecay must be >= 0");
    const rt = model.rt;
    if (rt.simd) {
      this.heapM = rt.allocF32(model.numParams);
      this.heapV = rt.allocF32(model.numParams);
      rt.view(this.heapM, model.numParams).fill(0);
      rt.view(this.heapV, model.numParams).fill(0);
      this.jsM = this.jsV = null;
      heapMoments.register(this, { free: (p: number) => rt.free(p), ptrs: [this.heapM, this.heapV] }, this);
    } else {
      this.heapM = this.heapV = 0;
      this.jsM = new Float32Array(model.numParams);
      this.jsV = new Float32Array(model.numParams);
    }
    this.decayMask = new Uint8Array(model.numParams);
    for (const e of model.params) if (e.decay) this.decayMask.fill(1, e.offset, e.offset + e.size);
  }

  /** First moment (a view: re-fetch after anything that allocates on the model's heap). */
  private get m(): Float32Array {
    return this.jsM ?? this.model.rt.view(this.heapM, this.model.numParams);
  }
  private get v(): Float32Array {
    return this.jsV ?? this.model.rt.view(this.heapV, this.model.numParams);
  }

  /** Free the heap moments now (otherwise they are freed when the optimizer is garbage-collected). */
  dispose(): void {
    if (!this.heapM) return;
    heapMoments.unregister(this);
    this.model.rt.free(this.heapM);
    this.model.rt.free(this.heapV);
    this.heapM = this.heapV = 0;
  }

  /** Global L2 norm of the gradients. */
  gradNorm(): number {
    const g = this.model.grads();
    const simd = this.model.rt.simd;
    let s = 0;
    if (simd && g.length % 4 === 0) {
      // Per tensor in float32 SIMD lanes, summed in float64.
      const gp = g.byteOffset;
      for (const e of this.model.params) {
        const n = Math.ceil(e.size / 4) * 4;
        s += simd.dot(gp + 4 * e.offset, gp + 4 * e.offset, n);
      }
      return Math.sqrt(s);
    }
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    return Math.sqrt(s);
  }

  /**
   * Scale gradients so their global L2 norm is at most `maxNorm`. Returns the norm before clipping (non-finite norms
   * are returned as is and the gradients left untouched, so the caller can skip the step).
   */
  clipGradNorm(maxNorm: number): number {
    const norm = this.gradNorm();
    if (Number.isFinite(norm) && norm > maxNorm && maxNorm > 0) {
      const k = maxNorm / (norm + 1e-6);
      const g = this.model.grads();
      const simd = this.model.rt.simd;
      if (simd && g.length % 4 === 0) simd.scale(g.byteOffset, g.length, k);
      else for (let i = 0; i < g.length; i++) g[i] *= k;
    }
    return norm;
  }

  /** One AdamW update with learning rate `lr` (the schedule is the caller's). */
  step(lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`AdamW.step: bad learning rate ${lr}`);
    this.stepCount++;
    const [b1, b2] = this.betas;
    const bc1 = 1 - Math.pow(b1, this.stepCount);
    const bc2 = 1 - Math.pow(b2, this.stepCount);
    const stepSize = lr / bc1;
    const invSqrtBc2 = 1 / Math.sqrt(bc2);
    const decay = 1 - lr * this.weightDecay;
    const g = this.model.grads();
    const w = this.model.weights();
    const simd = this.model.rt.simd;
    if (this.heapM && simd) {
      // Per tensor (each starts 16-byte aligned; its padding holds zeros and stays zero).
      for (const e of this.model.params) {
        const n = Math.ceil(e.size / 4) * 4;
        const o = 4 * e.offset;
        const dec = e.decay ? decay : 1;
        simd.adamw(
          w.byteOffset + o,
          g.byteOffset + o,
          this.heapM + o,
          this.heapV + o,
          n,
          b1,
          b2,
          stepSize,
          invSqrtBc2,
          this.eps,
          dec,
        );
      }
      this.model.markWeightsChanged();
      return;
    }
    const m = this.m;
    const v = this.v;
    const mask = this.decayMask;
    const eps = this.eps;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vi = b2 * v[i] + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      let wi = w[i];
      if (mask[i]) wi *= decay;
      w[i] = wi - (stepSize * mi) / (Math.sqrt(vi) * invSqrtBc2 + eps);
    }
    this.model.markWeightsChanged();
  }

  /** A copy of the optimizer state. */
  state(): AdamWState {
    return {
      step: this.stepCount,
      betas: [...this.betas] as [number, number],
      eps: this.eps,
      weightDecay: this.weightDecay,
      m: this.m.slice(),
      v: this.v.slice(),
    };
  }

  /** Restore a state taken from an optimizer over a model of the same configuration. */
  loadState(s: AdamWState): void {
    if (s.m.length !== this.m.length || s.v.length !== this.v.length) {
      throw new Error(`optimizer state has ${s.m.length} moments, model has ${this.m.length} parameters`);
    }
    this.m.set(s.m);
    this.v.set(s.v);
    this.stepCount = s.step;
  }

  /** Write the state to `file` (safetensors: exp_avg, exp_avg_sq; metadata: step and hyper-parameters), atomically. */
  async save(file: string): Promise<void> {
    const bytes = writeSafetensors(
      [
        { name: "exp_avg", dtype: "F32", shape: [this.m.length], data: this.m },
        { name: "exp_avg_sq", dtype: "F32", shape: [this.v.length], data: this.v },
      ],
      {
        format: "searchrl-adamw",
        step: String(this.stepCount),
        betas: JSON.stringify(this.betas),
        eps: String(this.eps),
        weight_decay: String(this.weightDecay),
      },
    );
    await atomicWriteFile(file, bytes);
  }

  /** Load a state written by {@link save}. Hyper-parameters of this instance are kept; moments and step restored. */
  async load(file: string): Promise<void> {
    const st = readSafetensors(new Uint8Array(await fsp.readFile(file)), path.basename(file));
    if (st.metadata.format !== "searchrl-adamw") throw new Error(`${file} is not a searchrl optimizer state`);
    const m = st.tensor("exp_avg").toFloat32();
    const v = st.tensor("exp_avg_sq").toFloat32();
    this.loadState({
      step: Number(st.metadata.step ?? 0),
      betas: this.betas,
      eps: this.eps,
      weightDecay: this.weightDecay,
      m,
      v,
    });
  }
}
