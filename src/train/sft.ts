/**
 * SFT / pre-training trainer: masked NLL over token sequences (retrieved-document tokens masked, R1-Searcher++ cold
 * start), micro-batched gradient accumulation, AdamW with grad-norm clipping, LR schedule, checkpoints + resume,
 * metrics JSONL. Also plain LM pre-training on text rows (every token trained).
 */
import type { ResponseProtocol } from "../protocol/types.js";
import { maskedNll } from "./algorithms/nll.js";
import { lrAt } from "./algorithms/lr-schedule.js";
import type { SftConfig } from "./config.js";
import { epochOrder, loadSftExamples, type SftExample } from "./data.js";
import type { TrainMetrics } from "./metrics-log.js";
import { chunk, type TrainablePolicy } from "./policy.js";
import { fmt, makeProgress, openRun, writeCheckpoint, type TrainHooks, type TrainResult } from "./run-common.js";

export interface SftComponents {
  policy: TrainablePolicy;
  /** Pre-built examples; otherwise `config.data.path` is loaded with the policy's tokenizer. */
  examples?: SftExample[];
  /** Protocol for environment-span masking of text responses (null: none). */
  protocol?: ResponseProtocol | null;
}

export function sftSchedule(
  config: SftConfig,
  nExamples: number,
): { stepsPerEpoch: number; totalSteps: number; lrSteps: number } {
  const stepsPerEpoch = Math.ceil(nExamples / config.batchSize);
  const full = stepsPerEpoch * config.epochs;
  const totalSteps = Math.min(full, config.run.maxSteps ?? full);
  return { stepsPerEpoch, totalSteps, lrSteps: config.optim.totalSteps ?? full };
}

export async function runSftLoop(config: SftConfig, comp: SftComponents, hooks: TrainHooks = {}): Promise<TrainResult> {
  const policy = comp.policy;
  const examples =
    comp.examples ??
    (await loadSftExamples(config.data.path, {
      tokenizer: policy.tokenizer,
      protocol: comp.protocol ?? null,
      maskEnvironment: config.mask === "environment",
      maxSeqLen: config.data.maxSeqLen,
      addBos: config.data.addBos,
      addEos: config.data.addEos,
      format: config.data.format,
      textKey: config.data.textKey,
      promptKey: config.data.promptKey,
      responseKey: config.data.responseKey,
      limit: config.data.limit,
    }));
  if (examples.length === 0) throw new Error("SFT: no training examples");

  const ctx = await openRun(config, policy, hooks);
  const { stepsPerEpoch, totalSteps, lrSteps } = sftSchedule(config, examples.length);
  let step = ctx.resumed?.step ?? 0;
  let optimizerSteps = ctx.resumed?.state.optimizerSteps ?? 0;
  let samplesSeen = ctx.resumed?.state.samplesSeen ?? 0;
  let tokensSeen = ctx.resumed?.state.tokensSeen ?? 0;
  const elapsedBase = ctx.resumed?.state.elapsedSec ?? 0;
  const t0 = Date.now();
  let last: TrainMetrics | null = null;
  let lastCkpt: string | null = ctx.resumed?.dir ?? null;
  let stoppedEarly = false;
  const endStep = Math.min(totalSteps, hooks.stopAfterSteps !== undefined ? step + hooks.stopAfterSteps : totalSteps);
  const progress = makeProgress(config.stage, totalSteps, step, hooks, () =>
    last ? `loss ${fmt(last.loss)} lr ${fmt(last.lr)}` : "",
  );

  const state = () => ({
    stage: config.stage,
    step,
    optimizerSteps,
    seed: config.seed,
    cursor: { episode: Math.floor(step / stepsPerEpoch), index: (step % stepsPerEpoch) * config.batchSize },
    samplesSeen,
    tokensSeen,
    elapsedSec: elapsedBase + (Date.now() - t0) / 1000,
  });

  try {
    while (step < endStep) {
      if (hooks.signal?.aborted) {
        stoppedEarly = true;
        break;
      }
      const ts = Date.now();
      const epoch = Math.floor(step / stepsPerEpoch);
      const b = step % stepsPerEpoch;
      const order = epochOrder(examples.length, config.seed, epoch, config.data.shuffle, "sft");
      const batch = order.slice(b * config.batchSize, (b + 1) * config.batchSize).map((i) => examples[i]);
      const tokenCount = batch.reduce((a, e) => a + e.mask.reduce((x, y) => x + y, 0), 0);
      const normalizer = config.lossAggregation === "token-mean" ? tokenCount : batch.length;
      let loss = 0;
      let nllSum = 0;
      let seqTokens = 0;
      policy.zeroGrad();
      for (const part of chunk(batch, config.microBatchSize)) {
        const masks = part.map((e) => e.mask);
        let partNll = 0;
        const r = await policy.accumulateGradients(part, (logp) => {
          const res = maskedNll(logp, masks, { aggregation: config.lossAggregation, normalizer });
          partNll = res.nllSum;
          return res;
        });
        loss += r.loss;
        nllSum += partNll;
        seqTokens += part.reduce((a, e) => a + e.tokens.length, 0);
      }
      const lr = lrAt(optimizerSteps, {
        name: config.optim.schedule,
        lr: config.optim.lr,
        totalSteps: lrSteps,
        warmupRatio: config.optim.warmupRatio,
        minLrRatio: config.optim.minLrRatio,
      });
      const { gradNorm } = await policy.step({ lr });
      optimizerSteps++;
      step++;
      samplesSeen += batch.length;
      tokensSeen += seqTokens;
      const secs = (Date.now() - ts) / 1000;
      last = {
        step,
        time: Date.now() / 1000,
        stage: config.stage,
        lr,
        loss,
        grad_norm: gradNorm,
        tokens_per_s: secs > 0 ? seqTokens / secs : undefined,
        samples: batch.length,
        epoch,
        trained_tokens: tokenCount,
        nll_per_token: tokenCount > 0 ? nllSum / tokenCount : undefined,
      };
      await ctx.metrics.append(last);
      await hooks.onStep?.(last);
      progress.tick();
      const save = config.run.saveSteps > 0 && step % config.run.saveSteps === 0;
      if (save || step === endStep) lastCkpt = await writeCheckpoint(ctx, policy, state(), hooks);
    }
    if (stoppedEarly && (lastCkpt === null || !lastCkpt.endsWith(String(step).padStart(6, "0")))) {
      lastCkpt = await writeCheckpoint(ctx, policy, state(), hooks);
    }
  } finally {
    progress.finish();
    await ctx.metrics.close();
  }
  const metrics = await ctx.metrics.read();
  return {
    runDir: ctx.runDir,
    steps: step,
    metrics,
    final: metrics.length ? metrics[metrics.length - 1] : null,
    checkpoint: lastCkpt,
    stoppedEarly: stoppedEarly || step < totalSteps,
  };
}
