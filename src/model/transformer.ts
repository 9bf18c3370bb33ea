/**
 * The built-in decoder (llama layout) on the tfjs-wasm kernels: forward over packed variable-length sequences,
 * hand-written backward (no autodiff tape), per-token log-probs and entropy, and the pieces the sampler needs
 * (prefill into a KV cache, one decode step for many sequences).
 *
 * Layout choices (see docs/model.md):
 * - All parameters live in ONE flat float32 buffer on the wasm heap (and the gradients in a second one with the same
 *   layout), so the optimizer, clipping, cloning and weight transfer are single loops/copies.
 * - Projections are stored as [in, out] (x @ W) because that is the only fast matmul form; q/k/v are fused into one
 *   [d, (H + 2*Hkv)*dh] matrix, gate/up into one [d, 2*ffn] matrix. Checkpoint code converts to/from HF names/layout.
 * - Sequences are packed without padding: linear layers run on all tokens at once ([N, d] @ [d, k]); attention runs
 *   per (sequence, kv-head group) as 2-D matmuls on zero-copy views.
 * - RoPE rotates adjacent pairs (x[2i], x[2i+1]) — llama.cpp's convention for the GGUF `llama` architecture — so
 *   weights go to GGUF as they are; HF export/import permutes q/k rows (checkpoint.ts).
 */
import { Rng } from "../util/rng.js";
import { type ModelConfig, type ModelConfigInput, countParameters, resolveModelConfig } from "./config.js";
import { attentionBackward, attentionForward, attentionProbFloats } from "./attention.js";
import { type HeadLayout, mergeHeads, mergeQkvGrads, splitHeadGrads, splitQkv, writeKvCache } from "./heads.js";
import { tick, tock } from "./profile.js";
import { colSumInto, rmsnorm, rmsnormBackward, swiglu, swigluBackward } from "./kernels.js";
import { type WasmRuntime, getRuntime } from "./runtime.js";

/** One tensor in the flat parameter buffer. */
export interface ParamEntry {
  /** Internal name, e.g. `layers.0.wqkv`. */
  name: string;
  /** Shape in the internal layout (projections are [in, out]). */
  shape: number[];
  /** Element offset in the flat buffer. */
  offset: number;
  size: number;
  /** Decoupled weight decay applies (all matrices, incl. embeddings; not norms or biases). */
  decay: boolean;
}

/**
 * A batch for log-prob computation or training. Sequence i contributes the log-probs of its tokens at positions
 * `from[i] .. len-1` (each predicted from the tokens before it), so its result array has `len - from[i]` entries.
 */
export interface LogprobBatch {
  /** Token ids of each sequence, unpadded (length >= 2 where any log-prob is wanted). */
  sequences: ArrayLike<number>[];
  /** First position whose log-prob is wanted, per sequence (>= 1; default 1 = every token after the first). */
  from?: ArrayLike<number>;
}

export interface LogprobResult {
  /** Per sequence: log p(token[t] | tokens[<t]) for t = from .. len-1. */
  logprobs: Float32Array[];
  /** Per sequence, same shape: entropy of the predictive distribution at each of those positions (nats). */
  entropy: Float32Array[];
}

/**
 * A loss as a pure function of per-token log-probs. Returns the loss value and dLoss/dlogp with exactly the shapes of
 * `logprobs`. Called once per {@link Transformer.accumulateGradients} with the whole batch (so batch-level
 * normalisation is allowed).
 */
export type LogprobLossFn = (
  logprobs: Float32Array[],
  entropy: Float32Array[],
) => { loss: number; grad: ArrayLike<number>[] };

export interface AccumulateResult extends LogprobResult {
  loss: number;
  /** Number of log-prob positions in the batch. */
  tokens: number;
  /** True when the batch did not fit the activation budget and the forward pass was run twice. */
  recomputed: boolean;
}

export interface TransformerOptions {
  /** Seed of the random initialisation (default 0). */
  seed?: number;
  /** Standard deviation of the normal initialisation (default 0.02; output projections are scaled by 1/sqrt(2L)). */
  initStd?: number;
  /** Runtime to allocate in (default: the shared single-threaded runtime). */
  runtime?: WasmRuntime;
  /**
   * Bytes of saved activations a training pass may hold (default 1 GiB). Larger batches are processed in micro-batches
   * with one extra forward pass (log-probs first, then recompute + backward per micro-batch).
   */
  activationBudgetBytes?: number;
}

/**
 * A forward pass whose activations are kept for one backward pass (see {@link Transformer.beginTraining}).
 */
export class TrainingPass {
  private used = false;
  private released = false;
  constructor(
    /** Per sequence log-probs (shapes as in {@link LogprobResult}). */
    readonly logprobs: Float32Array[],
    readonly entropy: Float32Array[],
    /** Number of log-prob positions. */
    readonly tokens: number,
    /** True when the batch exceeded the activation budget (backward recomputes the forward per micro-batch). */
    readonly recomputed: boolean,
    private readonly run: (grad: ArrayLike<number>[]) => void,
    private readonly free: () => void,
  ) {}
  /** Accumulate the gradients for dLoss/dlogp = `grad` (same shapes as logprobs) into the model's gradient buffer. */
  backward(grad: ArrayLike<number>[]): void {
    if (this.released) throw new Error("TrainingPass.backward after release");
    if (this.used) throw new Error("TrainingPass.backward called twice");
    this.used = true;
    try {
      this.run(grad);
    } finally {
      this.release();
    }
  }
  /** Free the saved activations (idempotent). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.free();
  }
}

/** Packed token layout of a batch (no padding). */
interface Packed {
  nSeq: number;
  /** Total tokens. */
  N: number;
  /** Token offset of each sequence; start[nSeq] = N. */
  start: Int32Array;
  tok: Int32Array;
}

/** Saved activations of one layer (heap pointers) for the backward pass. */
interface LayerSave {
  xIn: number;
  rstd1: Float32Array;
  xn1: number;
  qh: number;
  kh: number;
  vh: number;
  P: number;
  ao: number;
  xMid: number;
  rstd2: Float32Array;
  xn2: number;
  gu: number;
  act: number;
}

interface ForwardState {
  packed: Packed;
  /** Final hidden state after the last norm, [N, d] (pointer). */
  xf: number;
  /** Residual stream entering the final norm, [N, d]. */
  xLast: number;
  rstdF: Float32Array;
  layers: LayerSave[];
  /** Per sequence offsets of head-layout blocks and probability blocks. */
  pOff: Float64Array;
}

/** Per-sequence KV-cache addressing for prefill/decode. */
/**
 * The raw softmax of one logits row, as {@link Transformer.prefill}/{@link Transformer.decodeStep} fill it when asked:
 * probabilities (normalised), the row's max logit and the sum of exp(logit - max).
 */
export interface RowSoftmax {
  probs: Float32Array;
  max: number;
  sum: number;
}

export interface CacheTarget {
  /** Base pointer (bytes) of each sequence's cache slot. */
  slotPtr: Int32Array | number[];
  /** Positions are written from this index (0 for a fresh prefill). */
  maxLen: number;
}

/** Bookkeeping of heap allocations made during one pass. */
class Arena {
  private ptrs: number[] = [];
  constructor(private readonly rt: WasmRuntime) {}
  f32(n: number): number {
    const p = this.rt.allocF32(Math.max(4, n));
    this.ptrs.push(p);
    return p;
  }
  free(p: number): void {
    const i = this.ptrs.lastIndexOf(p);
    if (i >= 0) this.ptrs.splice(i, 1);
    this.rt.free(p);
  }
  freeAll(): void {
    for (const p of this.ptrs) this.rt.free(p);
    this.ptrs = [];
  }
}

/**
 * A decoder-only transformer whose weights live on the wasm heap. Create with {@link Transformer.create}; release
 * with {@link dispose}.
 */
export class Transformer {
  readonly config: ModelConfig;
  readonly rt: WasmRuntime;
  readonly params: ParamEntry[];
  readonly numParams: number;
  /** Byte pointer of the flat parameter buffer. */
  readonly paramsPtr: number;
  /** Byte pointer of the flat gradient buffer (allocated on first use). */
  private gradsPtr = 0;
  private readonly byName = new Map<string, ParamEntry>();
  private version = 1;
  private idVersion = 0;
  private readonly ids = new Map<string, number>();
  private readonly ropeCos: Float32Array;
  private readonly ropeSin: Float32Array;
  private disposed = false;
  activationBudgetBytes: number;
  /**
   * Kernel tuning knobs: tokens per chunk of the weight-gradient products (projections / output head). Results do not
   * depend on them beyond float rounding.
   */
  tuning = { wgradChunk: 1024, headChunk: 2048 };

