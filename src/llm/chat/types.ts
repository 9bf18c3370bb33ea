/**
 * Chat backends: chat models (OpenAI, Anthropic, Gemini, Ollama, vLLM/SGLang chat endpoints) behind the `LLMBackend`
 * contract the rollout uses. A chat model takes messages, not a raw token sequence, so a chat backend adds `chat()`
 * and the rollout engine runs its chat loop (src/rollout/chat-engine.ts) for it. Its trajectories have no token ids
 * (`Trajectory.chat` marks them); `generate()` refuses, and so does everything that needs ids (training).
 */
import type { ChatSearchMode } from "../../protocol/chat-search.js";
import type { LLMBackend } from "../types.js";

export type { ChatSearchMode };

export interface ChatToolCall {
  id: string;
  name: string;
  /** Parsed arguments (an object for a well-formed call; the raw text when it was not JSON). */
  input: unknown;
}

export type ChatMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: ChatToolCall[] }
  | { role: "tool"; toolCallId: string; toolName: string; content: string; isError?: boolean };

/** A function tool offered to the model (OpenAI function schema). */
export interface ChatToolSpec {
  name: string;
  description: string;
  /** JSON schema of the arguments. */
  parameters: Record<string, unknown>;
}

export interface ChatParams {
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  /** Most new tokens of this call. */
  maxTokens: number;
  /** Stop strings (the server cuts them off; `stopString` says which one matched when it can tell). */
  stop: readonly string[];
  seed?: number;
}

export interface ChatRequest {
  messages: readonly ChatMessage[];
  tools?: readonly ChatToolSpec[];
  params: ChatParams;
  signal?: AbortSignal;
  /** Streaming: called with each new piece of text (optional for the backend). */
  onText?: (delta: string) => void;
}

/** A tool call as the model made it; `error` is set when it cannot be run (unknown tool, malformed arguments). */
export interface ChatResultToolCall extends ChatToolCall {
  error?: string;
}

export interface ChatUsage {
  inputTokens: number | null;
  outputTokens: number | null;
  totalTokens: number | null;
}

export type ChatFinishReason = "stop" | "length" | "tool-calls" | "content-filter" | "other";

export interface ChatResult {
  /** Assistant text of this turn (stop string cut off). */
  text: string;
  toolCalls: ChatResultToolCall[];
  finishReason: ChatFinishReason;
  /** The stop string that ended the turn when the provider reports it (Anthropic) or the client found it; else null. */
  stopString: string | null;
  usage: ChatUsage;
  /** Cost in USD when the provider reports one (e.g. `usage.cost` of an OpenAI-compatible router); else null. */
  costUsd: number | null;
  /** Milliseconds spent in the call (retries included). */
  backendMs: number;
  /** Capability fallbacks of this call (e.g. stop strings matched client-side). */
  warnings: string[];
}

/** A chat model behind the `LLMBackend` contract. */
export interface ChatBackend extends LLMBackend {
  readonly kind: "chat";
  /** `openai`, `anthropic`, `google`, `ollama`, `openai-compatible`, or `custom` (a model passed in). */
  readonly provider: string;
  readonly modelId: string;
  /** The search mode rollouts use with this backend unless they set one. */
  readonly searchMode: ChatSearchMode;
  chat(req: ChatRequest): Promise<ChatResult>;
}

/** True for a chat backend (no token ids; the rollout runs its chat loop). */
export function isChatBackend(b: LLMBackend): b is ChatBackend {
  return (b as { kind?: unknown }).kind === "chat" && typeof (b as { chat?: unknown }).chat === "function";
}
