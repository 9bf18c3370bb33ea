/**
 * `createBackend(spec)`: one string picks the backend.
 *
 * - `http(s)://host:port[/v1][#model]` → OpenAI-compatible `/v1/completions` (vLLM, SGLang, llama.cpp server, Ollama);
 *   the model name comes from `#model` or `opts.model`.
 * - `path/to/model.gguf` → node-llama-cpp (CPU, 1 thread by default).
 * - a directory with `config.json` (a built-in checkpoint: `config.json` + `model.safetensors` + `tokenizer.json`) →
 *   the built-in model (src/llm/builtin.ts).
 * - `openai:MODEL`, `anthropic:MODEL`, `google:MODEL`, `ollama:MODEL`, `openai-compatible:URL#MODEL` → a chat model
 *   through the AI SDK (src/llm/chat/spec.ts); no token ids (the rollout runs its chat loop).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Tokenizer } from "../util/types.js";
import type { LLMBackend } from "./types.js";
import { createOpenAIBackend, type OpenAIBackendOptions } from "./openai.js";
import { createLlamaCppBackend, type LlamaCppBackendOptions } from "./llamacpp.js";
import type { BuiltinBackendOptions } from "./builtin.js";
import { isChatSpec } from "./chat/parse.js";
import type { ChatSpecOptions } from "./chat/spec.js";

export type BackendKind = "openai" | "llama.cpp" | "builtin" | "chat";

export interface CreateBackendOptions {
  /** Model name for an HTTP server (`model` field of requests). */
  model?: string;
  /**
   * The model's tokenizer: an object, or a path to a `tokenizer.json` / a folder holding one (loaded with
   * `loadTokenizer`). An HTTP backend without one runs text-only.
   */
  tokenizer?: Tokenizer | string;
  /** Loads a tokenizer from a path (default: the HF tokenizer.json loader of src/model). */
  loadTokenizer?: (file: string) => Promise<Tokenizer>;
  /** Options passed to the OpenAI-compatible backend. */
  openai?: Partial<OpenAIBackendOptions>;
  /** Options passed to the node-llama-cpp backend. */
  llamaCpp?: Partial<LlamaCppBackendOptions>;
  /** Options passed to the built-in backend. */
  builtin?: Partial<BuiltinBackendOptions>;
  /** Options passed to a chat backend (`openai:gpt-4o-mini`-style specs): search mode, key, base URL, ... */
  chat?: ChatSpecOptions;
  onWarning?: (message: string) => void;
}

/** Which backend a spec selects (throws with the accepted forms when none fits). */
export function backendKind(spec: string): BackendKind {
  if (isChatSpec(spec)) return "chat";
  if (/^https?:\/\//i.test(spec)) return "openai";
  if (/\.gguf$/i.test(spec)) return "llama.cpp";
  if (existsSync(spec) && statSync(spec).isDirectory() && existsSync(path.join(spec, "config.json"))) return "builtin";
  throw new Error(
    `cannot tell which LLM backend "${spec}" is: expected an http(s) URL (OpenAI-compatible server), a .gguf file, a checkpoint directory with config.json, or a chat model (openai:MODEL, anthropic:MODEL, google:MODEL, ollama:MODEL, openai-compatible:URL#MODEL)`,
  );
}

/** Resolve a tokenizer path to a tokenizer.json file. */
export function tokenizerFile(p: string): string {
  const file = existsSync(p) && statSync(p).isDirectory() ? path.join(p, "tokenizer.json") : p;
  if (!existsSync(file)) throw new Error(`no tokenizer at ${p} (expected a tokenizer.json file or a folder with one)`);
  return file;
}

async function defaultLoadTokenizer(file: string): Promise<Tokenizer> {
  const { loadTokenizer } = await import("../model/tokenizer/hf.js");
  return loadTokenizer(file);
}

/** Create the backend a spec names. */
export async function createBackend(spec: string, opts: CreateBackendOptions = {}): Promise<LLMBackend> {
  const kind = backendKind(spec);
  if (kind === "chat") {
    // Loaded on use: the AI SDK and its providers.
    const { createChatBackend } = await import("./chat/spec.js");
    return createChatBackend(spec, { onWarning: opts.onWarning, ...opts.chat });
  }
  let tokenizer: Tokenizer | undefined;
  if (typeof opts.tokenizer === "string")
    tokenizer = await (opts.loadTokenizer ?? defaultLoadTokenizer)(tokenizerFile(opts.tokenizer));
  else tokenizer = opts.tokenizer;
  switch (kind) {
    case "openai": {
      const hash = spec.indexOf("#");
      const baseUrl = hash >= 0 ? spec.slice(0, hash) : spec;
      const model = opts.model ?? (hash >= 0 ? decodeURIComponent(spec.slice(hash + 1)) : undefined);
      if (!model)
        throw new Error(`the model name for ${baseUrl} is missing: pass --model NAME (or append #NAME to the URL)`);
      return createOpenAIBackend({ baseUrl, model, tokenizer, onWarning: opts.onWarning, ...opts.openai });
    }
    case "llama.cpp": {
      if (!existsSync(spec)) throw new Error(`GGUF file not found: ${spec}`);
      return createLlamaCppBackend({ modelPath: spec, tokenizer, onWarning: opts.onWarning, ...opts.llamaCpp });
    }
    case "builtin": {
      // Loaded on use: the built-in model brings its numeric runtime along.
      const { createBuiltinBackend } = await import("./builtin.js");
      return createBuiltinBackend({ checkpointDir: spec, ...(tokenizer ? { tokenizer } : {}), ...opts.builtin });
    }
  }
  throw new Error(`unreachable backend kind ${String(kind)}`);
}