  private constructor(rt: WasmRuntime, config: ModelConfig, budget: number) {
    this.rt = rt;
    this.config = config;
    this.activationBudgetBytes = budget;
    const c = config;
    const d = c.hiddenSize;
    const qkv = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    const entries: ParamEntry[] = [];
    let off = 0;
    const add = (name: string, shape: number[], decay: boolean): void => {
      const size = shape.reduce((a, b) => a * b, 1);
      // Keep every tensor 16-byte aligned (4 floats).
      entries.push({ name, shape, offset: off, size, decay });
      off += Math.ceil(size / 4) * 4;
    };
    add("embed", [c.vocabSize, d], true);
    for (let l = 0; l < c.numLayers; l++) {
      add(`layers.${l}.attn_norm`, [d], false);
      add(`layers.${l}.wqkv`, [d, qkv], true);
      if (c.attentionBias) add(`layers.${l}.bqkv`, [qkv], false);
      add(`layers.${l}.wo`, [c.numHeads * c.headDim, d], true);
      add(`layers.${l}.mlp_norm`, [d], false);
      add(`layers.${l}.wgu`, [d, 2 * c.intermediateSize], true);
      add(`layers.${l}.wd`, [c.intermediateSize, d], true);
    }
    add("final_norm", [d], false);
    if (!c.tieEmbeddings) add("lm_head", [c.vocabSize, d], true);
    this.params = entries;
    for (const e of entries) this.byName.set(e.name, e);
    this.numParams = off;
    this.paramsPtr = rt.allocF32(off);
    rt.view(this.paramsPtr, off).fill(0);
    const half = c.headDim / 2;
    this.ropeCos = new Float32Array(c.maxPositions * half);
    this.ropeSin = new Float32Array(c.maxPositions * half);
    for (let p = 0; p < c.maxPositions; p++) {
      for (let i = 0; i < half; i++) {
        const theta = p * Math.pow(c.ropeTheta, (-2 * i) / c.headDim);
        this.ropeCos[p * half + i] = Math.cos(theta);
        this.ropeSin[p * half + i] = Math.sin(theta);
      }
    }
  }

  /** Build a model with random weights (normal(0, initStd); norms 1; biases 0). */
  static async create(config: ModelConfigInput | ModelConfig, opts: TransformerOptions = {}): Promise<Transformer> {
    const rt = opts.runtime ?? (await getRuntime());
    const cfg = resolveModelConfig(config as ModelConfigInput);
    const m = new Transformer(rt, cfg, opts.activationBudgetBytes ?? 2 ** 30);
    m.randomInit(opts.seed ?? 0, opts.initStd ?? 0.02);
    return m;
  }

  /** Build a model with all-zero weights (to be filled by a checkpoint loader). */
  static async empty(config: ModelConfigInput | ModelConfig, opts: TransformerOptions = {}): Promise<Transformer> {
    const rt = opts.runtime ?? (await getRuntime());
    return new Transformer(rt, resolveModelConfig(config as ModelConfigInput), opts.activationBudgetBytes ?? 2 ** 30);
  }

  /** Parameter count as reported (excluding alignment padding). */
  get parameterCount(): number {
    return countParameters(this.config);
  }

  private randomInit(seed: number, std: number): void {
    const rng = new Rng(seed);
    const W = this.weights();
    const outScale = 1 / Math.sqrt(2 * this.config.numLayers);
    for (const e of this.params) {
      const leaf = e.name.split(".").pop() ?? "";
      if (leaf.endsWith("norm")) {
        W.fill(1, e.offset, e.offset + e.size);
      } else if (leaf === "bqkv") {
        W.fill(0, e.offset, e.offset + e.size);
      } else {
        const s = leaf === "wo" || leaf === "wd" ? std * outScale : std;
        for (let i = 0; i < e.size; i++) W[e.offset + i] = rng.normal() * s;
      }
    }
    this.markWeightsChanged();
  }

