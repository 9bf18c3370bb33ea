/**
 * searchrl retrieval inside a user's AI SDK app: `searchTool(retriever)` is an AI SDK tool (the `search` function of
 * veRL's Search-R1-like recipe: `query_list` in, `{"result": "Doc 1 (Title: …)\n…"}` out) over any retriever (a local
 * index from `openRetriever(dir)`, a retrieval server URL, web search), and `answerWithSearch` runs
 * `generateText({ model, tools: { search } })` with the tool-mode system prompt and extracts the answer the way the
 * protocol does.
 */
import { generateText, stepCountIs, tool, type LanguageModel } from "ai";
import { z } from "zod";
import {
  SEARCH_TOOL_DESCRIPTION,
  SEARCH_TOOL_NAME,
  SEARCH_TOOL_QUERY_LIST_DESCRIPTION,
  searchToolResult,
  searchToolSystemPrompt,
} from "../protocol/chat-search.js";
import type { ResponseProtocol } from "../protocol/types.js";
import type { Retriever } from "../retrieval/types.js";
import type { Passage } from "../util/types.js";

export interface SearchToolOptions {
  /** Passages per query (default 5). */
  topK?: number;
  /** Most queries per call (default 8; extra ones are dropped). */
  maxQueriesPerCall?: number;
  /** Neutralize this protocol's tags in the returned passages (default: passages as retrieved). */
  protocol?: ResponseProtocol;
  /** Called with every query and its passages (for logging, citations, a UI). */
  onSearch?: (query: string, passages: Passage[]) => void;
}

/** The arguments of the search tool. */
export const searchToolInputSchema = z.object({
  query_list: z.array(z.string().min(1)).min(1).describe(SEARCH_TOOL_QUERY_LIST_DESCRIPTION),
});

/** An AI SDK tool that searches `retriever`: pass it as `tools: { search: searchTool(retriever) }`. */
export function searchTool(retriever: Retriever, opts: SearchToolOptions = {}) {
  const k = opts.topK ?? 5;
  const most = opts.maxQueriesPerCall ?? 8;
  const sanitize = opts.protocol ? (s: string) => opts.protocol!.sanitizePassageText(s) : undefined;
  return tool({
    description: SEARCH_TOOL_DESCRIPTION,
    inputSchema: searchToolInputSchema,
    execute: async ({ query_list }, { abortSignal }) => {
      const queries = query_list.slice(0, most);
      const results = await retriever.search(queries, k, abortSignal ? { signal: abortSignal } : {});
      queries.forEach((q, i) => opts.onSearch?.(q, results[i] ?? []));
      return searchToolResult(results, sanitize);
    },
  });
}

export interface AnswerWithSearchOptions extends SearchToolOptions {
  model: LanguageModel;
  retriever: Retriever;
  /** The protocol whose answer tags the model writes and whose rule extracts the answer. */
  protocol: ResponseProtocol;
  question: string;
  /** Most model steps (tool calls + the final answer; default 10). */
  maxSteps?: number;
  /** Sampling temperature (default 0). */
  temperature?: number;
  maxOutputTokens?: number;
  abortSignal?: AbortSignal;
}

export interface AnswerWithSearchResult {
  /** The answer inside the protocol's answer tags of the final text; null when the model wrote none. */
  answer: string | null;
  /** The final text of the model. */
  text: string;
  /** Every query the model searched for, in order, with its passages. */
  searches: Array<{ query: string; passages: Passage[] }>;
  steps: number;
  usage: { inputTokens: number | null; outputTokens: number | null };
}

/** Ask `model` a question it may answer by calling the search tool over `retriever`. */
export async function answerWithSearch(opts: AnswerWithSearchOptions): Promise<AnswerWithSearchResult> {
  const searches: AnswerWithSearchResult["searches"] = [];
  const search = searchTool(opts.retriever, {
    ...opts,
    onSearch: (query, passages) => {
      searches.push({ query, passages });
      opts.onSearch?.(query, passages);
    },
  });
  const r = await generateText({
    model: opts.model,
    system: searchToolSystemPrompt(opts.protocol),
    prompt: opts.question,
    tools: { [SEARCH_TOOL_NAME]: search },
    stopWhen: stepCountIs(opts.maxSteps ?? 10),
    temperature: opts.temperature ?? 0,
    ...(opts.maxOutputTokens !== undefined ? { maxOutputTokens: opts.maxOutputTokens } : {}),
    ...(opts.abortSignal ? { abortSignal: opts.abortSignal } : {}),
  });
  return {
    answer: opts.protocol.extractAnswer(r.text),
    text: r.text,
    searches,
    steps: r.steps.length,
    usage: { inputTokens: r.totalUsage.inputTokens ?? null, outputTokens: r.totalUsage.outputTokens ?? null },
  };
}
