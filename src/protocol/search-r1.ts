/**
 * The Search-R1 response format (ecosystem-contracts.md §1.4): `<search>q</search>`, results inserted as
 * `"\n\n<information>" + trim(lines) + "</information>\n\n"` with one `Doc {i}(Title: {title}) {text}\n` line per hit,
 * `<answer>…</answer>`, free `<think>` blocks (the prompt does not open one).
 */
import { pyStrip } from "../util/pystr.js";
import type { Passage } from "../util/types.js";
import type { ParsedResponse, PromptOptions, ResponseProtocol, RolloutMode } from "./types.js";
import { Grammar } from "./base.js";
import { CHAT_CONTROL_STRINGS, renderChat } from "./chat.js";
import { fillPromptTemplate } from "./r1-searcher.js";
import { neutralizeReserved } from "./sanitize.js";

export const SEARCH_R1_TAGS = Object.freeze({
  searchOpen: "<search>",
  searchClose: "</search>",
  informationOpen: "<information>",
  informationClose: "</information>",
  answerOpen: "<answer>",
  answerClose: "</answer>",
  thinkOpen: "<think>",
  thinkClose: "</think>",
});

/** Search-R1's `base` prompt template (`scripts/data_process/nq_search.py`). */
export const SEARCH_R1_PROMPT =
  "Answer the given question. You must conduct reasoning inside <think> and </think> first every time you get new information. After reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> and it will return the top searched results between <information> and </information>. You can search as many times as your want. If you find no further external knowledge needed, you can directly provide the answer inside <answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>. Question: {question}\n";

/** The observation Search-R1 appends when a turn has no valid action. */
export const SEARCH_R1_INVALID_ACTION =
  "\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n";

export const SEARCH_R1_RESERVED_STRINGS: readonly string[] = Object.freeze([
  ...Object.values(SEARCH_R1_TAGS),
  ...CHAT_CONTROL_STRINGS,
]);

/** Question preparation of Search-R1: Python-strip, then append "?" unless it already ends with one. */
export function searchR1Question(question: string): string {
  const q = pyStrip(question);
  return q.endsWith("?") ? q : q + "?";
}

/** The retrieval lines `Doc {i}(Title: {title}) {text}\n`, concatenated (titles and texts sanitized). */
export function searchR1Passages(passages: Passage[]): string {
  let out = "";
  for (let i = 0; i < passages.length; i++) {
    const p = passages[i];
    const title = neutralizeReserved(p.title, SEARCH_R1_RESERVED_STRINGS);
    const text = neutralizeReserved(p.text, SEARCH_R1_RESERVED_STRINGS);
    out += `Doc ${i + 1}(Title: ${title}) ${text}\n`;
  }
  return out;
}

const ACTION_RE = /<(search|answer)>([\s\S]*?)<\/\1>/;

/**
 * Search-R1's action rule: the first `<search>…</search>` or `<answer>…</answer>` pair (shortest match), content
 * stripped. Returns `null` when there is no valid action.
 */
export function searchR1Action(text: string): { action: "search" | "answer"; content: string } | null {
  const m = ACTION_RE.exec(text);
  if (!m) return null;
  return { action: m[1] as "search" | "answer", content: pyStrip(m[2]) };
}

export interface SearchR1Protocol extends ResponseProtocol {
  readonly documentsOpen: string;
  readonly documentsClose: string;
  readonly reservedStrings: readonly string[];
  /** The invalid-action observation. */
  readonly invalidActionMessage: string;
  segments(response: string): ParsedResponse["segments"];
}

export function createSearchR1Protocol(): SearchR1Protocol {
  const T = SEARCH_R1_TAGS;
  const grammar = new Grammar({
    spec: {
      query: [T.searchOpen, T.searchClose],
      documents: [T.informationOpen, T.informationClose],
      answer: [T.answerOpen, T.answerClose],
      think: [T.thinkOpen, T.thinkClose],
    },
    documentsSuffix: "\n\n",
    thinkPolicy: "free",
    sanitizeQuery: pyStrip,
  });
  const observation = (passages: Passage[]) =>
    `\n\n${T.informationOpen}${pyStrip(searchR1Passages(passages))}${T.informationClose}\n\n`;
  return {
    name: "search-r1",
    queryOpen: T.searchOpen,
    queryClose: T.searchClose,
    answerOpen: T.answerOpen,
    answerClose: T.answerClose,
    documentsOpen: T.informationOpen,
    documentsClose: T.informationClose,
    reservedStrings: SEARCH_R1_RESERVED_STRINGS,
    invalidActionMessage: SEARCH_R1_INVALID_ACTION,
    promptVariants: ["base", "chat"],
    buildPrompt(question: string, o: PromptOptions = {}): string {
      const q = searchR1Question(question);
      if (o.template !== undefined) return fillPromptTemplate(o.template, { question: q });
      const variant = o.variant ?? "base";
      const user = fillPromptTemplate(SEARCH_R1_PROMPT, { question: q });
      if (variant === "base") return user;
      if (variant === "chat") return renderChat([{ role: "user", content: user }], o.chatTemplate ?? "qwen2.5");
      throw new Error(`search-r1: unknown prompt variant "${variant}" (expected base or chat)`);
    },
    stopStrings: (_mode: RolloutMode) => [T.searchClose, T.answerClose],
    extractQuery(segment: string, _mode: RolloutMode): string | null {
      const a = searchR1Action(segment.endsWith(T.searchClose) ? segment : segment + T.searchClose);
      if (!a || a.action !== "search" || a.content.length === 0) return null;
      return a.content;
    },
    renderDocumentBlock: (passages: Passage[]) => T.searchClose + observation(passages),
    renderObservation: observation,
    sanitizePassageText: (text: string) => neutralizeReserved(text, SEARCH_R1_RESERVED_STRINGS),
    parse: (response) => grammar.parse(response),
    segments: (response) => grammar.segments(response),
    createParser: () => grammar.createParser(),
    countRetrievals: (response) => grammar.parse(response).retrievals,
    extractAnswer(response: string): string | null {
      const a = grammar.parse(response).answer;
      return a === null ? null : pyStrip(a);
    },
  };
}
