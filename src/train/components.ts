/**
 * Wiring of the RL loop's engine-independent slots to the real modules: the rollout engine (src/rollout) as a
 * `RolloutFn`, the reward presets' batch API (src/reward) as a `RewardFn`.
 */
import type { LLMBackend } from "../llm/types.js";
import type { ResponseProtocol } from "../protocol/types.js";
import type { Retriever } from "../retrieval/types.js";
import { getRewardPreset, scoreBatch, type ScoreBatchOptions } from "../reward/batch.js";
import { runRollouts } from "../rollout/engine.js";
import type { Trajectory } from "../rollout/types.js";
import type { RlConfig } from "./config.js";
import type { RewardFn, RolloutFn } from "./rl.js";

/** A `RolloutFn` over the rollout engine in training mode with the config's sampling and limits. */
export function engineRollout(opts: {
  config: RlConfig;
  protocol: ResponseProtocol;
  backend: LLMBackend;
  retriever: Retriever;
}): RolloutFn {
  const { config, protocol, backend, retriever } = opts;
  const r = config.rollout;
  return async (reqs, { seed, signal }) => {
    // one item per request: the rollout ids and seeds are the trainer's (group = question id)
    const trajs = await runRollouts({
      protocol,
      backend,
      retriever,
      mode: "train",
      items: reqs.map((q) => ({ id: q.id, group: q.group, question: q.question, gold: q.gold })),
      samplesPerItem: 1,
      concurrency: r.concurrency,
      promptOptions: {
        ...(config.protocol.variant ? { variant: config.protocol.variant } : {}),
        ...(config.protocol.chatTemplate ? { chatTemplate: config.protocol.chatTemplate } : {}),
        ...(config.protocol.template !== undefined ? { template: config.protocol.template } : {}),
      },
      sampling: {
        temperature: r.temperature,
        topP: r.topP,
        ...(r.topK > 0 ? { topK: r.topK } : {}),
        seed,
        logprobs: true,
      },
      limits: {
        maxSearches: r.maxRetrievals,
        segmentMaxTokens: r.maxTokensPerSegment,
        topK: config.retriever.k,
        ...(r.maxTotalTokens ? { maxTotalTokens: r.maxTotalTokens } : {}),
      },
      signal,
    });
    return trajs;
  };
}

/** A `RewardFn` over a reward preset: the whole rollout batch in one `scoreBatch` call (groups by question id). */
export function presetReward(config: RlConfig, extra: Partial<ScoreBatchOptions> = {}): RewardFn {
  getRewardPreset(config.reward.preset); // fail before the first rollout on an unknown name
  const opts: ScoreBatchOptions = {
    ...(config.reward.plus ? { plus: config.reward.plus as ScoreBatchOptions["plus"] } : {}),
    ...(config.reward.unknownReward !== undefined ? { unknownReward: config.reward.unknownReward } : {}),
    ...extra,
  };
  return async (trajs: Trajectory[], rows) => {
    const res = scoreBatch(
      config.reward.preset,
      trajs.map((t, i) => ({
        response: t.responseText,
        question: rows[i].question,
        ...(rows[i].gold !== undefined ? { gold: rows[i].gold } : {}),
        group: t.group,
        retrievals: t.retrievals,
      })),
      opts,
    );
    return res.map((r) => ({
      reward: r.reward,
      correct: r.correct,
      extra: {
        answer_score: r.score,
        format_ok: r.formatOk ? 1 : 0,
        finished: r.finished ? 1 : 0,
        ...(r.details.groupReward !== undefined ? { group_reward: r.details.groupReward } : {}),
      },
    }));
  };
}
