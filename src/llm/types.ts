/**
 * The one narrow interface every LLM backend implements (OpenAI-compatible HTTP, node-llama-cpp GGUF, the built-in
 * model). Callers never branch on the backend. Token ids are kept end to end.
 */
import type { Tokenizer } from "../util/types.js";

export type { Tokenizer };

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling; 1 = off. */
  topP: number;
  /** 0 or undefined = off. */
  topK?: number;
  /** Maximum new tokens of this call (one segment). */
  maxTokens: number;
  /** Stop strings, matched on the decoded text. */
  stop: readonly string[];
  seed?: number;
  /** Return the log-prob of each sampled token (default true where the backend can). */
  logprobs?: boolean;
}

export type FinishReason = "stop" | "eos" | "length";

export interface GenerateRequest {
  /** The whole sequence so far (prompt + earlier segments + inserted observations), as token ids. */
  tokens: readonly number[];
  /** The same sequence as text, for backends that can only take text. */
  text: string;
  params: SamplingParams;
  signal?: AbortSignal;
  /** Called with each new piece of decoded text as it is generated (streaming; optional for the backend). */
  onText?: (delta: string) => void;
}

export interface GenerateResult {
  /**
   * Newly sampled token ids, including the tokens that spelled a matched stop string (vLLM semantics) and nothing
   * after the token that completed it.
   */
  tokens: number[];
  /** Decoded new text, cut before the matched stop string. */
  text: string;
  /** Log-prob of each token in `tokens` under the sampling distribution before temperature/top-p; null if unavailable. */
  logprobs: number[] | null;
  finishReason: FinishReason;
  /** The stop string that ended generation (finishReason "stop"). */
  stopString: string | null;
  /** False when the backend returned only text and `tokens` were re-tokenized (a warning is recorded). */
  tokenIdsExact: boolean;
  /** Milliseconds spent in the backend for this call. */
  backendMs: number;
}

export interface LLMBackend {
  /** e.g. `openai:http://127.0.0.1:8000/v1#model`, `llama.cpp:/path/model.gguf`, `builtin:/path/checkpoint`. */
  readonly name: string;
  readonly tokenizer: Tokenizer;
  generate(req: GenerateRequest): Promise<GenerateResult>;
  /** Optional batched generation; the rollout engine uses it when present. Results keep the request order. */
  generateBatch?(reqs: GenerateRequest[]): Promise<GenerateResult[]>;
  /** How many `generate` calls may usefully run at once. */
  readonly maxConcurrency?: number;
  close(): Promise<void>;
}
