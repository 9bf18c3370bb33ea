/**
 * The R1-Searcher response format (r1-searcher.md §1): `<|begin_of_query|> q <|end_of_query|>`, documents inserted as
 * `<|begin_of_documents|>\n(1)doc\n...<|end_of_documents|>\n\n`, final `<answer>…</answer>`, reasoning after the prompt's
 * `<think>`. Every string comes from protocol-strings.json.
 */
import { afterLast, beforeFirst, PY_WS_CLASS, pyStrip, pyWords } from "../util/pystr.js";
import type { Passage } from "../util/types.js";
import type { ParsedResponse, PromptOptions, ResponseProtocol, RolloutMode } from "./types.js";
import { Grammar } from "./base.js";
import { CHAT_CONTROL_STRINGS, renderChat } from "./chat.js";
import { neutralizeReserved } from "./sanitize.js";
import { R1_STRINGS, R1_TAGS } from "./strings.js";

/** Fill `{name}` placeholders in one pass (inserted values are never re-scanned; `$` has no special meaning). */
export function fillPromptTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string) =>
    Object.hasOwn(values, name) ? values[name] : m,
  );
}

/** The raw corpus line of a passage (what the upstream `/queries` server returns); rebuilt when absent. */
export function r1PassageRawLine(p: Passage): string {
  return p.raw ?? `${p.id}\t${p.title}   ${p.text}`;
}

const LEADING_ID = new RegExp(`^\\p{Nd}+${PY_WS_CLASS}+`, "u");

/** Remove one leading `^\d+\s+` (Python Unicode `\d`/`\s`): the numeric corpus id and the TAB after it. */
export function stripLeadingCorpusId(line: string): string {
  return line.replace(LEADING_ID, "");
}

/** Query sanitization of the training rollout: delete `"`, strip, collapse whitespace (§1.6). */
export function sanitizeQueryTrain(q: string): string {
  return pyWords(pyStrip(q.replaceAll('"', ""))).join(" ");
}

/** Query sanitization of evaluation: delete `"`, delete `'`, TAB → space, delete `...`; no strip (§1.6). */
export function sanitizeQueryEval(q: string): string {
  return q.replaceAll('"', "").replaceAll("'", "").replaceAll("\t", " ").replaceAll("...", "");
}

/**
 * Upstream query extraction for a generation segment that stopped on the closing tag (stop string not included):
 * `before_first(after_last(gen, open), close)`, then the mode's sanitization; `null` without an opening tag or when the
 * result is the empty string.
 */
export function extractTaggedQuery(segment: string, open: string, close: string, mode: RolloutMode): string | null {
  if (!segment.includes(open)) return null;
  const inner = beforeFirst(afterLast(segment, open), close);
  const q = mode === "train" ? sanitizeQueryTrain(inner) : sanitizeQueryEval(inner);
  return q.length === 0 ? null : q;
}

/** Reserved strings of R1-Searcher (neutralized in retrieved text): its tags, the chat control strings, the idx separator. */
export const R1_RESERVED_STRINGS: readonly string[] = Object.freeze([
  ...Object.values(R1_TAGS),
  ...CHAT_CONTROL_STRINGS,
  R1_STRINGS.IDX_PROMPT_SEPARATOR,
]);

/** Make retrieved text safe to insert into an R1-Searcher trajectory (see docs/protocol.md). */
export function sanitizeR1PassageText(text: string): string {
  return neutralizeReserved(text, R1_RESERVED_STRINGS);
}

/**
 * The local/training document block (§1.5): `"<|end_of_query|>\n\n<|begin_of_documents|>\n"` + `"(j)" + doc + "\n"` per
 * passage (1-based; `^\d+\s+` removed from each raw line) or `"None"` when empty + `"<|end_of_documents|>\n\n"`.
 */
