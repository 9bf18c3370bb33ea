/**
 * Chat framing of the protocols, for chat models (OpenAI, Anthropic, Gemini, Ollama, vLLM chat) that search while they
 * reason. Two ways to search:
 *
 * - protocol mode: the protocol's prompt as a system + a user message; generation stops at the closing query tag, the
 *   document block comes back as the next user message, and the model continues until it closes the answer tag;
 * - tool mode: a `search` function tool (the OpenAI function schema of veRL's Search-R1-like recipe: a `query_list`
 *   array) that the model calls; the documents come back as tool results (`{"result": "Doc 1 (Title: …)\n…"}`, the
 *   recipe's format); the final answer is written inside the protocol's answer tags and extracted as the protocol does.
 *
 * Every tag and prompt string of this file comes from the protocol objects and protocol-strings.json (docs/protocol.md).
 */
import type { Passage } from "../util/types.js";
import { plusSystemPrompt, type R1SearcherPlusProtocol } from "./plus.js";
import { fillPromptTemplate } from "./r1-searcher.js";
import { SEARCH_R1_PROMPT, searchR1Question } from "./search-r1.js";
import { R1_STRINGS } from "./strings.js";
import type { PromptOptions, ResponseProtocol } from "./types.js";

/** How a chat model searches. */
export type ChatSearchMode = "protocol" | "tool";

export const CHAT_SEARCH_MODES: readonly ChatSearchMode[] = Object.freeze(["protocol", "tool"]);

/** The first messages of a chat trajectory. `system` is absent when the prompt has none (Search-R1, own template). */
export interface ChatPromptMessages {
  system?: string;
  user: string;
}

/**
 * The part of a base-model prompt (`instructions + "\n\nUser:{question}\nAssistant: <think>"`, R1-Searcher's local
 * evaluation and training prompts) before the user turn: the instructions, used as the system message.
 */
function instructionsOf(template: string): string {
  const at = template.indexOf(R1_STRINGS.REWARD_SPLIT_QWEN.user);
  if (at < 0) throw new Error("chat framing: the prompt template has no user turn");
  return template.slice(0, at);
}

/**
 * The protocol-mode prompt of a question as a system + a user message. R1-Searcher: the variant's instructions
 * (local evaluation `eval-v0`…`eval-v3` and `train-base`: the text before `User:`; `online-v*` and `train-chat`: their
 * system prompts); R1-Searcher++: its system prompt; Search-R1: its prompt as the user message. A `template` (with
 * `{question}`) becomes the user message alone.
 */
export function chatPromptMessages(
  protocol: ResponseProtocol,
  question: string,
  opts: PromptOptions = {},
): ChatPromptMessages {
  if (opts.template !== undefined) return { user: fillPromptTemplate(opts.template, { question }) };
  switch (protocol.name) {
    case "r1-searcher": {
      const variant = opts.variant ?? "eval-v0";
      const system: Record<string, string> = {
        "train-base": instructionsOf(R1_STRINGS.TRAIN_PROMPT_BASE_QWEN),
        "eval-v0": instructionsOf(R1_STRINGS.EVAL_LOCAL_v0),
        "eval-v1": instructionsOf(R1_STRINGS.EVAL_LOCAL_v1),
        "eval-v2": instructionsOf(R1_STRINGS.EVAL_LOCAL_v2),
        "eval-v3": instructionsOf(R1_STRINGS.EVAL_LOCAL_v3),
        "train-chat": R1_STRINGS.TRAIN_SYSTEM_PROMPT_CHAT_LLAMA,
        "online-v0": R1_STRINGS.EVAL_ONLINE_SYSTEM_v0,
        "online-v2": R1_STRINGS.EVAL_ONLINE_SYSTEM_v2,
        "online-v3": R1_STRINGS.EVAL_ONLINE_SYSTEM_v3,
      };
      if (!Object.hasOwn(system, variant))
        throw new Error(
          `r1-searcher: unknown prompt variant "${variant}" (expected one of ${Object.keys(system).join(", ")})`,
        );
      return { system: system[variant], user: question };
    }
    case "r1-searcher-plus": {
      if (opts.variant !== undefined && opts.variant !== "default")
        throw new Error(`r1-searcher-plus: unknown prompt variant "${opts.variant}" (expected "default")`);
      const config = (protocol as R1SearcherPlusProtocol).config;
      if (!config) throw new Error("r1-searcher-plus: the protocol object has no config");
      return { system: plusSystemPrompt(config), user: question };
    }
    case "search-r1":
      return { user: fillPromptTemplate(SEARCH_R1_PROMPT, { question: searchR1Question(question) }) };
    default:
      throw new Error(`no chat framing for protocol "${protocol.name}" (pass a template with {question})`);
  }
}