  /** Look up a parameter entry by internal name. */
  param(name: string): ParamEntry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`unknown parameter ${name}`);
    return e;
  }

  /** Live view of all parameters (numParams floats; invalidated by heap growth — do not keep it). */
  weights(): Float32Array {
    this.checkAlive();
    return this.rt.view(this.paramsPtr, this.numParams);
  }

  /** Live view of all gradients (allocated and zeroed on first call). */
  grads(): Float32Array {
    this.checkAlive();
    if (!this.gradsPtr) {
      this.gradsPtr = this.rt.allocF32(this.numParams);
      this.rt.view(this.gradsPtr, this.numParams).fill(0);
    }
    return this.rt.view(this.gradsPtr, this.numParams);
  }

  /** Zero the gradient buffer. */
  zeroGrad(): void {
    this.grads().fill(0);
  }

  /** A copy of all weights (flat, internal layout). */
  getWeights(): Float32Array {
    return this.weights().slice();
  }

  /** Replace all weights (flat, internal layout, length numParams), e.g. from another replica. */
  setWeights(w: Float32Array): void {
    if (w.length !== this.numParams) throw new Error(`setWeights: expected ${this.numParams} floats, got ${w.length}`);
    this.weights().set(w);
    this.markWeightsChanged();
  }

  /** Copy weights from another model of the same configuration (cheap: one memcpy). */
  copyWeightsFrom(other: Transformer): void {
    if (other.numParams !== this.numParams) throw new Error("copyWeightsFrom: configurations differ");
    if (other.rt === this.rt) {
      const H = this.rt.f32();
      H.copyWithin(this.paramsPtr >> 2, other.paramsPtr >> 2, (other.paramsPtr >> 2) + this.numParams);
    } else {
      this.weights().set(other.weights());
    }
    this.markWeightsChanged();
  }

  /** A frozen copy with the same weights in the same runtime (e.g. the KL reference model). */
  clone(): Transformer {
    this.checkAlive();
    const m = new Transformer(this.rt, this.config, this.activationBudgetBytes);
    m.copyWeightsFrom(this);
    return m;
  }

  /**
   * Call after writing into {@link weights} directly (the optimizer does): invalidates the packed-weight caches.
   */
  markWeightsChanged(): void {
    this.version++;
  }

  /** Monotonic counter bumped by every weight change. */
  get weightsVersion(): number {
    return this.version;
  }

  /** Free all heap memory of this model. */
  dispose(): void {
    if (this.disposed) return;
    for (const id of this.ids.values()) this.rt.unregister(id);
    this.ids.clear();
    if (this.ropeHeap) for (const p of [this.ropeHeap.cos, this.ropeHeap.sin, this.ropeHeap.sinInv]) this.rt.free(p);
    this.rt.free(this.paramsPtr);
    if (this.gradsPtr) this.rt.free(this.gradsPtr);
    if (this.rstdScratch.ptr) this.rt.free(this.rstdScratch.ptr);
    this.disposed = true;
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error("model was disposed");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Weight operands

  /** Kernel id of a weight used as the right-hand matmul operand, valid for the current weights version. */
  private wid(name: string): number {
    if (this.idVersion !== this.version) {
      for (const id of this.ids.values()) this.rt.unregister(id);
      this.ids.clear();
      this.idVersion = this.version;
    }
    let id = this.ids.get(name);
    if (id === undefined) {
      const e = this.param(name);
      id = this.rt.register(this.paramsPtr + e.offset * 4, e.size);
      this.ids.set(name, id);
    }
    return id;
  }

  /** Byte pointer of a parameter tensor. */
  private wptr(name: string): number {
    return this.paramsPtr + 4 * this.param(name).offset;
  }

  /** out[m, n] = a[m, k] @ Wᵀ for the projection `name` stored [n, k] (the input gradient of `x @ W`). */
  /** Heap scratch for RMSNorm's per-row rstd (the SIMD kernels read and write it there). */
  private rstdScratch = { ptr: 0, rows: 0 };
  private rstdHeap(rows: number): number {
    if (rows > this.rstdScratch.rows) {
      if (this.rstdScratch.ptr) this.rt.free(this.rstdScratch.ptr);
      const cap = Math.max(rows, 2 * this.rstdScratch.rows);
      this.rstdScratch = { ptr: this.rt.allocF32(cap), rows: cap };
    }
    return this.rstdScratch.ptr;
  }

  /** RMSNorm of `rows` rows at x into y with the gain at parameter offset `gOff`; keeps rstd when given. */
  private norm(x: number, gOff: number, y: number, rows: number, rstd: Float32Array | null): void {
    const c = this.config;
    const d = c.hiddenSize;
    const simd = d % 4 === 0 ? this.rt.simd : null;
    if (!simd) {
      rmsnorm(this.rt.f32(), x >> 2, (this.paramsPtr >> 2) + gOff, y >> 2, rows, d, c.rmsNormEps, rstd);
      return;
    }
    const rs = this.rstdHeap(rows);
    simd.rmsnorm(x, this.paramsPtr + 4 * gOff, y, rs, rows, d, c.rmsNormEps);
    if (rstd) rstd.set(this.rt.view(rs, rows));
  }

  /** Backward of {@link norm}: dx (+)= ..., the gain's gradient added at `gOff` of the gradients. */
  private normBack(
    dy: number,
    x: number,
    rstd: Float32Array,
    gOff: number,
    dx: number,
    rows: number,
    accumulate: boolean,
  ): void {
    const d = this.config.hiddenSize;
    const simd = d % 4 === 0 ? this.rt.simd : null;
    const G = this.gradsPtr + 4 * gOff;
    const g = this.paramsPtr + 4 * gOff;
    if (!simd) {
      rmsnormBackward(this.rt.f32(), dy >> 2, x >> 2, rstd, g >> 2, dx >> 2, G >> 2, rows, d, accumulate);
      return;
    }
    const rs = this.rstdHeap(rows);
    this.rt.view(rs, rows).set(rstd);
    simd.rmsnorm_back(dy, x, rs, g, dx, G, rows, d, accumulate ? 1 : 0);
  }

  private mmWT(a: number, name: string, out: number, m: number, k: number, n: number): void {
    this.rt.gemm(a, this.wptr(name), out, m, k, n, false, true, false);
  }

  /** out[N, d] = res + a[N, k] @ W (a residual branch; `out` may be `res`). */
  private residualProj(a: number, name: string, res: number, out: number, N: number, k: number, label: string): void {
    const t0 = tick();
    const d = this.config.hiddenSize;
    if (out !== res) this.rt.f32().copyWithin(out >> 2, res >> 2, (res >> 2) + N * d);
    this.rt.gemm(a, this.wptr(name), out, N, k, d, false, false, true);
    tock(label, t0);
  }

  /** logits[m, V] = x[m, d] @ headᵀ (embed or lm_head, stored [V, d]). */
  private mmHead(x: number, logits: number, m: number): void {
    const c = this.config;
    this.rt.gemm(x, this.wptr(this.headName()), logits, m, c.hiddenSize, c.vocabSize, false, true, false);
  }

  private ropeHeap: { cos: number; sin: number; sinInv: number } | null | undefined;
  /**
   * RoPE tables on the heap for the SIMD kernel ([maxPositions, headDim] each: cos duplicated per pair, sin as
   * [-s, +s] per pair, and its negation for the inverse rotation), or null when the SIMD path does not apply.
   */
  private ropeTables(): { cos: number; sin: number; sinInv: number } | null {
    if (this.ropeHeap !== undefined) return this.ropeHeap;
    const c = this.config;
    if (c.headDim % 4 !== 0 || !this.rt.simd) {
      this.ropeHeap = null;
      return null;
    }
    const n = c.maxPositions * c.headDim;
    const cos = this.rt.allocF32(n);
    const sin = this.rt.allocF32(n);
    const sinInv = this.rt.allocF32(n);
    const H = this.rt.f32();
    const half = c.headDim / 2;
    for (let p = 0; p < c.maxPositions; p++) {
      for (let i = 0; i < half; i++) {
        const cs = this.ropeCos[p * half + i];
        const sn = this.ropeSin[p * half + i];
        const o = p * c.headDim + 2 * i;
        H[(cos >> 2) + o] = cs;
        H[(cos >> 2) + o + 1] = cs;
        H[(sin >> 2) + o] = -sn;
        H[(sin >> 2) + o + 1] = sn;
        H[(sinInv >> 2) + o] = sn;
        H[(sinInv >> 2) + o + 1] = -sn;
      }
    }
    this.ropeHeap = { cos, sin, sinInv };
    return this.ropeHeap;
  }

  /** act = silu(gate) * up over rows of gu = [gate | up] (SIMD kernel when the width allows). */
  /** The head layouts of a packed batch (heads.ts). */
  private headLayout(pk: Packed): HeadLayout {
    const c = this.config;
    return {
      rt: this.rt,
      start: pk.start,
      nSeq: pk.nSeq,
      H: c.numHeads,
      Hkv: c.numKvHeads,
      dh: c.headDim,
      qDim: c.numHeads * c.headDim,
      kvDim: c.numKvHeads * c.headDim,
      qkvDim: (c.numHeads + 2 * c.numKvHeads) * c.headDim,
      scale: 1 / Math.sqrt(c.headDim),
      cos: this.ropeCos,
      sin: this.ropeSin,
      rope: this.ropeTables(),
    };
  }

  private swigluFwd(gu: number, act: number, rows: number): void {
    const ffn = this.config.intermediateSize;
    const simd = ffn % 4 === 0 ? this.rt.simd : null;
    if (simd) simd.swiglu(gu, act, rows, ffn);
    else swiglu(this.rt.f32(), gu >> 2, act >> 2, rows, ffn);
  }

  private headName(): string {
    return this.config.tieEmbeddings ? "embed" : "lm_head";
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Packing

  private pack(sequences: ArrayLike<number>[]): Packed {
    const nSeq = sequences.length;
    const start = new Int32Array(nSeq + 1);
    for (let i = 0; i < nSeq; i++) {
      const len = sequences[i].length;
      if (len > this.config.maxPositions) {
        throw new Error(`sequence ${i} has ${len} tokens, more than maxPositions ${this.config.maxPositions}`);
      }
      start[i + 1] = start[i] + len;
    }
    const N = start[nSeq];
    const tok = new Int32Array(N);
    const V = this.config.vocabSize;
    for (let i = 0; i < nSeq; i++) {
      const s = sequences[i];
      const o = start[i];
      for (let t = 0; t < s.length; t++) {
        const id = s[t];
        if (!(id >= 0 && id < V) || !Number.isInteger(id)) {
          throw new Error(`sequence ${i} position ${t}: token id ${id} outside [0, ${V})`);
        }
        tok[o + t] = id;
      }
    }
    return { nSeq, N, start, tok };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Forward

  /**
   * Run the layers over a packed batch. With `save`, keeps every activation the backward pass needs (caller frees
   * them through `arena`). With `cache`, writes each sequence's roped keys and values into its KV-cache slot.
   */
  private forwardLayers(pk: Packed, arena: Arena, save: boolean, cache: CacheTarget | null): ForwardState {
    const c = this.config;
    const rt = this.rt;
    const { N, nSeq, start, tok } = pk;
    const d = c.hiddenSize;
    const H_ = c.numHeads;
    const Hkv = c.numKvHeads;
    const dh = c.headDim;
    const rep = H_ / Hkv;
    const qDim = H_ * dh;
    const kvDim = Hkv * dh;
    const qkvDim = qDim + 2 * kvDim;
    const ffn = c.intermediateSize;
    const W0 = this.paramsPtr >> 2;
    // Heap tables are allocated on first use: before any heap view is taken (allocation may grow the heap).
    const heads = this.headLayout(pk);

    // Offsets of the kept attention probabilities: sequence b holds H * T_b^2 floats.
    const pOff = new Float64Array(nSeq + 1);
    for (let b = 0; b < nSeq; b++) {
      const T = start[b + 1] - start[b];
      pOff[b + 1] = pOff[b] + attentionProbFloats({ T, dh, Hkv, rep });
    }
    const pTotal = pOff[nSeq];

    let t0 = tick();
    // Embedding gather.
    let x = arena.f32(N * d);
    {
      const H = rt.f32();
      const E = W0 + this.param("embed").offset;
      const xo = x >> 2;
      for (let n = 0; n < N; n++) {
        const src = E + tok[n] * d;
        H.copyWithin(xo + n * d, src, src + d);
      }
    }
    tock("embed", t0);

    const layers: LayerSave[] = [];
    // Scratch reused across layers when not saving.
    let shared: {
      xn: number;
      qkv: number;
      qh: number;
      kh: number;
      vh: number;
      P: number;
      oh: number;
      ao: number;
      tmp: number;
      gu: number;
      act: number;
    } | null = null;
    let maxT = 0;
    for (let b = 0; b < nSeq; b++) maxT = Math.max(maxT, start[b + 1] - start[b]);
    const alloc = (): NonNullable<typeof shared> => ({
      xn: arena.f32(N * d),
      qkv: arena.f32(N * qkvDim),
      qh: arena.f32(N * qDim),
      kh: arena.f32(N * kvDim),
      vh: arena.f32(N * kvDim),
      P: arena.f32(save ? pTotal : H_ * maxT * maxT),
      oh: arena.f32(N * qDim),
      ao: arena.f32(N * qDim),
      tmp: arena.f32(N * d),
      gu: arena.f32(N * 2 * ffn),
      act: arena.f32(N * ffn),
    });

    for (let l = 0; l < c.numLayers; l++) {
      const pre = `layers.${l}.`;
      const bufs = save ? alloc() : (shared ??= alloc());
      const xn2 = save ? arena.f32(N * d) : bufs.xn;
      const xMid = save ? arena.f32(N * d) : x;
      const xOut = save ? arena.f32(N * d) : x;
      const rstd1 = new Float32Array(N);
      const rstd2 = new Float32Array(N);
      let H = rt.f32();

      // --- attention
      t0 = tick();
      this.norm(x, this.param(pre + "attn_norm").offset, bufs.xn, N, rstd1);
      tock("norm", t0);
      t0 = tick();
      rt.matmulId(bufs.xn, this.wid(pre + "wqkv"), bufs.qkv, N, d, qkvDim);
      tock("mm.qkv", t0);
      H = rt.f32();
      t0 = tick();
      if (c.attentionBias) {
        const bo = W0 + this.param(pre + "bqkv").offset;
        const q0 = bufs.qkv >> 2;
        for (let n = 0; n < N; n++) {
          const o = q0 + n * qkvDim;
          for (let j = 0; j < qkvDim; j++) H[o + j] += H[bo + j];
        }
      }
      // Split into head layouts with RoPE; q is pre-scaled by 1/sqrt(dh).
      splitQkv(heads, bufs.qkv, bufs.qh, bufs.kh, bufs.vh);
      if (cache) writeKvCache(heads, bufs.kh, bufs.vh, cache, l);
      tock("split", t0);
      // Causal attention per sequence, all heads at once (attention.ts).
      for (let b = 0; b < nSeq; b++) {
        const s0 = start[b];
        const T = start[b + 1] - s0;
        if (T === 0) continue;
        const qo = 4 * s0 * qDim;
        const kv = 4 * s0 * kvDim;
        const pPtr = save ? bufs.P + 4 * pOff[b] : bufs.P;
        attentionForward(rt, bufs.qh + qo, bufs.kh + kv, bufs.vh + kv, bufs.oh + qo, pPtr, { T, dh, Hkv, rep });
      }
      // Merge heads back to [N, H*dh].
      t0 = tick();
      mergeHeads(heads, bufs.oh, bufs.ao);
      tock("merge", t0);
      this.residualProj(bufs.ao, pre + "wo", x, xMid, N, qDim, "mm.o");

      // --- MLP (the product may have grown the heap: fresh view)
      t0 = tick();
      H = rt.f32();
      this.norm(xMid, this.param(pre + "mlp_norm").offset, xn2, N, rstd2);
      tock("norm", t0);
      t0 = tick();
      rt.matmulId(xn2, this.wid(pre + "wgu"), bufs.gu, N, d, 2 * ffn);
      tock("mm.gu", t0);
      t0 = tick();
      this.swigluFwd(bufs.gu, bufs.act, N);
      tock("swiglu", t0);
      this.residualProj(bufs.act, pre + "wd", xMid, xOut, N, ffn, "mm.down");

      if (save) {
        layers.push({
          xIn: x,
          rstd1,
          xn1: bufs.xn,
          qh: bufs.qh,
          kh: bufs.kh,
          vh: bufs.vh,
          P: bufs.P,
          ao: bufs.ao,
          xMid,
          rstd2,
          xn2,
          gu: bufs.gu,
          act: bufs.act,
        });
        // Free what the backward pass does not need.
        arena.free(bufs.qkv);
        arena.free(bufs.oh);
        arena.free(bufs.tmp);
      }
      x = xOut;
    }
    const xf = arena.f32(N * d);
    const rstdF = new Float32Array(N);
    t0 = tick();
    this.norm(x, this.param("final_norm").offset, xf, N, rstdF);
    tock("norm", t0);
    return { packed: pk, xf, xLast: x, rstdF, layers, pOff };
  }

  /** Rows (in packed order) that predict the wanted tokens, and the wanted token ids. */
  private targetRows(
    pk: Packed,
    from: ArrayLike<number> | undefined,
  ): { rows: Int32Array; targets: Int32Array; counts: Int32Array } {
    const counts = new Int32Array(pk.nSeq);
    let R = 0;
    for (let b = 0; b < pk.nSeq; b++) {
      const T = pk.start[b + 1] - pk.start[b];
      const f = from ? from[b] : 1;
      if (!(Number.isInteger(f) && f >= 1)) throw new Error(`from[${b}] must be an integer >= 1 (got ${f})`);
      counts[b] = Math.max(0, T - f);
      R += counts[b];
    }
    const rows = new Int32Array(R);
    const targets = new Int32Array(R);
    let r = 0;
    for (let b = 0; b < pk.nSeq; b++) {
      const s0 = pk.start[b];
      const T = pk.start[b + 1] - s0;
      const f = from ? from[b] : 1;
      for (let t = f; t < T; t++) {
        rows[r] = s0 + t - 1;
        targets[r] = pk.tok[s0 + t];
        r++;
      }
    }
    return { rows, targets, counts };
  }

  /**
   * Output head on selected rows of xf: writes log-probs and entropies of the targets; when `probs` is given, keeps
   * the softmax probabilities [R, V] there (for the backward pass).
   */
  private headForward(
    xf: number,
    rows: Int32Array,
    targets: Int32Array,
    arena: Arena,
    logp: Float32Array,
    ent: Float32Array,
    probs: number,
    xrOut: number,
  ): void {
    const c = this.config;
    const d = c.hiddenSize;
    const V = c.vocabSize;
    const R = rows.length;
    if (R === 0) return;
    const chunk = Math.max(1, Math.min(R, Math.floor((64 * 2 ** 20) / (V * 4))));
    const xr = xrOut || arena.f32(Math.min(R, chunk) * d);
    const logits = arena.f32(Math.min(R, chunk) * V);
    const pBuf = probs ? 0 : arena.f32(Math.min(R, chunk) * V);
    const stats = arena.f32(3 * Math.min(R, chunk));
    for (let r0 = 0; r0 < R; r0 += chunk) {
      const n = Math.min(chunk, R - r0);
      let t0 = tick();
      let H = this.rt.f32();
      const xrC = xrOut ? xr + 4 * r0 * d : xr;
      for (let i = 0; i < n; i++) {
        const src = (xf >> 2) + rows[r0 + i] * d;
        H.copyWithin((xrC >> 2) + i * d, src, src + d);
      }
      tock("head.gather", t0);
      t0 = tick();
      this.mmHead(xrC, logits, n);
      tock("mm.head", t0);
      const pC = probs ? probs + 4 * r0 * V : pBuf;
      const simdHead = V % 4 === 0 ? this.rt.simd : null;
      if (simdHead) {
        // One SIMD pass per row: softmax, its max / sum of exp, and the sum of p * z for the entropy.
        t0 = tick();
        simdHead.logsoftmax_rows(logits, pC, n, V, stats);
        H = this.rt.f32();
        const z0 = logits >> 2;
        const s0 = stats >> 2;
        for (let i = 0; i < n; i++) {
          const lse = H[s0 + 3 * i] + Math.log(H[s0 + 3 * i + 1]);
          logp[r0 + i] = H[z0 + i * V + targets[r0 + i]] - lse;
          ent[r0 + i] = Math.max(0, lse - H[s0 + 3 * i + 2]);
        }
        tock("head.logp", t0);
        continue;
      }
      t0 = tick();
      this.rt.softmaxRows(logits, pC, n, V);
      tock("head.softmax", t0);
      t0 = tick();
      H = this.rt.f32();
      const z0 = logits >> 2;
      const p0 = pC >> 2;
      for (let i = 0; i < n; i++) {
        const zo = z0 + i * V;
        const po = p0 + i * V;
        let am = 0;
        let zm = H[zo];
        for (let j = 1; j < V; j++) {
          if (H[zo + j] > zm) {
            zm = H[zo + j];
            am = j;
          }
        }
        const lse = zm - Math.log(H[po + am]);
        let pz = 0;
        for (let j = 0; j < V; j++) pz += H[po + j] * H[zo + j];
        logp[r0 + i] = H[zo + targets[r0 + i]] - lse;
        ent[r0 + i] = Math.max(0, lse - pz);
      }
      tock("head.logp", t0);
    }
  }

  /** Split flat per-row values into per-sequence arrays. */
  private static split(flat: Float32Array, counts: Int32Array): Float32Array[] {
    const out: Float32Array[] = [];
    let o = 0;
    for (let b = 0; b < counts.length; b++) {
      out.push(flat.slice(o, o + counts[b]));
      o += counts[b];
    }
    return out;
  }

  /** Rough bytes of saved activations for a training pass over this batch. */
  private activationBytes(sequences: ArrayLike<number>[], R: number): number {
    const c = this.config;
    const d = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    let N = 0;
    let sq = 0;
    for (const s of sequences) {
      N += s.length;
      sq += s.length * s.length;
    }
    const perLayer = N * (4 * d + 2 * qDim + 2 * kvDim + 3 * c.intermediateSize) + c.numHeads * sq;
    return 4 * (c.numLayers * perLayer + 2 * N * d + R * (c.vocabSize + d));
  }

  /**
   * Per-token log-probs (and entropies) of a batch, no gradients. Shapes: see {@link LogprobBatch}.
   * Micro-batches by the activation budget internally; any batch size works.
   */
  computeLogprobs(batch: LogprobBatch): LogprobResult {
    this.checkAlive();
    const groups = this.microBatches(batch, false);
    const logprobs: Float32Array[] = new Array(batch.sequences.length);
    const entropy: Float32Array[] = new Array(batch.sequences.length);
    for (const idx of groups) {
      const seqs = idx.map((i) => batch.sequences[i]);
      const from = batch.from ? idx.map((i) => batch.from![i]) : undefined;
      const arena = new Arena(this.rt);
      try {
        const pk = this.pack(seqs);
        const { rows, targets, counts } = this.targetRows(pk, from);
        const st = this.forwardLayers(pk, arena, false, null);
        const lp = new Float32Array(rows.length);
        const en = new Float32Array(rows.length);
        this.headForward(st.xf, rows, targets, arena, lp, en, 0, 0);
        const lps = Transformer.split(lp, counts);
        const ens = Transformer.split(en, counts);
        idx.forEach((i, k) => {
          logprobs[i] = lps[k];
          entropy[i] = ens[k];
        });
      } finally {
        arena.freeAll();
      }
    }
    return { logprobs, entropy };
  }

  /** Split sequence indices into groups whose activations fit the budget. */
  private microBatches(batch: LogprobBatch, training: boolean): number[][] {
    const n = batch.sequences.length;
    const budget = training ? this.activationBudgetBytes : Math.max(this.activationBudgetBytes / 4, 64 * 2 ** 20);
    const groups: number[][] = [];
    let cur: number[] = [];
    let curSeqs: ArrayLike<number>[] = [];
    let curR = 0;
    for (let i = 0; i < n; i++) {
      const s = batch.sequences[i];
      const f = batch.from ? batch.from[i] : 1;
      const r = Math.max(0, s.length - f);
      const bytes = this.activationBytes([...curSeqs, s], curR + r);
      if (cur.length > 0 && bytes > budget) {
        groups.push(cur);
        cur = [];
        curSeqs = [];
        curR = 0;
      }
      cur.push(i);
      curSeqs.push(s);
      curR += r;
    }
    if (cur.length > 0) groups.push(cur);
    return groups;
  }

  /**
   * Forward + `lossFn` + backward: adds dLoss/dθ into the gradient buffer (call {@link zeroGrad} between optimizer
   * steps). `lossFn` receives the log-probs of the whole batch at once and returns dLoss/dlogp of the same shapes;
   * gradients flow through the model only (the returned gradient is treated as a constant). If the batch does not
   * fit the activation budget it runs the forward twice (log-probs first, then recompute + backward per micro-batch).
   */
  accumulateGradients(batch: LogprobBatch, lossFn: LogprobLossFn): AccumulateResult {
    const pass = this.beginTraining(batch);
    try {
      const { loss, grad } = lossFn(pass.logprobs, pass.entropy);
      pass.backward(grad);
      return { loss, logprobs: pass.logprobs, entropy: pass.entropy, tokens: pass.tokens, recomputed: pass.recomputed };
    } finally {
      pass.release();
    }
  }

  /**
   * First half of {@link accumulateGradients}: the forward pass, keeping what the backward pass needs. Returns a
   * {@link TrainingPass} holding the log-probs; call its `backward(dLoss/dlogp)` (once) and then `release()`.
   * Used to shard one batch over several replicas (ParallelModel) with a single loss over the whole batch.
   */
  beginTraining(batch: LogprobBatch): TrainingPass {
    this.checkAlive();
    this.grads();
    const groups = this.microBatches(batch, true);
    if (groups.length === 1) {
      const arena = new Arena(this.rt);
      try {
        const pk = this.pack(batch.sequences);
        const { rows, targets, counts } = this.targetRows(pk, batch.from);
        const st = this.forwardLayers(pk, arena, true, null);
        const R = rows.length;
        const V = this.config.vocabSize;
        const probs = arena.f32(R * V);
        const xr = arena.f32(R * this.config.hiddenSize);
        const lp = new Float32Array(R);
        const en = new Float32Array(R);
        this.headForward(st.xf, rows, targets, arena, lp, en, probs, xr);
        const logprobs = Transformer.split(lp, counts);
        const entropy = Transformer.split(en, counts);
        return new TrainingPass(
          logprobs,
          entropy,
          R,
          false,
          (grad) => {
            const g = this.flattenGrad(grad, counts);
            this.backward(st, rows, targets, g, probs, xr, arena);
          },
          () => arena.freeAll(),
        );
      } catch (err) {
        arena.freeAll();
        throw err;
      }
    }
    // Two passes: all log-probs now; backward() recomputes each micro-batch's forward before its backward.
    const first = this.computeLogprobs(batch);
    let R = 0;
    for (const a of first.logprobs) R += a.length;
    return new TrainingPass(
      first.logprobs,
      first.entropy,
      R,
      true,
      (grad) => {
        if (grad.length !== batch.sequences.length) {
          throw new Error(`lossFn returned ${grad.length} gradient arrays for ${batch.sequences.length} sequences`);
        }
        for (const idx of groups) {
          const seqs = idx.map((i) => batch.sequences[i]);
          const from = batch.from ? idx.map((i) => batch.from![i]) : undefined;
          const arena = new Arena(this.rt);
          try {
            const pk = this.pack(seqs);
            const { rows, targets, counts } = this.targetRows(pk, from);
            const st = this.forwardLayers(pk, arena, true, null);
            const Rg = rows.length;
            const probs = arena.f32(Rg * this.config.vocabSize);
            const xr = arena.f32(Rg * this.config.hiddenSize);
            this.headForward(st.xf, rows, targets, arena, new Float32Array(Rg), new Float32Array(Rg), probs, xr);
            const g = this.flattenGrad(
              idx.map((i) => grad[i]),
              counts,
            );
            this.backward(st, rows, targets, g, probs, xr, arena);
          } finally {
            arena.freeAll();
          }
        }
      },
      () => {},
    );
  }

  private flattenGrad(grad: ArrayLike<number>[], counts: Int32Array): Float32Array {
    if (grad.length !== counts.length) {
      throw new Error(`lossFn returned ${grad.length} gradient arrays for ${counts.length} sequences`);
    }
    let R = 0;
    for (const c of counts) R += c;
    const g = new Float32Array(R);
    let o = 0;
    for (let b = 0; b < counts.length; b++) {
      if (grad[b].length !== counts[b]) {
        throw new Error(`lossFn gradient for sequence ${b} has length ${grad[b].length}, expected ${counts[b]}`);
      }
      for (let i = 0; i < counts[b]; i++) {
        const v = grad[b][i];
        if (!Number.isFinite(v)) throw new Error(`lossFn gradient for sequence ${b} position ${i} is not finite`);
        g[o + i] = v;
      }
      o += counts[b];
    }
    return g;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Backward

  /**
   * dW[in, out] += X^T[in, N] @ dY[N, out], summed over chunks of `chunkTokens` tokens (XNNPACK does not block over
   * the reduction, so a long N would stream its panels from memory; on the native engine the chunks cost nothing).
   */
  private weightGrad(
    X: number,
    dY: number,
    N: number,
    inDim: number,
    outDim: number,
    gOff: number,
    chunkTokens = this.tuning.wgradChunk,
  ): void {
    const t0 = tick();
    const chunk = Math.max(1, Math.min(N, chunkTokens));
    const G = this.gradsPtr + 4 * gOff;
    for (let c0 = 0; c0 < N; c0 += chunk) {
      const c = Math.min(chunk, N - c0);
      this.rt.gemm(X + 4 * c0 * inDim, dY + 4 * c0 * outDim, G, inDim, c, outDim, true, false, true);
    }
    tock("mm.wgrad", t0);
  }

  private backward(
    st: ForwardState,
    rows: Int32Array,
    targets: Int32Array,
    g: Float32Array,
    probs: number,
    xr: number,
    arena: Arena,
  ): void {
    const c = this.config;
    const rt = this.rt;
    const { N, nSeq, start, tok } = st.packed;
    const d = c.hiddenSize;
    const V = c.vocabSize;
    const H_ = c.numHeads;
    const Hkv = c.numKvHeads;
    const dh = c.headDim;
    const rep = H_ / Hkv;
    const qDim = H_ * dh;
    const kvDim = Hkv * dh;
    const qkvDim = qDim + 2 * kvDim;
    const ffn = c.intermediateSize;
    const G0 = this.gradsPtr >> 2;
    const R = rows.length;
    const heads = this.headLayout(st.packed);

    // --- output head: dlogits = g * (onehot - p), in place over probs.
    let t0 = tick();
    let H = rt.f32();
    {
      const p0 = probs >> 2;
      const simd = V % 4 === 0 ? rt.simd : null;
      for (let r = 0; r < R; r++) {
        const o = p0 + r * V;
        const gr = g[r];
        if (gr === 0) {
          H.fill(0, o, o + V);
          continue;
        }
        const ng = -gr;
        if (simd) simd.scale(o << 2, V, ng);
        else for (let j = 0; j < V; j++) H[o + j] *= ng;
        H[o + targets[r]] += gr;
      }
    }
    tock("bwd.head", t0);
    const dxf = arena.f32(N * d);
    rt.view(dxf, N * d).fill(0);
    if (R > 0) {
      const dxr = arena.f32(R * d);
      t0 = tick();
      rt.matmulId(probs, this.wid(this.headName()), dxr, R, V, d);
      tock("mm.head", t0);
      // dHead[V, d] += dlogits^T @ xr (chunks of transposed dlogits as the long row dimension).
      this.weightGrad(probs, xr, R, V, d, this.param(this.headName()).offset, this.tuning.headChunk);
      H = rt.f32();
      const dx0 = dxf >> 2;
      const r0 = dxr >> 2;
      for (let r = 0; r < R; r++) {
        const dst = dx0 + rows[r] * d;
        const src = r0 + r * d;
        for (let i = 0; i < d; i++) H[dst + i] += H[src + i];
      }
      arena.free(dxr);
    }
    arena.free(probs);
    // Final norm.
    const dx = arena.f32(N * d);
    t0 = tick();
    this.normBack(dxf, st.xLast, st.rstdF, this.param("final_norm").offset, dx, N, false);
    tock("bwd.norm", t0);
    arena.free(dxf);

    for (let l = c.numLayers - 1; l >= 0; l--) {
      const pre = `layers.${l}.`;
      const s = st.layers[l];
      // --- MLP: out = xMid + act @ wd
      const dact = arena.f32(N * ffn);
      t0 = tick();
      this.mmWT(dx, pre + "wd", dact, N, d, ffn);
      tock("mm.down", t0);
      this.weightGrad(s.act, dx, N, ffn, d, this.param(pre + "wd").offset);
      const dgu = arena.f32(N * 2 * ffn);
      t0 = tick();
      const simd = ffn % 4 === 0 ? rt.simd : null;
      if (simd) simd.swiglu_back(s.gu, dact, dgu, N, ffn);
      else swigluBackward(rt.f32(), s.gu >> 2, dact >> 2, dgu >> 2, N, ffn);
      tock("bwd.swiglu", t0);
      arena.free(dact);
      this.weightGrad(s.xn2, dgu, N, d, 2 * ffn, this.param(pre + "wgu").offset);
      const dxn2 = arena.f32(N * d);
      t0 = tick();
      this.mmWT(dgu, pre + "wgu", dxn2, N, 2 * ffn, d);
      tock("mm.gu", t0);
      arena.free(dgu);
      // dxMid = dx + norm backward
      t0 = tick();
      this.normBack(dxn2, s.xMid, s.rstd2, this.param(pre + "mlp_norm").offset, dx, N, true);
      tock("bwd.norm", t0);
      arena.free(dxn2);
      const dxMid = dx;

      // --- attention: xMid = xIn + ao @ wo
      const dao = arena.f32(N * qDim);
      t0 = tick();
      this.mmWT(dxMid, pre + "wo", dao, N, d, qDim);
      tock("mm.o", t0);
      this.weightGrad(s.ao, dxMid, N, qDim, d, this.param(pre + "wo").offset);
      // Split dao into head layout (same layout as qh).
      const doh = arena.f32(N * qDim);
      t0 = tick();
      splitHeadGrads(heads, dao, doh);
      tock("bwd.split", t0);
      arena.free(dao);
      const dqh = arena.f32(N * qDim);
      const dkh = arena.f32(N * kvDim);
      const dvh = arena.f32(N * kvDim);
      let maxT = 0;
      for (let b = 0; b < nSeq; b++) maxT = Math.max(maxT, start[b + 1] - start[b]);
      const dP = arena.f32(H_ * maxT * maxT);
      for (let b = 0; b < nSeq; b++) {
        const s0 = start[b];
        const T = start[b + 1] - s0;
        if (T === 0) continue;
        const qo = 4 * s0 * qDim;
        const kv = 4 * s0 * kvDim;
        const pPtr = s.P + 4 * st.pOff[b];
        attentionBackward(rt, s.qh + qo, s.kh + kv, s.vh + kv, pPtr, doh + qo, dqh + qo, dkh + kv, dvh + kv, dP, {
          T,
          dh,
          Hkv,
          rep,
        });
      }
      arena.free(dP);
      arena.free(doh);
      // Merge into dqkv with inverse RoPE (and the q scale).
      const dqkv = arena.f32(N * qkvDim);
      t0 = tick();
      mergeQkvGrads(heads, dqh, dkh, dvh, dqkv);
      tock("bwd.merge", t0);
      arena.free(dqh);
      arena.free(dkh);
      arena.free(dvh);
      if (c.attentionBias) colSumInto(rt.f32(), dqkv >> 2, G0 + this.param(pre + "bqkv").offset, N, qkvDim);
      this.weightGrad(s.xn1, dqkv, N, d, qkvDim, this.param(pre + "wqkv").offset);
      const dxn1 = arena.f32(N * d);
      t0 = tick();
      this.mmWT(dqkv, pre + "wqkv", dxn1, N, qkvDim, d);
      tock("mm.qkv", t0);
      arena.free(dqkv);
      t0 = tick();
      this.normBack(dxn1, s.xIn, s.rstd1, this.param(pre + "attn_norm").offset, dx, N, true);
      tock("bwd.norm", t0);
      arena.free(dxn1);
      // Free this layer's saved activations early.
      for (const p of [s.xn1, s.qh, s.kh, s.vh, s.P, s.ao, s.xn2, s.gu, s.act, s.xMid]) arena.free(p);
      if (l > 0) arena.free(s.xIn);
    }
    // Embedding scatter-add.
    t0 = tick();
    H = rt.f32();
    {
      const E = G0 + this.param("embed").offset;
      const dx0 = dx >> 2;
      for (let n = 0; n < N; n++) {
        const dst = E + tok[n] * d;
        const src = dx0 + n * d;
        for (let i = 0; i < d; i++) H[dst + i] += H[src + i];
      }
    }
    tock("bwd.embed", t0);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Inference helpers for the sampler

  /** Floats of one sequence's KV-cache slot for `maxLen` positions. */
  cacheSlotFloats(maxLen: number): number {
    const c = this.config;
    return c.numLayers * c.numKvHeads * 2 * maxLen * c.headDim;
  }

  /**
   * Prefill: run whole sequences, write their keys/values into the given cache slots, and return the logits of each
   * sequence's last position as [nSeq][V] (copied out of the heap).
   */
  prefill(sequences: ArrayLike<number>[], cache: CacheTarget, softmax?: RowSoftmax[]): Float32Array[] {
    this.checkAlive();
    const arena = new Arena(this.rt);
    try {
      const pk = this.pack(sequences);
      for (let b = 0; b < pk.nSeq; b++) {
        if (pk.start[b + 1] - pk.start[b] > cache.maxLen)
          throw new Error("prefill: sequence longer than the cache slot");
        if (pk.start[b + 1] === pk.start[b]) throw new Error("prefill: empty sequence");
      }
      const st = this.forwardLayers(pk, arena, false, cache);
      const rows = new Int32Array(pk.nSeq);
      for (let b = 0; b < pk.nSeq; b++) rows[b] = pk.start[b + 1] - 1;
      return this.logitsRows(st.xf, rows, arena, softmax);
    } finally {
      arena.freeAll();
    }
  }

  private logitsRows(xf: number, rows: Int32Array, arena: Arena, softmax?: RowSoftmax[]): Float32Array[] {
    const d = this.config.hiddenSize;
    const V = this.config.vocabSize;
    const R = rows.length;
    const xr = arena.f32(R * d);
    let H = this.rt.f32();
    for (let i = 0; i < R; i++) {
      const src = (xf >> 2) + rows[i] * d;
      H.copyWithin((xr >> 2) + i * d, src, src + d);
    }
    const logits = arena.f32(R * V);
    const t0 = tick();
    this.mmHead(xr, logits, R);
    tock("mm.head", t0);
    const simd = V % 4 === 0 ? this.rt.simd : null;
    if (softmax && simd) {
      // The raw softmax of each row in one SIMD pass on the heap (for samplers at temperature 1).
      const probs = arena.f32(R * V);
      const stats = arena.f32(3 * R);
      simd.logsoftmax_rows(logits, probs, R, V, stats);
      H = this.rt.f32();
      for (let i = 0; i < R; i++) {
        const o = (probs >> 2) + i * V;
        softmax.push({ probs: H.slice(o, o + V), max: H[(stats >> 2) + 3 * i], sum: H[(stats >> 2) + 3 * i + 1] });
      }
    }
    H = this.rt.f32();
    const out: Float32Array[] = [];
    for (let i = 0; i < R; i++) out.push(H.slice((logits >> 2) + i * V, (logits >> 2) + (i + 1) * V));
    return out;
  }

  /**
   * One decode step for S sequences: token `tokens[s]` at position `positions[s]` (the cache of slot s holds
   * positions 0..positions[s]-1 and receives this one). Returns the next-token logits per sequence.
   */
  decodeStep(
    tokens: ArrayLike<number>,
    positions: ArrayLike<number>,
    cache: CacheTarget,
    softmax?: RowSoftmax[],
  ): Float32Array[] {
    this.checkAlive();
    const c = this.config;
    const rt = this.rt;
    const S = tokens.length;
    const d = c.hiddenSize;
    const H_ = c.numHeads;
    const Hkv = c.numKvHeads;
    const dh = c.headDim;
    const rep = H_ / Hkv;
    const qDim = H_ * dh;
    const kvDim = Hkv * dh;
    const qkvDim = qDim + 2 * kvDim;
    const ffn = c.intermediateSize;
    const half = dh / 2;
    const scale = 1 / Math.sqrt(dh);
    const W0 = this.paramsPtr >> 2;
    const maxLen = cache.maxLen;
    for (let s = 0; s < S; s++) {
      if (positions[s] >= maxLen || positions[s] >= c.maxPositions)
        throw new Error("decodeStep: position beyond the cache");
      if (!(tokens[s] >= 0 && tokens[s] < c.vocabSize))
        throw new Error(`decodeStep: token id ${tokens[s]} out of range`);
    }
    const rope = dh % 4 === 0 ? this.ropeTables() : null;
    const arena = new Arena(rt);
    try {
      const x = arena.f32(S * d);
      const xn = arena.f32(S * d);
      const qkv = arena.f32(S * qkvDim);
      const ao = arena.f32(S * qDim);
      const gu = arena.f32(S * 2 * ffn);
      const act = arena.f32(S * ffn);
      let maxPos = 0;
      for (let s = 0; s < S; s++) maxPos = Math.max(maxPos, positions[s]);
      const sc = new Float32Array(maxPos + 1);
      const qv = new Float32Array(dh);
      const simd = dh % 4 === 0 ? rt.simd : null;
      const qPtr = arena.f32(dh);
      const scPtr = arena.f32(maxPos + 8);
      let H = rt.f32();
      const E = W0 + this.param("embed").offset;
      for (let s = 0; s < S; s++) H.copyWithin((x >> 2) + s * d, E + tokens[s] * d, E + tokens[s] * d + d);
      for (let l = 0; l < c.numLayers; l++) {
        const pre = `layers.${l}.`;
        H = rt.f32();
        let t0 = tick();
        this.norm(x, this.param(pre + "attn_norm").offset, xn, S, null);
        tock("dec.norm", t0);
        t0 = tick();
        rt.matmulId(xn, this.wid(pre + "wqkv"), qkv, S, d, qkvDim);
        tock("dec.mm", t0);
        t0 = tick();
        H = rt.f32();
        if (c.attentionBias) {
          const bo = W0 + this.param(pre + "bqkv").offset;
          for (let s = 0; s < S; s++) {
            const o = (qkv >> 2) + s * qkvDim;
            for (let j = 0; j < qkvDim; j++) H[o + j] += H[bo + j];
          }
        }
        for (let s = 0; s < S; s++) {
          const p = positions[s];
          const row = (qkv >> 2) + s * qkvDim;
          const ro = p * half;
          const slot = cache.slotPtr[s] >> 2;
          // Rope k and write k, v into the cache at position p.
          for (let g = 0; g < Hkv; g++) {
            const kBase = slot + (l * Hkv + g) * 2 * maxLen * dh;
            const vBase = kBase + maxLen * dh;
            const src = row + qDim + g * dh;
            const kd = kBase + p * dh;
            const vs = row + qDim + kvDim + g * dh;
            if (rope && simd) {
              simd.rope(src << 2, 0, kd << 2, 0, 1, dh, rope.cos + p * dh * 4, rope.sin + p * dh * 4, 1);
              H.copyWithin(vBase + p * dh, vs, vs + dh);
              continue;
            }
            for (let e = 0; e < half; e++) {
              const a = H[src + 2 * e];
              const bb = H[src + 2 * e + 1];
              const cs = this.ropeCos[ro + e];
              const sn = this.ropeSin[ro + e];
              H[kd + 2 * e] = a * cs - bb * sn;
              H[kd + 2 * e + 1] = a * sn + bb * cs;
            }
            H.copyWithin(vBase + p * dh, vs, vs + dh);
          }
          for (let h = 0; h < H_; h++) {
            const g = (h / rep) | 0;
            const kBase = slot + (l * Hkv + g) * 2 * maxLen * dh;
            const vBase = kBase + maxLen * dh;
            const src = row + h * dh;
            const out = (ao >> 2) + s * qDim + h * dh;
            if (simd && rope) {
              // q (roped, scaled) into the heap scratch, then the SIMD single-query attention.
              simd.rope(src << 2, 0, qPtr, 0, 1, dh, rope.cos + p * dh * 4, rope.sin + p * dh * 4, scale);
              if (dh === 32) simd.attn1_32(qPtr, kBase << 2, vBase << 2, p + 1, out << 2, scPtr);
              else if (dh === 64) simd.attn1_64(qPtr, kBase << 2, vBase << 2, p + 1, out << 2, scPtr);
              else simd.attn1(qPtr, kBase << 2, vBase << 2, p + 1, dh, out << 2, scPtr);
              continue;
            }
            for (let e = 0; e < half; e++) {
              const a = H[src + 2 * e];
              const bb = H[src + 2 * e + 1];
              const cs = this.ropeCos[ro + e];
              const sn = this.ropeSin[ro + e];
              qv[2 * e] = (a * cs - bb * sn) * scale;
              qv[2 * e + 1] = (a * sn + bb * cs) * scale;
            }
            let m = -Infinity;
            for (let j = 0; j <= p; j++) {
              const ko = kBase + j * dh;
              let dot = 0;
              for (let e = 0; e < dh; e++) dot += qv[e] * H[ko + e];
              sc[j] = dot;
              if (dot > m) m = dot;
            }
            let sum = 0;
            for (let j = 0; j <= p; j++) {
              const ev = Math.exp(sc[j] - m);
              sc[j] = ev;
              sum += ev;
            }
            const inv = 1 / sum;
            for (let e = 0; e < dh; e++) H[out + e] = 0;
            for (let j = 0; j <= p; j++) {
              const w = sc[j] * inv;
              const vo = vBase + j * dh;
              for (let e = 0; e < dh; e++) H[out + e] += w * H[vo + e];
            }
          }
        }
        tock("dec.attn", t0);
        this.residualProj(ao, pre + "wo", x, x, S, qDim, "dec.mm");
        t0 = tick();
        H = rt.f32();
        this.norm(x, this.param(pre + "mlp_norm").offset, xn, S, null);
        tock("dec.norm", t0);
        t0 = tick();
        rt.matmulId(xn, this.wid(pre + "wgu"), gu, S, d, 2 * ffn);
        tock("dec.mm", t0);
        t0 = tick();
        this.swigluFwd(gu, act, S);
        tock("dec.swiglu", t0);
        this.residualProj(act, pre + "wd", x, x, S, ffn, "dec.mm");
      }
      const xf = arena.f32(S * d);
      this.norm(x, this.param("final_norm").offset, xf, S, null);
      const rows = new Int32Array(S);
      for (let s = 0; s < S; s++) rows[s] = s;
      return this.logitsRows(xf, rows, arena, softmax);
    } finally {
      arena.freeAll();
    }
  }

  /** Logits of every position of one sequence ([T][V]); for tests and checks. */
  logitsAll(sequence: ArrayLike<number>): Float32Array[] {
    this.checkAlive();
    const arena = new Arena(this.rt);
    try {
      const pk = this.pack([sequence]);
      const st = this.forwardLayers(pk, arena, false, null);
      const rows = new Int32Array(pk.N);
      for (let i = 0; i < pk.N; i++) rows[i] = i;
      return this.logitsRows(st.xf, rows, arena);
    } finally {
      arena.freeAll();
    }
  }
}
