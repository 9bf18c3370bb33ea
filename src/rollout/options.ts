/**
 * Options of the rollout engine: what to roll out, the per-trajectory limits, retries, micro-batching and the
 * upstream defaults per mode (r1-searcher.md §1.7).
 */
import type { SamplingParams, LLMBackend } from "../llm/types.js";
import type { ChatSearchMode } from "../protocol/chat-search.js";
import type { PromptOptions, ResponseProtocol, RolloutMode } from "../protocol/types.js";
import type { Retriever } from "../retrieval/types.js";
import type { RolloutEvent } from "./types.js";

/** `pred_ans` of an unfinished evaluation trajectory (upstream). */
export const UPSTREAM_UNKNOWN_ANSWER = "I don't know.";

/** One question to roll out. */
export interface RolloutItem {
  id: string;
  /** Group key (default: `id`); the samples of one item share it. */
  group?: string;
  question: string;
  gold?: string | string[];
  /** The full prompt text; default `protocol.buildPrompt(question, promptOptions)`. */
  prompt?: string;
}

export interface RolloutLimits {
  /** Most retrievals per trajectory (upstream: 8 in training, 9 in local evaluation, 8 online). */
  maxSearches: number;
  /**
   * What happens once `maxSearches` retrievals are done: "final-segment" = generate one more segment, keep it and end
   * the trajectory (training: the 9th segment is kept); "stop" = end before generating (evaluation: `many_retrieve`).
   */
  atLimit: "final-segment" | "stop";
  /** Maximum new tokens per generation segment (upstream 512). */
  segmentMaxTokens: number;
  /** Budget of response tokens (generated + inserted) per trajectory; Infinity = bounded by the backend's context. */
  maxTotalTokens: number;
  /** Passages per query (upstream: 3 in training, 5 in local evaluation). */
  topK: number;
  /** Per-trajectory wall-clock limit in ms (0 = none); reaching it ends the trajectory as `aborted`. */
  timeoutMs: number;
}

export interface RolloutRetryOptions {
  /** Extra attempts of a failed generation call (default 1). */
  generate: number;
  /** Extra attempts of a failed retrieval (default 2). */
  retrieve: number;
  /** First backoff in ms, doubled per attempt (default 200). */
  backoffMs: number;
}

export interface RolloutBatchingOptions {
  /** Most queries per retriever call (default 128). */
  retrievalMaxBatch: number;
  /** Longest wait for more queries, ms (default 2). */
  retrievalMaxWaitMs: number;
  /** Retriever calls in flight at once (default 2); queries arriving meanwhile join the next call. */
  retrievalMaxInFlight: number;
  /** `generateBatch` calls in flight at once (default 1). */
  generateMaxInFlight: number;
  /** Most requests per `generateBatch` call (default 256). */
  generateMaxBatch: number;
  /** Longest wait for more generation requests, ms (default 5). */
  generateMaxWaitMs: number;
}

/** Upstream defaults per mode (r1-searcher.md §1.7). */
export const ROLLOUT_DEFAULTS: Readonly<
  Record<RolloutMode, { sampling: Omit<SamplingParams, "stop" | "maxTokens">; limits: RolloutLimits }>
> = Object.freeze({
  train: {
    sampling: { temperature: 1, topP: 0.95, logprobs: true },
    limits: {
      maxSearches: 8,
      atLimit: "final-segment",
      segmentMaxTokens: 512,
      maxTotalTokens: Infinity,
      topK: 3,
      timeoutMs: 0,
    },
  },
  eval: {
    sampling: { temperature: 0, topP: 0.95, logprobs: true },
    limits: { maxSearches: 9, atLimit: "stop", segmentMaxTokens: 512, maxTotalTokens: Infinity, topK: 5, timeoutMs: 0 },
  },
});

export interface RolloutEngineOptions {
  protocol: ResponseProtocol;
  backend: LLMBackend;
  retriever: Retriever;
  mode: RolloutMode;
  /** Sampling overrides (stop strings default to `protocol.stopStrings(mode)`; `seed` seeds every segment). */
  sampling?: Partial<SamplingParams>;
  limits?: Partial<RolloutLimits>;
  /** Prompt variant / chat template / template for `protocol.buildPrompt`. */
  promptOptions?: PromptOptions;
  /** Prepend the tokenizer's BOS to the prompt ids ("auto": when it has one and the prompt does not start with it). */
  addBos?: boolean | "auto";
  retries?: Partial<RolloutRetryOptions>;
  batching?: Partial<RolloutBatchingOptions>;
  /** Called with every event, in order per trajectory. Exceptions thrown by it are ignored. */
  onEvent?: (event: RolloutEvent) => void;
  /** Cancels every trajectory of this engine. */
  signal?: AbortSignal;
  /** Chat backends only: search with the protocol's tags or with the `search` tool (default: the backend's mode). */
  chatMode?: ChatSearchMode;
}

export interface RunRolloutsOptions extends RolloutEngineOptions {
  items: readonly RolloutItem[];
  /** Samples per item (GRPO group size; default 1). */
  samplesPerItem?: number;
  /** Trajectories in flight (default: 64 with `generateBatch`, else the backend's `maxConcurrency`, else 16). */
  concurrency?: number;
}

export interface RunOneOptions {
  /** Sample index within the item's group (default 0; seeds differ per sample). */
  sampleIndex?: number;
  /** Trajectory id (default: the item id, plus `#k` for a sample index k > 0). */
  id?: string;
  /** Cancels this trajectory only. */
  signal?: AbortSignal;
  /** Events of this trajectory only (in addition to the engine's `onEvent`). */
  onEvent?: (event: RolloutEvent) => void;
}
