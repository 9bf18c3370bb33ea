// Public API of src/protocol (re-exported by src/index.ts).
import type { ResponseProtocol } from "./types.js";
import { createR1SearcherProtocol, type R1SearcherProtocol } from "./r1-searcher.js";
import { createR1SearcherPlusProtocol, type R1SearcherPlusProtocol } from "./plus.js";
import { createSearchR1Protocol, type SearchR1Protocol } from "./search-r1.js";

export * from "./strings.js";
export * from "./chat.js";
export * from "./sanitize.js";
export * from "./chat-search.js";
export {
  bgeQueryText,
  buildSummaryPrompt,
  onlineSearchQuery,
  parseSummaryOutput,
  SUMMARY_LABEL,
  summaryLooksEmpty,
  createR1SearcherProtocol,
  extractTaggedQuery,
  fillPromptTemplate,
  r1PassageRawLine,
  R1_RESERVED_STRINGS,
  R1_SEARCHER_PROMPT_VARIANTS,
  renderOnlineDocumentBlock,
  renderR1DocumentBlock,
  sanitizeQueryEval,
  sanitizeQueryTrain,
  sanitizeR1PassageText,
  stripLeadingCorpusId,
  type R1SearcherProtocol,
  type R1SearcherProtocolOptions,
} from "./r1-searcher.js";
export {
  createR1SearcherPlusProtocol,
  DEFAULT_PLUS_CONFIG,
  plusSystemPrompt,
  type PlusDocumentLayout,
  type PlusProtocolConfig,
  type R1SearcherPlusProtocol,
  type TagPair,
} from "./plus.js";
export {
  createSearchR1Protocol,
  SEARCH_R1_INVALID_ACTION,
  SEARCH_R1_PROMPT,
  SEARCH_R1_RESERVED_STRINGS,
  SEARCH_R1_TAGS,
  searchR1Action,
  searchR1Passages,
  searchR1Question,
  type SearchR1Protocol,
} from "./search-r1.js";
export { TagScanner, TagTable, type TagMark, type TagSpec } from "./scanner.js";
export { splitByEnvironmentSpans, type ResponsePiece } from "./base.js";

/** Names of the built-in protocols. */
export type ProtocolName = "r1-searcher" | "r1-searcher-plus" | "search-r1";

/** The built-in protocols with their default configuration. */
export const PROTOCOLS: Readonly<{
  "r1-searcher": R1SearcherProtocol;
  "r1-searcher-plus": R1SearcherPlusProtocol;
  "search-r1": SearchR1Protocol;
}> = Object.freeze({
  "r1-searcher": createR1SearcherProtocol(),
  "r1-searcher-plus": createR1SearcherPlusProtocol(),
  "search-r1": createSearchR1Protocol(),
});

export const PROTOCOL_NAMES: readonly ProtocolName[] = Object.freeze(Object.keys(PROTOCOLS) as ProtocolName[]);

/** A built-in protocol by name; throws with the list of names when unknown. */
export function getProtocol(name: string): ResponseProtocol {
  if (!Object.hasOwn(PROTOCOLS, name))
    throw new Error(`unknown protocol "${name}" (expected one of ${PROTOCOL_NAMES.join(", ")})`);
  return PROTOCOLS[name as ProtocolName];
}
