/**
 * The R1-Searcher++ response format (r1-searcher-plus.md §1): `<internal>` for recalled facts, `<external>` queries,
 * `<document>` results written by the environment, `<answer>` for the final answer. No code was released, so every
 * choice marked [R] in the reference is a field of `PlusProtocolConfig` (defaults in `DEFAULT_PLUS_CONFIG`,
 * rationale in docs/protocol.md).
 */
import type { Passage } from "../util/types.js";
import type { ChatTemplateName, ParsedResponse, PromptOptions, ResponseProtocol, RolloutMode } from "./types.js";
import { Grammar } from "./base.js";
import { CHAT_CONTROL_STRINGS, renderChat } from "./chat.js";
import {
  extractTaggedQuery,
  fillPromptTemplate,
  r1PassageRawLine,
  sanitizeQueryTrain,
  stripLeadingCorpusId,
} from "./r1-searcher.js";
import { neutralizeReserved } from "./sanitize.js";
import { R1_STRINGS, R1_TAGS } from "./strings.js";

export type TagPair = readonly [open: string, close: string];

export interface PlusDocumentLayout {
  /** Text between the closing query tag and the opening document tag (R1-Searcher: "\n\n"). */
  afterQueryClose: string;
  /** Text right after the opening document tag (R1-Searcher: "\n"). */
  afterOpen: string;
  /** One passage; `{j}` = 1-based index, `{doc}` = the raw line without its leading id (R1-Searcher: "({j}){doc}\n"). */
  item: string;
  /** Content when no passage came back (R1-Searcher: "None"). */
  empty: string;
  /** Text after the closing document tag, written by the environment (R1-Searcher: "\n\n"). */
  afterClose: string;
}

export interface PlusProtocolConfig {
  /** [R] D2: tag spellings (the figures abbreviate them as <in>/<ex>/<doc>). */
  internal: TagPair;
  external: TagPair;
  document: TagPair;
  /** [R] D2: answer tag (the paper's case study shows a "Final Answer:" line; R1-Searcher's tag is kept). */
  answer: TagPair;
  think: TagPair;
  /**
   * [R] D2: system prompt. Default: R1-Searcher's EVAL_ONLINE_SYSTEM_v0 with the tags swapped, plus `internalInstruction`
   * appended as a new line. `{internalOpen}`-style placeholders are filled with the configured tags.
   */
  systemPrompt?: string;
  /** [R] The instruction to use internal knowledge (appended to the derived system prompt). */
  internalInstruction: string;
  /** Chat template for the prompt (backbone Qwen-2.5-7B-Instruct → "qwen2.5"). */
  chatTemplate: ChatTemplateName;
  /** [R] Document block layout (R1-Searcher's, with the tags swapped). */
  documentLayout: PlusDocumentLayout;
}

export const DEFAULT_PLUS_CONFIG: Readonly<PlusProtocolConfig> = Object.freeze({
  internal: ["<internal>", "</internal>"] as const,
  external: ["<external>", "</external>"] as const,
  document: ["<document>", "</document>"] as const,
  answer: [R1_TAGS.answerOpen, R1_TAGS.answerClose] as const,
  think: [R1_TAGS.thinkOpen, R1_TAGS.thinkClose] as const,
  internalInstruction:
    'When you are confident about a fact, recall it from your own knowledge with the format of "{internalOpen} recalled knowledge here {internalClose}" instead of searching; **search only for knowledge you are unsure of**. Never write {documentOpen} blocks yourself: only the search system writes them.',
  chatTemplate: "qwen2.5" as ChatTemplateName,
  documentLayout: Object.freeze({
    afterQueryClose: "\n\n",
    afterOpen: "\n",
    item: "({j}){doc}\n",
    empty: "None",
    afterClose: "\n\n",
  }),
});

function tagValues(c: PlusProtocolConfig): Record<string, string> {
  return {
    internalOpen: c.internal[0],
    internalClose: c.internal[1],
    externalOpen: c.external[0],
    externalClose: c.external[1],
    documentOpen: c.document[0],
    documentClose: c.document[1],
    answerOpen: c.answer[0],
    answerClose: c.answer[1],
  };
}

/** Swap R1-Searcher's tags for the configured ones in a text (query, documents, answer, think). */
function swapTags(text: string, c: PlusProtocolConfig): string {
  const pairs: Array<[string, string]> = [
    [R1_TAGS.beginQuery, c.external[0]],
    [R1_TAGS.endQuery, c.external[1]],
    [R1_TAGS.beginDocs, c.document[0]],
    [R1_TAGS.endDocs, c.document[1]],
    [R1_TAGS.answerOpen, c.answer[0]],
    [R1_TAGS.answerClose, c.answer[1]],
    [R1_TAGS.thinkOpen, c.think[0]],
    [R1_TAGS.thinkClose, c.think[1]],
  ];
  let out = "";
  let i = 0;
  outer: while (i < text.length) {
    for (const [from, to] of pairs) {
      if (text.startsWith(from, i)) {
        out += to;
        i += from.length;
        continue outer;
      }
    }
    out += text[i];
    i++;
  }
  return out;
}