export function renderR1DocumentBlock(passages: Passage[]): string {
  let content: string;
  if (passages.length === 0) content = R1_STRINGS.DOC_EMPTY_LOCAL_AND_TRAIN;
  else {
    content = "";
    for (let j = 0; j < passages.length; j++) {
      const doc = sanitizeR1PassageText(stripLeadingCorpusId(r1PassageRawLine(passages[j])));
      content += fillPromptTemplate(R1_STRINGS.DOC_ITEM_LOCAL_AND_TRAIN, {
        j: String(j + 1),
        doc_without_leading_idx: doc,
      });
    }
  }
  return fillPromptTemplate(R1_STRINGS.DOC_BLOCK_LOCAL_AND_TRAIN, { doc_content: content });
}

/** The online-evaluation block with one summary: `"<|end_of_query|>\n\n<|begin_of_documents|>\n" + summary + "\n<|end_of_documents|>\n\n"`. */
export function renderOnlineDocumentBlock(summary: string): string {
  return fillPromptTemplate(R1_STRINGS.DOC_BLOCK_ONLINE, { summary: sanitizeR1PassageText(summary) });
}

export const R1_SEARCHER_PROMPT_VARIANTS = [
  "train-base",
  "train-chat",
  "eval-v0",
  "eval-v1",
  "eval-v2",
  "eval-v3",
  "online-v0",
  "online-v2",
  "online-v3",
] as const;

export interface R1SearcherProtocolOptions {
  /** "local" (numbered raw lines, training and local evaluation) or "online" (one summary, the passages' texts joined by "\n"). */
  documentStyle?: "local" | "online";
  /** Variant used when `buildPrompt` gets none (default "train-base"). */
  defaultVariant?: (typeof R1_SEARCHER_PROMPT_VARIANTS)[number];
}

/** Substitute the question into a template as Python `.format(question=...)` does for these templates. */
function withQuestion(template: string, question: string): string {
  return fillPromptTemplate(template, { question });
}

/** The R1-Searcher protocol object (extra members beyond `ResponseProtocol` are R1-Searcher specifics). */
export interface R1SearcherProtocol extends ResponseProtocol {
  readonly documentsOpen: string;
  readonly documentsClose: string;
  readonly reservedStrings: readonly string[];
  renderOnlineDocumentBlock(summary: string): string;
  /** Segments only (cheaper than `parse`). */
  segments(response: string): ParsedResponse["segments"];
}