/** Stop strings of a protocol-mode chat turn: the closing query tag (retrieve) and the closing answer tag (done). */
export function chatStopStrings(protocol: ResponseProtocol): string[] {
  return [protocol.queryClose, protocol.answerClose];
}

/** The user message that carries the documents of a query in protocol mode (the protocol's document block). */
export function chatObservationMessage(protocol: ResponseProtocol, passages: Passage[]): string {
  return protocol.renderObservation(passages).trim();
}

/**
 * Which closing tag ended a chat turn whose server cut the stop string off without saying which one matched (OpenAI
 * chat completions report only `finish_reason: "stop"`): the tag opened last and not closed. `null` when none is open.
 */
export function openTagAtEnd(protocol: ResponseProtocol, text: string): "query" | "answer" | null {
  const q = text.lastIndexOf(protocol.queryOpen);
  const a = text.lastIndexOf(protocol.answerOpen);
  const qOpen = q >= 0 && text.indexOf(protocol.queryClose, q) < 0;
  const aOpen = a >= 0 && text.indexOf(protocol.answerClose, a) < 0;
  if (qOpen && (!aOpen || q > a)) return "query";
  if (aOpen) return "answer";
  return null;
}

/** Name of the search tool. */
export const SEARCH_TOOL_NAME = "search";

/** Description of the search tool (veRL's Search-R1-like recipe). */
export const SEARCH_TOOL_DESCRIPTION = "Searches the web for relevant information based on the given query.";

/** Description of the tool's `query_list` argument (veRL's Search-R1-like recipe). */
export const SEARCH_TOOL_QUERY_LIST_DESCRIPTION =
  "A list of fully-formed semantic queries. The tool will return search results for each query.";

/** JSON schema of the search tool's arguments (veRL's recipe spells `items` as `item`; the valid spelling is used). */
export const SEARCH_TOOL_PARAMETERS = Object.freeze({
  type: "object",
  properties: {
    query_list: {
      type: "array",
      items: { type: "string" },
      description: SEARCH_TOOL_QUERY_LIST_DESCRIPTION,
    },
  },
  required: ["query_list"],
}) as {
  type: "object";
  properties: { query_list: { type: "array"; items: { type: "string" }; description: string } };
  required: string[];
};

/** The search tool as an OpenAI `tools[]` entry (what veRL's tool config declares). */
export function searchToolOpenAISchema(): {
  type: "function";
  function: { name: string; description: string; parameters: typeof SEARCH_TOOL_PARAMETERS };
} {
  return {
    type: "function",
    function: { name: SEARCH_TOOL_NAME, description: SEARCH_TOOL_DESCRIPTION, parameters: SEARCH_TOOL_PARAMETERS },
  };
}

/** The system prompt of tool mode: think, call `search` when knowledge is missing, answer inside the answer tags. */
export function searchToolSystemPrompt(protocol: ResponseProtocol): string {
  const a = protocol.answerOpen;
  const z = protocol.answerClose;
  return (
    "You are a helpful assistant. Given a question, answer it by first thinking about the reasoning process and then providing the final answer.\n" +
    `When you lack some knowledge, call the ${SEARCH_TOOL_NAME} tool with fully-formed queries; it returns the top search results of a knowledge base for each query. You can search as many times as you want.\n` +
    `When no further knowledge is needed, write the final answer inside ${a} and ${z}, without detailed illustrations. For example, ${a} Beijing ${z}.`
  );
}

/**
 * Text of one query's passages in a tool result: `Doc {i} (Title: {title})\n{text}` blocks (the recipe's format).
 * `sanitize` neutralizes protocol strings in the passages (a protocol's `sanitizePassageText`; default: none).
 */
export function renderSearchToolPassages(
  passages: readonly Passage[],
  sanitize: (s: string) => string = (s) => s,
): string {
  return passages.map((p, i) => `Doc ${i + 1} (Title: ${sanitize(p.title)})\n${sanitize(p.text)}`).join("\n\n");
}

/**
 * The tool result of a `search` call: `{"result": …}` with one block of passages per query joined by `\n---\n`
 * ("No search results found." when no query found anything), as the recipe returns it.
 */
export function searchToolResult(
  perQuery: ReadonlyArray<readonly Passage[]>,
  sanitize?: (s: string) => string,
): { result: string } {
  const found = perQuery.some((ps) => ps.length > 0);
  return {
    result: found
      ? perQuery.map((ps) => renderSearchToolPassages(ps, sanitize)).join("\n---\n")
      : "No search results found.",
  };
}

/** `searchToolResult` as the JSON text of a tool message. */
export function renderSearchToolResult(
  perQuery: ReadonlyArray<readonly Passage[]>,
  sanitize?: (s: string) => string,
): string {
  return JSON.stringify(searchToolResult(perQuery, sanitize));
}

/** The tool result that reports a call the tool could not run (unknown tool, malformed arguments). */
export function renderSearchToolError(message: string): string {
  return JSON.stringify({ error: message });
}
