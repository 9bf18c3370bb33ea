/**
 * What the trainers need from a model, independent of the engine behind it. The built-in tfjs model is adapted to
 * these interfaces in `builtin-adapter.ts`; anything else that can score token sequences and accumulate gradients of a
 * loss given per-token dLoss/dlogp can be trained too.
 */
import type { Tokenizer } from "../util/types.js";

/** One sequence to score: prompt + response ids; log-probs are wanted for `tokens[start..]`. */
export interface TokenSequence {
  tokens: readonly number[];
  /** Index of the first scored token (≥ 1: the first token has no prefix to be predicted from). */
  start: number;
}

export interface SequenceScores {
  /** log p(tokens[t] | tokens[<t]) for t = start .. tokens.length − 1. */
  logp: Float32Array;
  /** Entropy of the predictive distribution at the same positions (when asked for). */
  entropy?: Float32Array;
}

/** A loss over the scored positions of a batch: the loss value and dLoss/dlogp per scored token. */
export type SequenceLossFn = (logp: readonly Float32Array[]) => { loss: number; grad: readonly ArrayLike<number>[] };

/** A model that can score sequences (the frozen reference needs only this). */
export interface ScoringModel {
  readonly tokenizer: Tokenizer;
  logprobs(batch: readonly TokenSequence[], opts?: { entropy?: boolean }): Promise<SequenceScores[]>;
}

export interface OptimizerStepResult {
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/** A trainable policy: scoring, gradient accumulation, an optimizer step, and persistence. */
export interface TrainablePolicy extends ScoringModel {
  /** Forward + backward of `lossFn` over the batch; gradients add up until `step`. Returns the loss value. */
  accumulateGradients(batch: readonly TokenSequence[], lossFn: SequenceLossFn): Promise<{ loss: number }>;
  /** Apply the accumulated gradients (AdamW, grad-norm clipping) at learning rate `lr`, then clear them. */
  step(opts: { lr: number }): Promise<OptimizerStepResult>;
  /** Drop accumulated gradients without stepping. */
  zeroGrad(): void;
  /** Write config.json + model.safetensors + tokenizer.json into `dir`. */
  save(dir: string): Promise<void>;
  /** Load weights from a checkpoint folder into this model (same architecture). */
  loadWeights(dir: string): Promise<void>;
  /** Write the optimizer state into `dir`; returns the file name or null when there is no state yet. */
  saveOptimizer(dir: string): Promise<string | null>;
  /** Restore the optimizer state written by `saveOptimizer`. */
  loadOptimizer(dir: string, file: string): Promise<void>;
  /** A frozen copy of the current weights (the KL reference). */
  frozenCopy(): Promise<ScoringModel & { dispose?(): void }>;
}

/** Split `items` into consecutive chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Score a long list in micro-batches. */
export async function scoreInBatches(
  model: ScoringModel,
  seqs: readonly TokenSequence[],
  microBatch: number,
  opts: { entropy?: boolean } = {},
): Promise<SequenceScores[]> {
  const out: SequenceScores[] = [];
  for (const part of chunk(seqs, Math.max(1, microBatch))) out.push(...(await model.logprobs(part, opts)));
  return out;
}
