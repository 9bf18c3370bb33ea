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
export class AdamW {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private m: Float32Array;
  private v: Float32Array;
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
    this.m = new Float32Array(model.numParams);
    this.v = new Float32Array(model.numParams);
    this.decayMask = new Uint8Array(model.numParams);
    for (const e of model.params) if (e.decay) this.decayMask.fill(1, e.offset, e.offset + e.size);
  }

  /** Global L2 norm of the gradients. */
  gradNorm(): number {
    const g = this.model.grads();
    let s = 0;
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
      for (let i = 0; i < g.length; i++) g[i] *= k;
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
