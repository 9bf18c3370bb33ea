/**
 * A replica is one copy of the model that can score, train on and sample a share of a batch. The local replica runs
 * on the calling thread; worker replicas (parallel.ts) run the same code in a worker thread with their own wasm heap,
 * so a batch can use every core. All methods are async so that local and worker replicas are interchangeable; the
 * local one does its work synchronously inside the call.
 */
import { Rng } from "../util/rng.js";
import { type SampleOptions, sampleToken } from "./sampling.js";
import type { LogprobBatch, LogprobResult, RowSoftmax, Transformer, TrainingPass } from "./transformer.js";

export interface SampledToken {
  token: number;
  logprob: number;
}

export interface PrefillItem {
  /** Sequence id (unique per generator). */
  id: number;
  tokens: number[];
  params: SampleOptions;
  seed: number;
}

export interface DecodeItem {
  id: number;
  /** The token to feed (the last sampled one). */
  token: number;
  /** Its position (= tokens already in the cache). */
  pos: number;
}

export interface TrainingShardResult {
  logprobs: Float32Array[];
  entropy: Float32Array[];
  tokens: number;
  recomputed: boolean;
}

export interface Replica {
  readonly name: string;
  /** Prefill sequences into fresh cache slots and sample each one's first new token. */
  prefillSample(items: PrefillItem[], maxLen: number): Promise<SampledToken[]>;
  /** Feed one token per sequence and sample the next. */
  decodeSample(items: DecodeItem[], maxLen: number): Promise<SampledToken[]>;
  /** Free the cache slots and sampling state of finished sequences. */
  releaseSeqs(ids: number[]): void;
  logprobs(batch: LogprobBatch): Promise<LogprobResult>;
  /** Forward with saved activations for pass `passId` (gradients of this replica start from zero for a worker). */
  beginTraining(passId: number, batch: LogprobBatch): Promise<TrainingShardResult>;
  /**
   * Backward of pass `passId`. The local replica accumulates into its model's gradients and returns null; a worker
   * returns its gradient buffer for the caller to add.
   */
  backward(passId: number, grad: Float32Array[]): Promise<Float32Array | null>;
  releasePass(passId: number): void;
  /** Load weights (flat, internal layout). */
  setWeights(w: Float32Array): Promise<void>;
  close(): Promise<void>;
}

interface SeqState {
  slot: number;
  params: SampleOptions;
  rng: Rng;
}

/** The replica on the calling thread, around a {@link Transformer}. */
export class LocalReplica implements Replica {
  readonly name = "local";
  private seqs = new Map<number, SeqState>();
  private free = new Map<number, number[]>();
  private slots: number[] = [];
  private passes = new Map<number, TrainingPass>();
  private scratch: Float32Array;
  /** When true (worker replicas), each training pass starts from zero gradients and backward returns them. */
  returnGrads = false;

  constructor(public model: Transformer) {
    this.scratch = new Float32Array(model.config.vocabSize);
  }

  private slot(maxLen: number): number {
    const list = this.free.get(maxLen);
    const p = list?.pop();
    if (p !== undefined) return p;
    const ptr = this.model.rt.allocF32(this.model.cacheSlotFloats(maxLen));
    this.slots.push(ptr);
    return ptr;
  }

  private slotMaxLen = new Map<number, number>();

  async prefillSample(items: PrefillItem[], maxLen: number): Promise<SampledToken[]> {
    return this.prefillSampleSync(items, maxLen);
  }

  prefillSampleSync(items: PrefillItem[], maxLen: number): SampledToken[] {
    if (items.length === 0) return [];
    const slots = items.map(() => this.slot(maxLen));
    items.forEach((it, i) => {
      this.seqs.set(it.id, { slot: slots[i], params: it.params, rng: new Rng(it.seed) });
      this.slotMaxLen.set(slots[i], maxLen);
    });
    const soft = items.some((it) => it.params.temperature === 1) ? ([] as RowSoftmax[]) : undefined;
    const logits = this.model.prefill(
      items.map((it) => it.tokens),
      { slotPtr: slots, maxLen },
      soft,
    );
    return items.map((it, i) => {
      const st = this.seqs.get(it.id)!;
      return sampleToken(logits[i], st.params, st.rng, this.scratch, soft?.[i]);
    });
  }

  async decodeSample(items: DecodeItem[], maxLen: number): Promise<SampledToken[]> {
    return this.decodeSampleSync(items, maxLen);
  }

  decodeSampleSync(items: DecodeItem[], maxLen: number): SampledToken[] {
    if (items.length === 0) return [];
    const states = items.map((it) => {
      const st = this.seqs.get(it.id);
      if (!st) throw new Error(`replica: unknown sequence ${it.id}`);
      return st;
    });
    // At temperature 1 the model hands over each row's softmax from one SIMD pass (the sampler skips its exp loop).
    const soft = states.some((st) => st.params.temperature === 1) ? ([] as RowSoftmax[]) : undefined;
    const logits = this.model.decodeStep(
      items.map((it) => it.token),
      items.map((it) => it.pos),
      { slotPtr: states.map((s) => s.slot), maxLen },
      soft,
    );
    return states.map((st, i) => sampleToken(logits[i], st.params, st.rng, this.scratch, soft?.[i]));
  }

  releaseSeqs(ids: number[]): void {
    for (const id of ids) {
      const st = this.seqs.get(id);
      if (!st) continue;
      this.seqs.delete(id);
      const ml = this.slotMaxLen.get(st.slot)!;
      let list = this.free.get(ml);
      if (!list) {
        list = [];
        this.free.set(ml, list);
      }
      list.push(st.slot);
    }
  }

  async logprobs(batch: LogprobBatch): Promise<LogprobResult> {
    return this.model.computeLogprobs(batch);
  }

  async beginTraining(passId: number, batch: LogprobBatch): Promise<TrainingShardResult> {
    if (this.returnGrads) this.model.zeroGrad();
    const pass = this.model.beginTraining(batch);
    this.passes.set(passId, pass);
    return { logprobs: pass.logprobs, entropy: pass.entropy, tokens: pass.tokens, recomputed: pass.recomputed };
  }

  async backward(passId: number, grad: Float32Array[]): Promise<Float32Array | null> {
    const pass = this.passes.get(passId);
    if (!pass) throw new Error(`replica: unknown training pass ${passId}`);
    this.passes.delete(passId);
    pass.backward(grad);
    return this.returnGrads ? this.model.grads().slice() : null;
  }

  releasePass(passId: number): void {
    this.passes.get(passId)?.release();
    this.passes.delete(passId);
  }

  async setWeights(w: Float32Array): Promise<void> {
    this.model.setWeights(w);
  }

  /** Number of live sequences (for load balancing). */
  get liveSequences(): number {
    return this.seqs.size;
  }

  async close(): Promise<void> {
    for (const p of this.passes.values()) p.release();
    this.passes.clear();
    for (const p of this.slots) this.model.rt.free(p);
    this.slots = [];
    this.free.clear();
    this.seqs.clear();
  }
}
