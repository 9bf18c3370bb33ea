/**
 * The RL trainer loop (R1-Searcher / R1-Searcher++): per rollout step
 *   prompts → rollouts with retrieval → rewards (grouped by question) → old/ref log-probs → advantages
 *   → PPO-clip updates (micro-batches, several optimizer steps per rollout step) [+ μ·L_M memorization]
 *   → metrics / samples / checkpoints.
 * Engine-independent: the model, rollout, reward and rewriter come in as components (see `rl-run.ts` for the wiring
 * with the built-in model, the rollout engine, retrievers and reward presets).
 */
import type { Trajectory } from "../rollout/types.js";
import type { ResponseProtocol } from "../protocol/types.js";
import { hashSeed, Rng } from "../util/rng.js";
import { computeAdvantages } from "./algorithms/advantages.js";
import { klLoss, klPenalty, maskedMean } from "./algorithms/kl.js";
import { lrAt } from "./algorithms/lr-schedule.js";
import { memorizationLoss } from "./algorithms/nll.js";
import { maskedEntropy, ppoClipLoss } from "./algorithms/policy-loss.js";
import type { RlConfig } from "./config.js";
import { rlStepPrompts, type QuestionRow } from "./data.js";
import { meanStd, writeSamples, type TrainMetrics } from "./metrics-log.js";
import { chunk, scoreInBatches, type ScoringModel, type TokenSequence, type TrainablePolicy } from "./policy.js";
import { fmt, makeProgress, openRun, writeCheckpoint, type TrainHooks, type TrainResult } from "./run-common.js";
import type { MemorizationExample, Rewriter } from "./rewriter.js";
import { buildMemorizationSet } from "./rewriter.js";

/** One trajectory to produce: sample `sample` of question `group`. */
export interface RolloutRequest {
  id: string;
  group: string;
  question: string;
  gold?: string | string[];
  sample: number;
}

/** Produces one trajectory per request, in request order. `seed` is derived from (config seed, step). */
export type RolloutFn = (
  reqs: RolloutRequest[],
  opts: { seed: number; step: number; signal?: AbortSignal },
) => Promise<Trajectory[]>;

export interface ScoredTrajectory {
  reward: number;
  /** Answer correct (the preset's accuracy notion); drives `accuracy` and the memorization set. */
  correct: boolean;
  /** Extra per-sample numbers to average into the metrics line (e.g. format_ok). */
  extra?: Record<string, number>;
}

/** Scores a rollout batch (all samples of all questions of the step; group rewards need the whole group). */
export type RewardFn = (trajs: Trajectory[], rows: QuestionRow[]) => Promise<ScoredTrajectory[]>;

export interface RlComponents {
  policy: TrainablePolicy;
  /** Frozen reference for the KL term; default: a frozen copy of the policy taken before the first step. */
  reference?: ScoringModel | null;
  rollout: RolloutFn;
  reward: RewardFn;
  questions: QuestionRow[];
  /** Needed for memorization (answer extraction of rewritten paths). */
  protocol?: ResponseProtocol | null;
  rewriter?: Rewriter | null;
  /** Answer check of rewritten paths (Cover-EM by default in rl-run). */
  answerCheck?: (answer: string, gold: string | string[]) => boolean;
}

/** Step counts of an RL run. */
export function rlSchedule(config: RlConfig, nQuestions: number) {
  const stepsPerEpisode = Math.floor(nQuestions / config.rollout.rolloutBatchSize);
  const fullSteps = stepsPerEpisode * config.run.numEpisodes;
  const totalSteps = Math.min(fullSteps, config.run.maxSteps ?? fullSteps);
  const samplesPerStep = config.rollout.rolloutBatchSize * config.rollout.nSamplesPerPrompt;
  const updatesPerStep = Math.ceil(samplesPerStep / config.algorithm.trainBatchSize) * config.algorithm.maxEpochs;
  // upstream: num_episodes · (len(data)·n // train_batch_size) · max_epochs
  const lrSteps =
    config.optim.totalSteps ??
    Math.max(
      1,
      config.run.numEpisodes *
        Math.floor((nQuestions * config.rollout.nSamplesPerPrompt) / config.algorithm.trainBatchSize) *
        config.algorithm.maxEpochs,
    );
  return { stepsPerEpisode, totalSteps, samplesPerStep, updatesPerStep, lrSteps };
}

interface Sample {
  traj: Trajectory;
  row: QuestionRow;
  seq: TokenSequence;
  mask: number[];
}

