/**
 * The contract of a response format ("protocol"): the only place that knows tags and prompt templates.
 * Implementations: `r1-searcher`, `r1-searcher-plus`, `search-r1`.
 */
import type { Passage } from "../util/types.js";

export type SegmentKind = "reasoning" | "query" | "documents" | "internal" | "answer";

/** A piece of a response. `start`/`end` are UTF-16 offsets into the response text, tags included. */
export interface Segment {
  kind: SegmentKind;
  /** Inner text (tags removed). */
  text: string;
  start: number;
  end: number;
  /** False when the closing tag never came (e.g. a query cut off by EOS). */
  closed: boolean;
}

export interface ParsedResponse {
  segments: Segment[];
  /** Queries the model issued (sanitized as in training), in order. */
  queries: string[];
  /** Number of retrieval calls (completed query + document block pairs). */
  retrievals: number;
  /** The final answer by the protocol's rule, `null` when absent. */
  answer: string | null;
  /** Character spans written by the environment (document blocks) - the spans masked from the loss. */
  environmentSpans: Array<[number, number]>;
  /** Human-readable format problems (empty when well-formed). */
  formatErrors: string[];
}

/** Streaming parse events, emitted in text order as a response is fed in chunks. */
export type SegmentEvent =
  | { type: "open"; kind: SegmentKind }
  | { type: "delta"; kind: SegmentKind; text: string }
  | { type: "close"; kind: SegmentKind; text: string };

export interface IncrementalParser {
  /** Feed the next chunk of response text; returns the events it completes (tags split across chunks are held back). */
  push(chunk: string): SegmentEvent[];
  /** End of input: flush held-back text and close an open segment. */
  finish(): SegmentEvent[];
}

export type ChatTemplateName = "none" | "qwen2.5" | "llama3.1";

export interface PromptOptions {
  /** Prompt variant of the protocol, e.g. "train-base", "train-chat", "eval-v0" ... "eval-v3", "online-v0". */
  variant?: string;
  /** Chat template used to render system + user messages (variants that use one). */
  chatTemplate?: ChatTemplateName;
  /** Replace the whole template; `{question}` is substituted. */
  template?: string;
}

export type RolloutMode = "train" | "eval";

export interface ResponseProtocol {
  readonly name: string;
  /** Opening / closing query tags; the closing one is the stop string that triggers retrieval. */
  readonly queryOpen: string;
  readonly queryClose: string;
  readonly answerOpen: string;
  readonly answerClose: string;
  /** Names of the prompt variants `buildPrompt` accepts. */
  readonly promptVariants: readonly string[];

  buildPrompt(question: string, opts?: PromptOptions): string;
  /** Stop strings for generation in this mode (training stops only on the query-closing tag upstream). */
  stopStrings(mode: RolloutMode): string[];
  /**
   * The query of a generation segment that stopped on `queryClose` (the stop string itself not included), sanitized
   * as upstream does in this mode; `null` when the segment has no query-opening tag or the query is empty.
   */
  extractQuery(segment: string, mode: RolloutMode): string | null;
  /** The exact block upstream appends after a query segment, closing query tag included. */
  renderDocumentBlock(passages: Passage[]): string;
  /**
   * What the environment inserts after a sampled closing query tag (= `renderDocumentBlock` minus its leading
   * `queryClose`), so token-in/token-out rollouts keep the sampled tag tokens.
   */
  renderObservation(passages: Passage[]): string;
  /** Neutralize protocol strings inside retrieved text so a passage cannot forge tags (see docs/protocol.md). */
  sanitizePassageText(text: string): string;
  parse(response: string): ParsedResponse;
  createParser(): IncrementalParser;
  countRetrievals(response: string): number;
  extractAnswer(response: string): string | null;
}
