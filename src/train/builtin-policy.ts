/**
 * The built-in transformer (src/model) as a `TrainablePolicy`: log-probs/entropies and gradient accumulation through
 * `Transformer.computeLogprobs` / `accumulateGradients`, AdamW with global grad-norm clipping, HF-folder checkpoints
 * (config.json + model.safetensors + tokenizer.json) and `optimizer.safetensors`.
 */
import path from "node:path";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import { AdamW } from "../model/optim.js";
import type { Transformer } from "../model/transformer.js";
import type { Tokenizer } from "../util/types.js";
import type { ScoringModel, SequenceLossFn, SequenceScores, TokenSequence, TrainablePolicy } from "./policy.js";

export const OPTIMIZER_FILE = "optimizer.safetensors";

export interface BuiltinPolicyOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Global grad-norm clipping (0 = off). Default 1.0. */
  maxGradNorm?: number;
  /** tokenizer.json object to store with checkpoints (default: taken from the tokenizer when it can give one). */
  tokenizerJson?: unknown;
}

/** The tokenizer.json object of a tokenizer when it can provide one (HfTokenizer.json, BpeTokenizer.toJson()). */
export function tokenizerJsonOf(tok: Tokenizer): unknown {
  const t = tok as unknown as { json?: unknown; toJson?: () => unknown };
  if (typeof t.toJson === "function") return t.toJson();
  if (t.json && typeof t.json === "object") return t.json;
  return undefined;
}

function toBatch(batch: readonly TokenSequence[]) {
  for (const s of batch) {
    if (s.start < 1 || s.start > s.tokens.length)
      throw new Error(`sequence start ${s.start} out of range for ${s.tokens.length} tokens`);
  }
  return { sequences: batch.map((s) => s.tokens as ArrayLike<number>), from: batch.map((s) => s.start) };
}

/** Scoring through a built-in model (the frozen reference). */
export class BuiltinScorer implements ScoringModel {
  constructor(
    readonly model: Transformer,
    readonly tokenizer: Tokenizer,
  ) {}
  async logprobs(batch: readonly TokenSequence[], opts: { entropy?: boolean } = {}): Promise<SequenceScores[]> {
    if (batch.length === 0) return [];
    const r = this.model.computeLogprobs(toBatch(batch));
    return r.logprobs.map((lp, i) => (opts.entropy ? { logp: lp, entropy: r.entropy[i] } : { logp: lp }));
  }
  dispose(): void {
    this.model.dispose();
  }
}

export class BuiltinPolicy extends BuiltinScorer implements TrainablePolicy {
  readonly optimizer: AdamW;
  private readonly maxGradNorm: number;
  private readonly tokJson: unknown;
  /** Optimizer steps skipped because the gradient norm was not finite. */
  skippedSteps = 0;

  constructor(model: Transformer, tokenizer: Tokenizer, opts: BuiltinPolicyOptions = {}) {
    super(model, tokenizer);
    this.optimizer = new AdamW(model, { betas: opts.betas, eps: opts.eps, weightDecay: opts.weightDecay });
    this.maxGradNorm = opts.maxGradNorm ?? 1.0;
    this.tokJson = opts.tokenizerJson ?? tokenizerJsonOf(tokenizer);
  }

  async accumulateGradients(batch: readonly TokenSequence[], lossFn: SequenceLossFn): Promise<{ loss: number }> {
    if (batch.length === 0) return { loss: 0 };
    const r = this.model.accumulateGradients(toBatch(batch), (logp) => {
      const out = lossFn(logp);
      return { loss: out.loss, grad: out.grad as ArrayLike<number>[] };
    });
    return { loss: r.loss };
  }

  async step({ lr }: { lr: number }): Promise<{ gradNorm: number }> {
    const norm = this.maxGradNorm > 0 ? this.optimizer.clipGradNorm(this.maxGradNorm) : this.optimizer.gradNorm();
    if (Number.isFinite(norm)) this.optimizer.step(lr);
    else this.skippedSteps++;
    this.model.zeroGrad();
    return { gradNorm: norm };
  }

  zeroGrad(): void {
    this.model.zeroGrad();
  }

  async save(dir: string): Promise<void> {
    await saveCheckpoint(this.model, dir, { tokenizerJson: this.tokJson });
  }

  async loadWeights(dir: string): Promise<void> {
    const loaded = await loadCheckpoint(dir, { runtime: this.model.rt });
    try {
      this.model.copyWeightsFrom(loaded);
    } finally {
      loaded.dispose();
    }
  }

  async saveOptimizer(dir: string): Promise<string | null> {
    await this.optimizer.save(path.join(dir, OPTIMIZER_FILE));
    return OPTIMIZER_FILE;
  }

  async loadOptimizer(dir: string, file: string): Promise<void> {
    await this.optimizer.load(path.join(dir, file));
  }

  async frozenCopy(): Promise<BuiltinScorer> {
    return new BuiltinScorer(this.model.clone(), this.tokenizer);
  }
}