export async function runRlLoop(config: RlConfig, comp: RlComponents, hooks: TrainHooks = {}): Promise<TrainResult> {
  const { policy } = comp;
  const alg = config.algorithm;
  const needRef = alg.initKlCoef > 0 || alg.useKlLoss;
  const sched = rlSchedule(config, comp.questions.length);
  if (sched.stepsPerEpisode < 1) {
    throw new Error(
      `the prompt set has ${comp.questions.length} questions, fewer than one rollout batch (${config.rollout.rolloutBatchSize})`,
    );
  }
  const mem = config.memorization;
  if (mem.enabled && (!comp.rewriter || !comp.protocol))
    throw new Error("memorization is enabled but no rewriter/protocol was given");

  // The reference must be the initial policy: take the copy before loading a resumed checkpoint.
  let reference: ScoringModel | null = comp.reference ?? null;
  let ownRef: (ScoringModel & { dispose?(): void }) | null = null;
  if (needRef && !reference) {
    ownRef = await policy.frozenCopy();
    reference = ownRef;
  }

  const byId = new Map(comp.questions.map((q) => [q.id, q] as const));
  if (byId.size !== comp.questions.length) {
    throw new Error(
      `question ids are not unique (${comp.questions.length} rows, ${byId.size} ids): fix data.idKey or the data`,
    );
  }
  const ctx = await openRun(config, policy, hooks);
  if (hooks.resume && ctx.resumed && needRef && !comp.reference) {
    ctx.log(
      "warning: resumed without an explicit reference model; the KL reference is the policy as it was before loading the checkpoint",
    );
  }
  let step = ctx.resumed?.step ?? 0;
  let optimizerSteps = ctx.resumed?.state.optimizerSteps ?? 0;
  let samplesSeen = ctx.resumed?.state.samplesSeen ?? 0;
  let tokensSeen = ctx.resumed?.state.tokensSeen ?? 0;
  const elapsedBase = ctx.resumed?.state.elapsedSec ?? 0;
  const t0 = Date.now();
  let last: TrainMetrics | null = null;
  let lastCkpt: string | null = ctx.resumed?.dir ?? null;
  let stoppedEarly = false;
  const endStep = Math.min(
    sched.totalSteps,
    hooks.stopAfterSteps !== undefined ? step + hooks.stopAfterSteps : sched.totalSteps,
  );
  const progress = makeProgress("rl", sched.totalSteps, step, hooks, () =>
    last
      ? `reward ${fmt(last.reward_mean)} acc ${fmt(last.accuracy, 2)} ret ${fmt(last.retrievals_mean, 2)} kl ${fmt(last.kl)}`
      : "",
  );
  const lrOpts = {
    name: config.optim.schedule,
    lr: config.optim.lr,
    totalSteps: sched.lrSteps,
    warmupRatio: config.optim.warmupRatio,
    minLrRatio: config.optim.minLrRatio,
  };

  const state = () => ({
    stage: "rl",
    step,
    optimizerSteps,
    seed: config.seed,
    cursor: {
      episode: Math.floor(step / sched.stepsPerEpisode),
      index: (step % sched.stepsPerEpisode) * config.rollout.rolloutBatchSize,
    },
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
      const tStep = Date.now();
      // ---- 1. prompts and rollouts
      const { indices } = rlStepPrompts(
        comp.questions.length,
        config.rollout.rolloutBatchSize,
        step,
        config.seed,
        config.data.shuffle,
      );
      const reqs: RolloutRequest[] = [];
      for (const qi of indices) {
        const row = comp.questions[qi];
        for (let s = 0; s < config.rollout.nSamplesPerPrompt; s++) {
          reqs.push({
            id: `${step + 1}-${row.id}-${s}`,
            group: row.id,
            question: row.question,
            gold: row.gold,
            sample: s,
          });
        }
      }
      // the stop signal ends the run after this step; it does not cut the step's rollouts short
      const trajs = await comp.rollout(reqs, { seed: hashSeed(config.seed, "rollout", step), step });
      if (trajs.length !== reqs.length)
        throw new Error(`rollout returned ${trajs.length} trajectories for ${reqs.length} requests`);
      const rows = reqs.map((r) => byId.get(r.group)!);
      const tRollout = Date.now();

      // ---- 2. rewards (whole batch: group rewards need every sample of a question)
      const scored = await comp.reward(trajs, rows);
      if (scored.length !== trajs.length)
        throw new Error(`reward returned ${scored.length} scores for ${trajs.length} trajectories`);

      // errored trajectories (backend/retriever failures) are left out of the update
      const keep: number[] = [];
      trajs.forEach((t, i) => {
        if (t.finish !== "error" && t.finish !== "aborted" && t.responseTokens.length > 0) keep.push(i);
      });
      const samples: Sample[] = keep.map((i) => {
        const t = trajs[i];
        if (t.mask.length !== t.responseTokens.length) {
          throw new Error(
            `trajectory ${t.id}: mask has ${t.mask.length} entries for ${t.responseTokens.length} response tokens`,
          );
        }
        return {
          traj: t,
          row: rows[i],
          seq: { tokens: [...t.promptTokens, ...t.responseTokens], start: t.promptTokens.length },
          mask: t.mask.map((m) => (m ? 1 : 0)),
        };
      });

      // ---- 3. experience: old log-probs (+ entropy) of the policy, reference log-probs, KL
      const seqs = samples.map((s) => s.seq);
      const old = await scoreInBatches(policy, seqs, alg.microRolloutBatchSize, { entropy: true });
      const ref = needRef && reference ? await scoreInBatches(reference, seqs, alg.microRolloutBatchSize) : null;
      const kls = ref ? samples.map((s, i) => klPenalty(old[i].logp, ref[i].logp, s.mask, alg.klEstimator)) : null;
      const k1 = ref
        ? samples.map((s, i) => maskedMean(klPenalty(old[i].logp, ref[i].logp, s.mask, "k1"), s.mask))
        : null;

      // ---- 4. advantages
      const adv = computeAdvantages(
        samples.map((s, i) => ({
          reward: scored[keep[i]].reward,
          group: s.traj.group,
          mask: s.mask,
          kl: kls && !alg.useKlLoss ? kls[i] : null,
        })),
        {
          estimator: alg.advantageEstimator,
          klCoef: alg.useKlLoss ? 0 : alg.initKlCoef,
          gamma: alg.gamma,
          rewardClip: alg.rewardClip,
          whiten: alg.whiten,
        },
      );

      // ---- 5. memorization set (R1-Searcher++)
      let memSet: MemorizationExample[] = [];
      let memCandidates = 0;
      if (mem.enabled && comp.rewriter && comp.protocol) {
        const built = await buildMemorizationSet(
          trajs.map((t, i) => ({ traj: t, row: rows[i], correct: scored[i].correct })),
          {
            rewriter: comp.rewriter,
            protocol: comp.protocol,
            tokenizer: policy.tokenizer,
            requireRetrieval: mem.requireRetrieval,
            recheck: mem.recheck,
            maxAnswerWords: mem.maxAnswerWords,
            maxPerQuestion: mem.maxPerQuestion,
            maxPerStep: mem.maxPerStep,
            answerCheck: comp.answerCheck,
          },
        );
        memSet = built.examples;
        memCandidates = built.candidates;
      }

      // ---- 6. policy updates
      const updates: Array<{ loss: number; memLoss: number; gradNorm: number; lr: number }> = [];
      let clipped = 0;
      let lossTokens = 0;
      let approxKlSum = 0;
      const epochs = alg.maxEpochs;
      const perEpoch = Math.ceil(samples.length / alg.trainBatchSize);
      const totalUpdates = Math.max(1, perEpoch * epochs);
      const memParts = splitEvenly(memSet, totalUpdates);
      let updateIndex = 0;
      for (let e = 0; e < epochs; e++) {
        const order = samples.map((_, i) => i);
        new Rng(hashSeed(config.seed, "replay", step, e)).shuffle(order);
        for (const batch of chunk(order, alg.trainBatchSize)) {
          policy.zeroGrad();
          const normalizer =
            alg.lossAggregation === "token-mean" ? batch.reduce((a, i) => a + sum(samples[i].mask), 0) : batch.length;
          let loss = 0;
          for (const micro of chunk(batch, alg.microTrainBatchSize)) {
            const r = await policy.accumulateGradients(
              micro.map((i) => samples[i].seq),
              (logp) => {
                const pl = ppoClipLoss(
                  micro.map((i, j) => ({
                    logp: logp[j],
                    oldLogp: old[i].logp,
                    advantages: adv.advantages[i],
                    mask: samples[i].mask,
                  })),
                  { clipEps: alg.clipEps, clipEpsHigh: alg.clipEpsHigh, aggregation: alg.lossAggregation, normalizer },
                );
                clipped += pl.clippedTokens;
                lossTokens += pl.tokens;
                approxKlSum += pl.approxKlSum;
                if (!alg.useKlLoss || !ref) return pl;
                const kl = klLoss(
                  logp,
                  micro.map((i) => ref[i].logp),
                  micro.map((i) => samples[i].mask),
                  { coef: alg.initKlCoef, estimator: alg.klEstimator, normalizer: batch.length },
                );
                return { loss: pl.loss + kl.loss, grad: pl.grad.map((g, j) => g.map((x, t) => x + kl.grad[j][t])) };
              },
            );
            loss += r.loss;
          }
          // memorization: μ·L_M over this update's share of T, token-normalized over that share
          let memLoss = 0;
          const part = memParts[updateIndex] ?? [];
          if (part.length > 0) {
            const totalTokens = part.reduce((a, m) => a + (m.tokens.length - m.start), 0);
            for (const micro of chunk(part, alg.microTrainBatchSize)) {
              const r = await policy.accumulateGradients(micro, (logp) =>
                memorizationLoss(logp, { coef: mem.coef, totalTokens }),
              );
              memLoss += r.loss;
            }
          }
          const lr = lrAt(optimizerSteps, lrOpts);
          const { gradNorm } = await policy.step({ lr });
          optimizerSteps++;
          updateIndex++;
          updates.push({ loss, memLoss, gradNorm, lr });
        }
      }
      step++;
      const tEnd = Date.now();

      // ---- 7. metrics, samples, checkpoint
      const allRewards = scored.map((s) => s.reward);
      const rs = meanStd(allRewards);
      const respTokens = trajs.reduce((a, t) => a + t.responseTokens.length, 0);
      samplesSeen += trajs.length;
      tokensSeen += trajs.reduce((a, t) => a + t.promptTokens.length + t.responseTokens.length, 0);
      const ent = maskedEntropy(
        old.map((o) => o.entropy ?? new Float32Array(o.logp.length)),
        samples.map((s) => s.mask),
      );
      const extras: Record<string, number> = {};
      for (const s of scored)
        for (const [k, v] of Object.entries(s.extra ?? {})) extras[k] = (extras[k] ?? 0) + v / scored.length;
      last = {
        step,
        time: Date.now() / 1000,
        stage: "rl",
        lr: updates.length ? updates[updates.length - 1].lr : lrAt(optimizerSteps, lrOpts),
        reward_mean: rs.mean,
        reward_std: rs.std,
        accuracy: scored.filter((s) => s.correct).length / scored.length,
        retrievals_mean: trajs.reduce((a, t) => a + t.retrievals, 0) / trajs.length,
        response_length_mean: respTokens / trajs.length,
        kl: k1 ? k1.reduce((a, b) => a + b, 0) / Math.max(1, k1.length) : undefined,
        entropy: ent.tokens > 0 ? ent.mean : undefined,
        clip_frac: lossTokens > 0 ? clipped / lossTokens : 0,
        approx_kl: lossTokens > 0 ? approxKlSum / lossTokens : 0,
        loss: updates.length ? updates.reduce((a, u) => a + u.loss, 0) / updates.length : undefined,
        grad_norm: updates.length ? updates.reduce((a, u) => a + u.gradNorm, 0) / updates.length : undefined,
        tokens_per_s: respTokens / Math.max(1e-3, (tEnd - tStep) / 1000),
        samples: trajs.length,
        policy_tokens_mean: samples.length ? samples.reduce((a, s) => a + sum(s.mask), 0) / samples.length : 0,
        return_mean: adv.sampleReturns.length
          ? adv.sampleReturns.reduce((a, b) => a + b, 0) / adv.sampleReturns.length
          : 0,
        updates: updates.length,
        rollout_s: (tRollout - tStep) / 1000,
        train_s: (tEnd - tRollout) / 1000,
        errors: trajs.length - keep.length,
        ...(mem.enabled
          ? {
              memorization_loss: updates.reduce((a, u) => a + u.memLoss, 0) / Math.max(1, updates.length),
              memorization_samples: memSet.length,
              memorization_candidates: memCandidates,
            }
          : {}),
        ...extras,
      };
      if (config.run.logSamples) {
        await writeSamples(
          ctx.runDir,
          step,
          trajs.map((t, i) => ({ ...t, reward: scored[i].reward, correct: scored[i].correct })),
        );
      }
      await ctx.metrics.append(last);
      await hooks.onStep?.(last);
      progress.tick();
      const save = config.run.saveSteps > 0 && step % config.run.saveSteps === 0;
      if (save || step === endStep) lastCkpt = await writeCheckpoint(ctx, policy, state(), hooks);
    }
    if (stoppedEarly && step > (ctx.resumed?.step ?? 0) && !(lastCkpt ?? "").endsWith(String(step).padStart(6, "0"))) {
      lastCkpt = await writeCheckpoint(ctx, policy, state(), hooks);
    }
  } finally {
    progress.finish();
    await ctx.metrics.close();
    ownRef?.dispose?.();
  }
  const metrics = await ctx.metrics.read();
  return {
    runDir: ctx.runDir,
    steps: step,
    metrics,
    final: metrics.length ? metrics[metrics.length - 1] : null,
    checkpoint: lastCkpt,
    stoppedEarly: stoppedEarly || step < sched.totalSteps,
  };
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** Split into `k` consecutive parts of near-equal size (earlier parts get the remainder). */
function splitEvenly<T>(xs: readonly T[], k: number): T[][] {
  const out: T[][] = [];
  const base = Math.floor(xs.length / k);
  let rem = xs.length % k;
  let pos = 0;
  for (let i = 0; i < k; i++) {
    const n = base + (rem > 0 ? 1 : 0);
    if (rem > 0) rem--;
    out.push(xs.slice(pos, pos + n));
    pos += n;
  }
  return out;
}
