/** Chat model specs (`provider:model`): recognised and split without loading the AI SDK. */

export type ChatProvider = "openai" | "anthropic" | "google" | "ollama" | "openai-compatible";

export const CHAT_PROVIDERS: readonly ChatProvider[] = Object.freeze([
  "openai",
  "anthropic",
  "google",
  "ollama",
  "openai-compatible",
]);

const ALIASES: Record<string, ChatProvider> = { gemini: "google", chat: "openai-compatible" };

const SPEC_RE = /^(openai|anthropic|google|gemini|ollama|openai-compatible|chat):(.+)$/;

/** True when a `--llm` spec names a chat model (`provider:model`). */
export function isChatSpec(spec: string): boolean {
  return SPEC_RE.test(spec) && !/^[a-z]:[\\/]/i.test(spec);
}

export interface ParsedChatSpec {
  provider: ChatProvider;
  modelId: string;
  /** openai-compatible: the server URL of the spec. */
  baseUrl?: string;
}

/** Split a chat spec into provider, model and (openai-compatible) URL; throws with the accepted forms. */
export function parseChatSpec(spec: string): ParsedChatSpec {
  const m = SPEC_RE.exec(spec);
  if (!m)
    throw new Error(
      `"${spec}" is not a chat model spec: expected openai:MODEL, anthropic:MODEL, google:MODEL, ollama:MODEL or openai-compatible:http://host:port/v1#MODEL`,
    );
  const provider = ALIASES[m[1]] ?? (m[1] as ChatProvider);
  const rest = m[2];
  if (provider === "openai-compatible") {
    const hash = rest.indexOf("#");
    const baseUrl = hash >= 0 ? rest.slice(0, hash) : rest;
    const modelId = hash >= 0 ? decodeURIComponent(rest.slice(hash + 1)) : "";
    if (!/^https?:\/\//i.test(baseUrl))
      throw new Error(
        `${spec}: an openai-compatible spec needs a server URL: openai-compatible:http://host:port/v1#MODEL`,
      );
    if (!modelId) throw new Error(`${spec}: the model name is missing: append #MODEL to the URL`);
    return { provider, modelId, baseUrl: baseUrl.replace(/\/+$/, "") };
  }
  if (rest.trim() === "") throw new Error(`${spec}: the model name is missing`);
  return { provider, modelId: rest };
}
