/**
 * The rollout loop for chat backends (src/llm/chat): the same items, limits, retriever batching and events as the
 * token engine, with messages instead of a token sequence. Two modes (src/protocol/chat-search.ts):
 *
 * - protocol: the protocol's prompt as system + user messages; each turn stops at the closing query tag (retrieve, the
 *   document block goes back as the next user message) or the closing answer tag (done) — the evaluation rules of the
 *   token engine (`finished`, `many_retrieve`, `shot_down`, `query_inst_error`);
 * - tool: a `search` tool; each call's `query_list` is retrieved (one retrieval per query) and returned as the tool
 *   result; a turn without tool calls is the final one, its answer extracted with the protocol's rule. Unknown tools
 *   and malformed arguments are answered with an error result and recorded; three such turns in a row end the
 *   trajectory as `tool_error`.
 *
 * `responseText` renders the conversation in the protocol's format (tool calls as query tags + document blocks), so
 * parsing, metrics and the UI work unchanged; the messages themselves are in `Trajectory.chat.messages`. There are no
 * token ids: `promptTokens`, `responseTokens`, `mask` and `logprobs` stay empty.
 */
import type { ChatBackend, ChatMessage, ChatResult, ChatToolSpec } from "../llm/chat/types.js";
import {
  chatObservationMessage,
  chatPromptMessages,
  chatStopStrings,
  openTagAtEnd,
  renderSearchToolError,
  renderSearchToolResult,
  SEARCH_TOOL_DESCRIPTION,
  SEARCH_TOOL_NAME,
  SEARCH_TOOL_PARAMETERS,
  searchToolSystemPrompt,
  type ChatSearchMode,
} from "../protocol/chat-search.js";
import type { PromptOptions, ResponseProtocol } from "../protocol/types.js";
import { afterLast, beforeFirst } from "../util/pystr.js";
import { hashSeed } from "../util/rng.js";
import type { Passage } from "../util/types.js";
import { recallEvents } from "./recalls.js";
import type { RolloutEvent, Trajectory, TrajectoryFinish } from "./types.js";

/** Turns in a row whose every tool call failed before the trajectory ends as `tool_error`. */
export const MAX_TOOL_ERROR_TURNS = 3;

/** The warning every chat trajectory carries. */
export const CHAT_NO_TOKEN_IDS_WARNING = "chat backend: no token ids (text-only trajectory; not usable for training)";

export interface ChatRunContext {
  protocol: ResponseProtocol;
  backend: ChatBackend;
  mode: ChatSearchMode;
  limits: {
    maxSearches: number;
    atLimit: "final-segment" | "stop";
    segmentMaxTokens: number;
    maxTotalTokens: number;
    topK: number;
  };
  sampling: { temperature: number; topP: number; seed?: number };
  promptOptions?: PromptOptions;
  /** Retrieval through the engine's batcher, with its retries (warnings go into the list). */
  retrieve(query: string, k: number, signal: AbortSignal | undefined, warnings: string[]): Promise<Passage[]>;
  emit(e: RolloutEvent): void;
  /** Stream the turns (someone listens to the text events); otherwise each turn is one plain request. */
  stream: boolean;
}