/** The system prompt of a configuration (explicit `systemPrompt`, or the derived default). */
export function plusSystemPrompt(c: PlusProtocolConfig): string {
  if (c.systemPrompt !== undefined) return fillPromptTemplate(c.systemPrompt, tagValues(c));
  return swapTags(R1_STRINGS.EVAL_ONLINE_SYSTEM_v0, c) + "\n" + fillPromptTemplate(c.internalInstruction, tagValues(c));
}

export interface R1SearcherPlusProtocol extends ResponseProtocol {
  readonly config: Readonly<PlusProtocolConfig>;
  readonly internalOpen: string;
  readonly internalClose: string;
  readonly documentsOpen: string;
  readonly documentsClose: string;
  readonly reservedStrings: readonly string[];
  segments(response: string): ParsedResponse["segments"];
}

export function createR1SearcherPlusProtocol(overrides: Partial<PlusProtocolConfig> = {}): R1SearcherPlusProtocol {
  const c: PlusProtocolConfig = {
    ...DEFAULT_PLUS_CONFIG,
    ...overrides,
    documentLayout: { ...DEFAULT_PLUS_CONFIG.documentLayout, ...(overrides.documentLayout ?? {}) },
  };
  const reserved = Object.freeze([
    ...new Set([
      ...c.internal,
      ...c.external,
      ...c.document,
      ...c.answer,
      ...c.think,
      ...CHAT_CONTROL_STRINGS,
      R1_STRINGS.IDX_PROMPT_SEPARATOR,
    ]),
  ]);
  const sanitize = (text: string) => neutralizeReserved(text, reserved);
  neutralizeReserved("<", reserved); // validates the reserved strings eagerly
  const grammar = new Grammar({
    spec: { query: c.external, documents: c.document, answer: c.answer, internal: c.internal, think: c.think },
    documentsSuffix: c.documentLayout.afterClose,
    thinkPolicy: "prompt-opened",
    sanitizeQuery: sanitizeQueryTrain,
  });
  const L = c.documentLayout;
  const renderBlock = (passages: Passage[]): string => {
    let content: string;
    if (passages.length === 0) content = L.empty;
    else {
      content = "";
      for (let j = 0; j < passages.length; j++) {
        content += fillPromptTemplate(L.item, {
          j: String(j + 1),
          doc: sanitize(stripLeadingCorpusId(r1PassageRawLine(passages[j]))),
        });
      }
    }
    return c.external[1] + L.afterQueryClose + c.document[0] + L.afterOpen + content + c.document[1] + L.afterClose;
  };
  const evalStops = R1_STRINGS.STOP_STRINGS_EVAL.map((s) =>
    s === R1_TAGS.endQuery ? c.external[1] : s === R1_TAGS.answerClose ? c.answer[1] : s,
  );

  return {
    name: "r1-searcher-plus",
    config: c,
    queryOpen: c.external[0],
    queryClose: c.external[1],
    answerOpen: c.answer[0],
    answerClose: c.answer[1],
    internalOpen: c.internal[0],
    internalClose: c.internal[1],
    documentsOpen: c.document[0],
    documentsClose: c.document[1],
    reservedStrings: reserved,
    promptVariants: ["default"],
    buildPrompt(question: string, o: PromptOptions = {}): string {
      if (o.template !== undefined) return fillPromptTemplate(o.template, { question });
      if (o.variant !== undefined && o.variant !== "default") {
        throw new Error(`r1-searcher-plus: unknown prompt variant "${o.variant}" (expected "default")`);
      }
      return (
        renderChat(
          [
            { role: "system", content: plusSystemPrompt(c) },
            { role: "user", content: question },
          ],
          o.chatTemplate ?? c.chatTemplate,
        ) + c.think[0]
      );
    },
    stopStrings: (mode: RolloutMode) => (mode === "train" ? [c.external[1]] : [...evalStops]),
    extractQuery: (segment: string, mode: RolloutMode) =>
      extractTaggedQuery(segment, c.external[0], c.external[1], mode),
    renderDocumentBlock: renderBlock,
    renderObservation: (passages: Passage[]) => renderBlock(passages).slice(c.external[1].length),
    sanitizePassageText: sanitize,
    parse: (response) => grammar.parse(response),
    segments: (response) => grammar.segments(response),
    createParser: () => grammar.createParser(),
    countRetrievals: (response) => grammar.parse(response).retrievals,
    extractAnswer: (response) => grammar.parse(response).answer,
  };
}