export function createR1SearcherProtocol(opts: R1SearcherProtocolOptions = {}): R1SearcherProtocol {
  const style = opts.documentStyle ?? "local";
  const defaultVariant = opts.defaultVariant ?? "train-base";
  const grammar = new Grammar({
    spec: {
      query: [R1_TAGS.beginQuery, R1_TAGS.endQuery],
      documents: [R1_TAGS.beginDocs, R1_TAGS.endDocs],
      answer: [R1_TAGS.answerOpen, R1_TAGS.answerClose],
      think: [R1_TAGS.thinkOpen, R1_TAGS.thinkClose],
    },
    documentsSuffix: "\n\n",
    thinkPolicy: "prompt-opened",
    sanitizeQuery: sanitizeQueryTrain,
  });
  const renderBlock = (passages: Passage[]): string =>
    style === "online"
      ? renderOnlineDocumentBlock(
          passages.length === 0 ? R1_STRINGS.DOC_EMPTY_LOCAL_AND_TRAIN : passages.map((p) => p.text).join("\n"),
        )
      : renderR1DocumentBlock(passages);

  const proto: R1SearcherProtocol = {
    name: "r1-searcher",
    queryOpen: R1_TAGS.beginQuery,
    queryClose: R1_TAGS.endQuery,
    answerOpen: R1_TAGS.answerOpen,
    answerClose: R1_TAGS.answerClose,
    documentsOpen: R1_TAGS.beginDocs,
    documentsClose: R1_TAGS.endDocs,
    reservedStrings: R1_RESERVED_STRINGS,
    promptVariants: R1_SEARCHER_PROMPT_VARIANTS,

    buildPrompt(question: string, o: PromptOptions = {}): string {
      if (o.template !== undefined) return withQuestion(o.template, question);
      const variant = o.variant ?? defaultVariant;
      switch (variant) {
        case "train-base":
          return withQuestion(R1_STRINGS.TRAIN_PROMPT_BASE_QWEN, question);
        case "train-chat":
          return (
            renderChat(
              [
                { role: "system", content: R1_STRINGS.TRAIN_SYSTEM_PROMPT_CHAT_LLAMA },
                { role: "user", content: question },
              ],
              o.chatTemplate ?? "llama3.1",
            ) + R1_TAGS.thinkOpen
          );
        case "eval-v0":
          return withQuestion(R1_STRINGS.EVAL_LOCAL_v0, question);
        case "eval-v1":
          return withQuestion(R1_STRINGS.EVAL_LOCAL_v1, question);
        case "eval-v2":
          return withQuestion(R1_STRINGS.EVAL_LOCAL_v2, question);
        case "eval-v3":
          return withQuestion(R1_STRINGS.EVAL_LOCAL_v3, question);
        case "online-v0":
        case "online-v2":
        case "online-v3": {
          const system =
            variant === "online-v0"
              ? R1_STRINGS.EVAL_ONLINE_SYSTEM_v0
              : variant === "online-v2"
                ? R1_STRINGS.EVAL_ONLINE_SYSTEM_v2
                : R1_STRINGS.EVAL_ONLINE_SYSTEM_v3;
          return (
            renderChat(
              [
                { role: "system", content: system },
                { role: "user", content: question },
              ],
              o.chatTemplate ?? "qwen2.5",
            ) + R1_TAGS.thinkOpen
          );
        }
        default:
          throw new Error(
            `r1-searcher: unknown prompt variant "${variant}" (expected one of ${R1_SEARCHER_PROMPT_VARIANTS.join(", ")})`,
          );
      }
    },

    stopStrings(mode: RolloutMode): string[] {
      return [...(mode === "train" ? R1_STRINGS.STOP_STRINGS_TRAIN : R1_STRINGS.STOP_STRINGS_EVAL)];
    },

    extractQuery(segment: string, mode: RolloutMode): string | null {
      return extractTaggedQuery(segment, R1_TAGS.beginQuery, R1_TAGS.endQuery, mode);
    },

    renderDocumentBlock: renderBlock,

    renderObservation(passages: Passage[]): string {
      const block = renderBlock(passages);
      return block.slice(R1_TAGS.endQuery.length);
    },

    sanitizePassageText: sanitizeR1PassageText,
    renderOnlineDocumentBlock,
    parse: (response) => grammar.parse(response),
    segments: (response) => grammar.segments(response),
    createParser: () => grammar.createParser(),
    countRetrievals: (response) => grammar.parse(response).retrievals,
    extractAnswer: (response) => grammar.parse(response).answer,
  };
  return proto;
}

/**
 * The online summarization prompt (§2.4): `EVAL_ONLINE_SUMMARY_PROMPT` with `{search_query}` then `{document}` replaced
 * by plain (all-occurrence) string replacement, in that order, as upstream does.
 */
export function buildSummaryPrompt(searchQuery: string, document: string): string {
  return R1_STRINGS.EVAL_ONLINE_SUMMARY_PROMPT.replaceAll("{search_query}", () => searchQuery).replaceAll(
    "{document}",
    () => document,
  );
}

/** The label the summary model is asked to write (spelled as upstream). */
export const SUMMARY_LABEL = "[Exacted Content]";

/**
 * Parse a summarizer reply as upstream (§2.4): text after the last "[Exacted Content]", leading ":" characters removed,
 * then Python-stripped.
 */
export function parseSummaryOutput(output: string): string {
  return pyStrip(afterLast(output, SUMMARY_LABEL).replace(/^:+/, ""));
}

/** Upstream's rejection test for a summary: its lower-cased text contains "none" (a substring test, kept as is). */
export function summaryLooksEmpty(summary: string): boolean {
  return summary.toLowerCase().includes("none");
}

/** BGE query text: the instruction and the query concatenated without a space (§2.2). */
export function bgeQueryText(query: string): string {
  return R1_STRINGS.BGE_QUERY_INSTRUCTION + query;
}

/** The online search query: the sanitized query plus " site:en.wikipedia.org" (§2.4). */
export function onlineSearchQuery(query: string): string {
  return query + R1_STRINGS.ONLINE_SITE_SUFFIX;
}
