/**
 * The built-in model on every core: a `BuiltinPolicy` whose scoring and gradient passes run through a
 * `ParallelModel` (the main model + one worker-thread replica per extra core, see src/model/parallel.ts). The
 * optimizer, checkpoints and weights stay those of the main model; the replicas pick up new weights lazily.
 * Sampling uses the same `ParallelModel` through the built-in backend, so a rollout batch is decoded on all cores too.
 */
import { createBuiltinBackend, type BuiltinBackend } from "../llm/builtin.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { ParallelModel, defaultWorkerCount } from "../model/parallel.js";
import { Transformer, type LogprobBatch } from "../model/transformer.js";
import { BuiltinPolicy, type BuiltinPolicyOptions } from "../train/builtin-policy.js";
import type { SequenceLossFn, SequenceScores, TokenSequence } from "../train/policy.js";
import type { Tokenizer } from "../util/types.js";

function toBatch(batch: readonly TokenSequence[]): LogprobBatch {
  for (const s of batch) {
    if (s.start < 1 || s.start > s.tokens.length)
      throw new Error(`sequence start ${s.start} out of range for ${s.tokens.length} tokens`);
  }
  return { sequences: batch.map((s) => s.tokens as ArrayLike<number>), from: batch.map((s) => s.start) };
}

export class ParallelPolicy extends BuiltinPolicy {
  constructor(
    readonly parallel: ParallelModel,
    tokenizer: Tokenizer,
    opts: BuiltinPolicyOptions = {},
  ) {
    super(parallel.model, tokenizer, opts);
  }

  override async logprobs(
    batch: readonly TokenSequence[],
    opts: { entropy?: boolean } = {},
  ): Promise<SequenceScores[]> {
    if (batch.length === 0) return [];
    const r = await this.parallel.computeLogprobs(toBatch(batch));
    return r.logprobs.map((lp, i) => (opts.entropy ? { logp: lp, entropy: r.entropy[i] } : { logp: lp }));
  }

  override async accumulateGradients(
    batch: readonly TokenSequence[],
    lossFn: SequenceLossFn,
  ): Promise<{ loss: number }> {
    if (batch.length === 0) return { loss: 0 };
    const r = await this.parallel.accumulateGradients(toBatch(batch), (logp) => {
      const out = lossFn(logp);
      return { loss: out.loss, grad: out.grad as ArrayLike<number>[] };
    });
    return { loss: r.loss };
  }
}

/** A model (fresh or from a checkpoint) spread over `workers` extra threads, its policy and a sampling backend. */
export interface ParallelSetup {
  model: Transformer;
  parallel: ParallelModel;
  policy: ParallelPolicy;
  backend: BuiltinBackend;
  close(): Promise<void>;
}

export async function parallelSetup(opts: {
  model: Transformer;
  tokenizer: Tokenizer;
  workers?: number;
  policy?: BuiltinPolicyOptions;
  maxBatch?: number;
}): Promise<ParallelSetup> {
  const parallel = await ParallelModel.create(opts.model, { workers: opts.workers ?? defaultWorkerCount() });
  const policy = new ParallelPolicy(parallel, opts.tokenizer, opts.policy);
  const backend = await createBuiltinBackend({
    model: parallel,
    tokenizer: opts.tokenizer,
    maxBatch: opts.maxBatch ?? 256,
  });
  return {
    model: opts.model,
    parallel,
    policy,
    backend,
    async close() {
      await backend.close();
      await parallel.close();
      opts.model.dispose();
    },
  };
}

/** Load a checkpoint folder onto all cores. */
export async function parallelFromCheckpoint(
  dir: string,
  tokenizer: Tokenizer,
  opts: { workers?: number; policy?: BuiltinPolicyOptions; maxBatch?: number } = {},
): Promise<ParallelSetup> {
  return parallelSetup({ model: await loadCheckpoint(dir), tokenizer, ...opts });
}