export interface ChatRunItem {
  id: string;
  group: string;
  question: string;
  gold?: string | string[];
  /** A whole prompt (baselines): sent as the user message alone. */
  prompt?: string;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isQueryList(x: unknown): x is { query_list: string[] } {
  if (!x || typeof x !== "object" || Array.isArray(x)) return false;
  const ql = (x as Record<string, unknown>).query_list;
  return Array.isArray(ql) && ql.length > 0 && ql.every((q) => typeof q === "string");
}

function serializeMessage(m: ChatMessage): Record<string, unknown> {
  return { ...m };
}

/** Roll out one item with a chat backend. Never rejects: failures end the trajectory with `error` / `aborted`. */
export async function runChatTrajectory(
  ctx: ChatRunContext,
  item: ChatRunItem,
  signal: AbortSignal | undefined,
): Promise<Trajectory> {
  const t0 = performance.now();
  const { protocol, backend, limits: L, emit } = ctx;
  const id = item.id;
  const warnings: string[] = [CHAT_NO_TOKEN_IDS_WARNING];
  const warnOnce = (w: string): void => {
    if (!warnings.includes(w)) warnings.push(w);
  };
  const messages: ChatMessage[] = [];
  const queries: string[] = [];
  const documents: Passage[][] = [];
  const usage = {
    inputTokens: null as number | null,
    outputTokens: null as number | null,
    totalTokens: null as number | null,
  };
  let costUsd: number | null = null;
  let outputEstimate = 0;
  let responseText = "";
  let promptText = "";
  let retrievals = 0;
  let turns = 0;
  let backendMs = 0;
  let retrievalMs = 0;
  let toolErrors = 0;
  let finish: TrajectoryFinish = "eos";
  let stopReasonFinal: string | undefined;
  let answer: string | null = null;
  let error: string | undefined;
  const feed = recallEvents(protocol, emit, id);
  /** Policy text (what the model wrote, or in tool mode the rendering of its tool call). */
  const policyText = (s: string): void => {
    if (s === "") return;
    emit({ type: "text", id, delta: s });
    feed(s);
  };
  const addUsage = (r: ChatResult): void => {
    const add = (a: number | null, b: number | null) => (b === null ? a : (a ?? 0) + b);
    usage.inputTokens = add(usage.inputTokens, r.usage.inputTokens);
    usage.outputTokens = add(usage.outputTokens, r.usage.outputTokens);
    usage.totalTokens = add(usage.totalTokens, r.usage.totalTokens);
    if (r.costUsd !== null) costUsd = (costUsd ?? 0) + r.costUsd;
    // Budget: the reported output tokens, else ~4 characters a token.
    outputEstimate += r.usage.outputTokens ?? Math.ceil((r.text.length + JSON.stringify(r.toolCalls).length) / 4);
    for (const w of r.warnings) warnOnce(w);
  };
  /** One call; streamed text goes out as it comes, the rest after. */
  const turn = async (tools: ChatToolSpec[] | undefined, stop: string[]): Promise<ChatResult> => {
    const budget = L.maxTotalTokens - outputEstimate;
    let streamed = "";
    const res = await backend.chat({
      messages: messages.slice(),
      ...(tools ? { tools } : {}),
      params: {
        temperature: ctx.sampling.temperature,
        topP: ctx.sampling.topP,
        maxTokens: Math.max(1, Math.min(L.segmentMaxTokens, budget)),
        stop,
        ...(ctx.sampling.seed !== undefined ? { seed: hashSeed(ctx.sampling.seed, id, turns) } : {}),
      },
      signal,
      ...(ctx.stream
        ? {
            onText: (delta: string) => {
              if (delta === "") return;
              streamed += delta;
              policyText(delta);
            },
          }
        : {}),
    });
    turns++;
    backendMs += res.backendMs;
    addUsage(res);
    if (res.text.startsWith(streamed)) policyText(res.text.slice(streamed.length));
    else warnOnce("streamed text differs from the final turn text");
    return res;
  };
  const retrieveInto = async (q: string): Promise<Passage[]> => {
    const index = queries.length;
    queries.push(q);
    emit({ type: "query", id, index, query: q });
    const r0 = performance.now();
    const passages = await ctx.retrieve(q, L.topK, signal, warnings);
    const latencyMs = performance.now() - r0;
    retrievalMs += latencyMs;
    retrievals++;
    documents.push(passages);
    return passages;
  };
  const insert = (index: number, q: string, passages: Passage[], latencyMs = 0): void => {
    const observation = protocol.renderObservation(passages);
    responseText += observation;
    feed(observation);
    emit({ type: "documents", id, index, query: q, passages, latencyMs, observation });
  };

  try {
    if (signal?.aborted) throw signal.reason ?? new Error("aborted");
    let first: { system?: string; user: string };
    if (item.prompt !== undefined) first = { user: item.prompt };
    else if (ctx.mode === "tool")
      first = {
        system: searchToolSystemPrompt(protocol),
        user:
          ctx.promptOptions?.template !== undefined
            ? chatPromptMessages(protocol, item.question, { template: ctx.promptOptions.template }).user
            : item.question,
      };
    else first = chatPromptMessages(protocol, item.question, ctx.promptOptions);
    if (first.system !== undefined) messages.push({ role: "system", content: first.system });
    messages.push({ role: "user", content: first.user });
    promptText = first.system !== undefined ? `${first.system}\n\n${first.user}` : first.user;
    emit({ type: "start", id, question: item.question, prompt: promptText });

    let errorTurns = 0;
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error("aborted");
      if (retrievals >= L.maxSearches && L.atLimit === "stop") {
        finish = "max_searches";
        stopReasonFinal = "many_retrieve";
        break;
      }
      if (L.maxTotalTokens - outputEstimate <= 0) {
        finish = "max_total_tokens";
        stopReasonFinal = "shot_down";
        break;
      }

      if (ctx.mode === "protocol") {
        const res = await turn(undefined, chatStopStrings(protocol));
        const seg = res.text;
        let closed: "query" | "answer" | null = null;
        if (res.stopString === protocol.queryClose) closed = "query";
        else if (res.stopString === protocol.answerClose) closed = "answer";
        else if (res.finishReason === "stop") closed = openTagAtEnd(protocol, seg);
        const suffix = closed === "query" ? protocol.queryClose : closed === "answer" ? protocol.answerClose : "";
        policyText(suffix);
        responseText += seg + suffix;
        messages.push({ role: "assistant", content: seg + suffix });
        if (closed === "answer" && seg.includes(protocol.answerOpen)) {
          finish = "answer";
          stopReasonFinal = "finished";
          answer = beforeFirst(afterLast(seg, protocol.answerOpen), protocol.answerClose);
          break;
        }
        if (!(closed === "query" && seg.includes(protocol.queryOpen))) {
          finish = res.finishReason === "length" ? "length" : "eos";
          stopReasonFinal = "shot_down";
          break;
        }
        const q = protocol.extractQuery(seg, "eval");
        if (q === null) {
          finish = "empty_query";
          stopReasonFinal = "query_inst_error";
          break;
        }
        if (retrievals >= L.maxSearches) {
          finish = "max_searches";
          stopReasonFinal = "many_retrieve";
          break;
        }
        const index = queries.length;
        const r0 = performance.now();
        const passages = await retrieveInto(q);
        insert(index, q, passages, performance.now() - r0);
        messages.push({ role: "user", content: chatObservationMessage(protocol, passages) });
        continue;
      }

      // Tool mode.
      const offer = retrievals < L.maxSearches;
      const tools: ChatToolSpec[] | undefined = offer
        ? [{ name: SEARCH_TOOL_NAME, description: SEARCH_TOOL_DESCRIPTION, parameters: SEARCH_TOOL_PARAMETERS }]
        : undefined;
      const res = await turn(tools, []);
      responseText += res.text;
      messages.push({
        role: "assistant",
        content: res.text,
        ...(res.toolCalls.length > 0
          ? { toolCalls: res.toolCalls.map((c) => ({ id: c.id, name: c.name, input: c.input })) }
          : {}),
      });
      if (res.toolCalls.length === 0) {
        answer = protocol.extractAnswer(responseText);
        if (answer !== null) {
          finish = "answer";
          stopReasonFinal = "finished";
        } else {
          finish = res.finishReason === "length" ? "length" : "eos";
          stopReasonFinal = "shot_down";
        }
        break;
      }
      let failedCalls = 0;
      let lastError = "";
      for (const call of res.toolCalls) {
        let problem: string | null = null;
        let qs: string[] = [];
        if (call.name !== SEARCH_TOOL_NAME)
          problem = `unknown tool "${call.name}" (the only tool is "${SEARCH_TOOL_NAME}")`;
        else if (!offer) problem = `the search limit (${L.maxSearches}) is reached: answer now`;
        else if (call.error !== undefined) problem = `malformed arguments for ${SEARCH_TOOL_NAME}: ${call.error}`;
        else if (!isQueryList(call.input))
          problem = `malformed arguments for ${SEARCH_TOOL_NAME}: expected {"query_list": ["a query", ...]}, got ${JSON.stringify(call.input).slice(0, 200)}`;
        else {
          qs = call.input.query_list
            .map((q) => protocol.extractQuery(protocol.queryOpen + q, "eval"))
            .filter((q): q is string => q !== null && q.trim() !== "");
          if (qs.length === 0) problem = `every query of the ${SEARCH_TOOL_NAME} call is empty`;
        }
        if (problem !== null) {
          failedCalls++;
          toolErrors++;
          lastError = `tool call ${call.id}: ${problem}`;
          warnings.push(lastError);
          messages.push({
            role: "tool",
            toolCallId: call.id,
            toolName: call.name,
            content: renderSearchToolError(problem),
            isError: true,
          });
          continue;
        }
        const room = Math.max(0, L.maxSearches - retrievals);
        if (qs.length > room) {
          warnOnce(
            `a ${SEARCH_TOOL_NAME} call asked for more queries than the search limit leaves; extra queries dropped`,
          );
          qs = qs.slice(0, room);
        }
        const perQuery: Passage[][] = [];
        for (const q of qs) {
          const index = queries.length;
          // The call rendered in the protocol's format, so responseText parses as an ordinary trajectory.
          policyText(protocol.queryOpen + q + protocol.queryClose);
          responseText += protocol.queryOpen + q + protocol.queryClose;
          const r0 = performance.now();
          const passages = await retrieveInto(q);
          insert(index, q, passages, performance.now() - r0);
          perQuery.push(passages);
        }
        messages.push({
          role: "tool",
          toolCallId: call.id,
          toolName: call.name,
          content: renderSearchToolResult(perQuery, (t) => protocol.sanitizePassageText(t)),
        });
      }
      if (failedCalls === res.toolCalls.length) {
        errorTurns++;
        if (errorTurns >= MAX_TOOL_ERROR_TURNS) {
          finish = "tool_error";
          stopReasonFinal = "query_inst_error";
          error = `${MAX_TOOL_ERROR_TURNS} turns in a row with only invalid tool calls; last: ${lastError}`;
          break;
        }
      } else errorTurns = 0;
    }
  } catch (err) {
    if (signal?.aborted) {
      finish = "aborted";
      error = errMessage(signal.reason ?? err);
    } else {
      finish = "error";
      error = errMessage(err);
    }
    stopReasonFinal = stopReasonFinal ?? "error";
    emit({ type: "error", id, message: error });
  }

  feed("", true);
  if (answer !== null) emit({ type: "answer", id, text: answer });
  const trajectory: Trajectory = {
    id,
    group: item.group,
    question: item.question,
    ...(item.gold !== undefined ? { gold: item.gold } : {}),
    protocol: protocol.name,
    promptText,
    promptTokens: [],
    responseText,
    responseTokens: [],
    mask: [],
    logprobs: [],
    retrievals,
    queries,
    documents,
    answer,
    finish,
    ...(stopReasonFinal !== undefined ? { stopReasonFinal } : {}),
    ...(error !== undefined ? { error } : {}),
    turns,
    timings: { totalMs: performance.now() - t0, backendMs, retrievalMs },
    warnings,
    chat: {
      mode: ctx.mode,
      model: backend.name,
      messages: messages.map(serializeMessage),
      usage,
      costUsd,
      toolErrors,
    },
  };
  emit({ type: "done", id, trajectory });
  return trajectory;
}
