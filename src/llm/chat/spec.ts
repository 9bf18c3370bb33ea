/**
 * `--llm` specs of chat models, built with the AI SDK provider packages:
 *
 * | spec                                  | provider package            | key variable                     | base URL variable               |
 * | ------------------------------------- | --------------------------- | -------------------------------- | ------------------------------- |
 * | `openai:gpt-4o-mini`                  | @ai-sdk/openai (chat API)   | OPENAI_API_KEY                   | OPENAI_BASE_URL                 |
 * | `anthropic:claude-3-5-haiku-latest`   | @ai-sdk/anthropic           | ANTHROPIC_API_KEY                | ANTHROPIC_BASE_URL              |
 * | `google:gemini-2.0-flash` (`gemini:`) | @ai-sdk/google              | GOOGLE_GENERATIVE_AI_API_KEY, GEMINI_API_KEY | GOOGLE_GENERATIVE_AI_BASE_URL |
 * | `ollama:qwen2.5:7b`                   | @ai-sdk/openai-compatible   | OLLAMA_API_KEY (optional)        | OLLAMA_BASE_URL, OLLAMA_HOST    |
 * | `openai-compatible:http://h:8000/v1#model` | @ai-sdk/openai-compatible | SEARCHRL_LLM_API_KEY (optional) | (in the spec)                |
 *
 * A key given in the options wins over the variables. Keys go only to their own provider (an OpenAI key is never sent
 * to an OpenAI-compatible server) and are redacted from every message.
 */
import { createAnthropic } from "@ai-sdk/anthropic";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModel } from "ai";
import { AiSdkChatBackend, type AiSdkChatBackendOptions } from "./ai-sdk.js";
import { parseChatSpec, type ParsedChatSpec } from "./parse.js";
import type { ChatSearchMode } from "./types.js";

export interface ChatSpecOptions extends Omit<AiSdkChatBackendOptions, "model" | "provider" | "modelId"> {
  /** API key (default: the provider's variable, see the table above). */
  apiKey?: string;
  /** Server base URL (default: the provider's variable, else the provider's own default). */
  baseUrl?: string;
  /** Environment to read keys and URLs from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Custom fetch (tests, proxies). */
  fetch?: typeof globalThis.fetch;
  searchMode?: ChatSearchMode;
}

function firstSet(env: NodeJS.ProcessEnv, names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== "") return v;
  }
  return undefined;
}

function ollamaBaseUrl(env: NodeJS.ProcessEnv): string {
  const explicit = firstSet(env, ["OLLAMA_BASE_URL"]);
  if (explicit) return explicit.replace(/\/+$/, "");
  const host = firstSet(env, ["OLLAMA_HOST"]);
  if (host) {
    const url = /^https?:\/\//i.test(host) ? host : `http://${host}`;
    return `${url.replace(/\/+$/, "")}/v1`;
  }
  return "http://127.0.0.1:11434/v1";
}

/** The AI SDK model a spec names, with its key (for redaction). */
export function chatModelFromSpec(
  spec: string,
  opts: Pick<ChatSpecOptions, "apiKey" | "baseUrl" | "env" | "fetch"> = {},
): { model: LanguageModel; parsed: ParsedChatSpec; apiKey: string | undefined } {
  const parsed = parseChatSpec(spec);
  const env = opts.env ?? process.env;
  const f = opts.fetch ? { fetch: opts.fetch } : {};
  const need = (key: string | undefined, names: string[]): string => {
    if (!key) throw new Error(`${parsed.provider}:${parsed.modelId} needs an API key: set ${names.join(" or ")}`);
    return key;
  };
  switch (parsed.provider) {
    case "openai": {
      const apiKey = need(opts.apiKey ?? firstSet(env, ["OPENAI_API_KEY"]), ["OPENAI_API_KEY"]);
      const baseURL = opts.baseUrl ?? firstSet(env, ["OPENAI_BASE_URL"]);
      const p = createOpenAI({ apiKey, ...(baseURL ? { baseURL } : {}), ...f });
      return { model: p.chat(parsed.modelId), parsed, apiKey };
    }
    case "anthropic": {
      const apiKey = need(opts.apiKey ?? firstSet(env, ["ANTHROPIC_API_KEY"]), ["ANTHROPIC_API_KEY"]);
      const baseURL = opts.baseUrl ?? firstSet(env, ["ANTHROPIC_BASE_URL"]);
      const p = createAnthropic({ apiKey, ...(baseURL ? { baseURL } : {}), ...f });
      return { model: p(parsed.modelId), parsed, apiKey };
    }
    case "google": {
      const names = ["GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY"];
      const apiKey = need(opts.apiKey ?? firstSet(env, names), names);
      const baseURL = opts.baseUrl ?? firstSet(env, ["GOOGLE_GENERATIVE_AI_BASE_URL"]);
      const p = createGoogleGenerativeAI({ apiKey, ...(baseURL ? { baseURL } : {}), ...f });
      return { model: p(parsed.modelId), parsed, apiKey };
    }
    case "ollama": {
      const apiKey = opts.apiKey ?? firstSet(env, ["OLLAMA_API_KEY"]);
      const p = createOpenAICompatible({
        name: "ollama",
        baseURL: opts.baseUrl ?? ollamaBaseUrl(env),
        ...(apiKey ? { apiKey } : {}),
        includeUsage: true,
        ...f,
      });
      return { model: p.chatModel(parsed.modelId), parsed, apiKey };
    }
    case "openai-compatible": {
      const apiKey = opts.apiKey ?? firstSet(env, ["SEARCHRL_LLM_API_KEY"]);
      const p = createOpenAICompatible({
        name: "openai-compatible",
        baseURL: opts.baseUrl ?? parsed.baseUrl!,
        ...(apiKey ? { apiKey } : {}),
        includeUsage: true,
        ...f,
      });
      return { model: p.chatModel(parsed.modelId), parsed, apiKey };
    }
  }
}

/** A chat backend for a spec such as `openai:gpt-4o-mini` (see the table above). */
export function createChatBackend(spec: string, opts: ChatSpecOptions = {}): AiSdkChatBackend {
  const { model, parsed, apiKey } = chatModelFromSpec(spec, opts);
  const { apiKey: _k, baseUrl: _b, env: _e, fetch: _f, ...rest } = opts;
  const shown =
    parsed.provider === "openai-compatible"
      ? `openai-compatible:${parsed.baseUrl}#${parsed.modelId}`
      : `${parsed.provider}:${parsed.modelId}`;
  return new AiSdkChatBackend({
    ...rest,
    model,
    name: rest.name ?? shown,
    provider: parsed.provider,
    modelId: parsed.modelId,
    secrets: [...(rest.secrets ?? []), ...(apiKey ? [apiKey] : [])],
  });
}
