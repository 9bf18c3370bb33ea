/**
 * Every R1-Searcher protocol string, loaded from `protocol-strings.json` (a verbatim copy of the reference file).
 * Keys of that file start with an identifier, sometimes followed by a space and a usage note; `protocolString(id)`
 * looks a value up by the identifier alone. No prompt, tag or template is typed anywhere else in the code base.
 */
import raw from "./protocol-strings.json" with { type: "json" };

/** The JSON file exactly as shipped (keys include their usage notes). */
export const PROTOCOL_STRINGS_FILE: Readonly<Record<string, unknown>> = raw as Record<string, unknown>;

const byId = new Map<string, unknown>();
for (const [key, value] of Object.entries(PROTOCOL_STRINGS_FILE)) {
  const id = key.split(" ")[0];
  if (byId.has(id)) throw new Error(`protocol-strings.json: duplicate identifier ${id}`);
  byId.set(id, value);
}

/** Identifiers available in protocol-strings.json (the part of each key before the first space). */
export function protocolStringIds(): string[] {
  return [...byId.keys()];
}

/** A value of protocol-strings.json by identifier (e.g. `"TRAIN_PROMPT_BASE_QWEN"`); throws on an unknown id. */
export function protocolValue(id: string): unknown {
  if (!byId.has(id)) throw new Error(`unknown protocol string id: ${id}`);
  return byId.get(id);
}

/** A string value of protocol-strings.json by identifier. */
export function protocolString(id: string): string {
  const v = protocolValue(id);
  if (typeof v !== "string") throw new Error(`protocol string ${id} is not a string`);
  return v;
}

function stringList(id: string): readonly string[] {
  const v = protocolValue(id);
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new Error(`protocol string ${id} is not a string list`);
  return Object.freeze([...v]);
}

function stringRecord(id: string): Readonly<Record<string, string>> {
  const v = protocolValue(id);
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new Error(`protocol string ${id} is not an object`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== "string") throw new Error(`protocol string ${id}.${k} is not a string`);
  return Object.freeze({ ...(v as Record<string, string>) });
}

/** Tags of R1-Searcher (`TOKENS`). */
export const R1_TAGS = (() => {
  const t = stringRecord("TOKENS");
  return Object.freeze({
    beginQuery: t.BEGIN_QUERY,
    endQuery: t.END_QUERY,
    beginDocs: t.BEGIN_DOCS,
    endDocs: t.END_DOCS,
    thinkOpen: t.THINK_OPEN,
    thinkClose: t.THINK_CLOSE,
    answerOpen: t.ANSWER_OPEN,
    answerClose: t.ANSWER_CLOSE,
  });
})();

/** Named R1-Searcher strings, all read from the JSON file. */
export const R1_STRINGS = Object.freeze({
  TRAIN_PROMPT_BASE_QWEN: protocolString("TRAIN_PROMPT_BASE_QWEN"),
  TRAIN_SYSTEM_PROMPT_CHAT_LLAMA: protocolString("TRAIN_SYSTEM_PROMPT_CHAT_LLAMA"),
  TRAIN_PROMPT_CHAT_LLAMA_RENDERED: protocolString("TRAIN_PROMPT_CHAT_LLAMA_RENDERED"),
  IDX_PROMPT_SEPARATOR: protocolString("IDX_PROMPT_SEPARATOR"),
  EVAL_LOCAL_v0: protocolString("EVAL_LOCAL_v0"),
  EVAL_LOCAL_v1: protocolString("EVAL_LOCAL_v1"),
  EVAL_LOCAL_v2: protocolString("EVAL_LOCAL_v2"),
  EVAL_LOCAL_v3: protocolString("EVAL_LOCAL_v3"),
  EVAL_ONLINE_SYSTEM_v0: protocolString("EVAL_ONLINE_SYSTEM_v0"),
  EVAL_ONLINE_SYSTEM_v2: protocolString("EVAL_ONLINE_SYSTEM_v2"),
  EVAL_ONLINE_SYSTEM_v3: protocolString("EVAL_ONLINE_SYSTEM_v3"),
  EVAL_ONLINE_SUMMARY_PROMPT: protocolString("EVAL_ONLINE_SUMMARY_PROMPT"),
  LLM_JUDGE_PROMPT: protocolString("LLM_JUDGE_PROMPT"),
  QWEN25_CHAT_RENDER_EXAMPLE: protocolString("QWEN25_CHAT_RENDER_EXAMPLE"),
  DOC_BLOCK_LOCAL_AND_TRAIN: protocolString("DOC_BLOCK_LOCAL_AND_TRAIN"),
  DOC_ITEM_LOCAL_AND_TRAIN: protocolString("DOC_ITEM_LOCAL_AND_TRAIN"),
  DOC_EMPTY_LOCAL_AND_TRAIN: protocolString("DOC_EMPTY_LOCAL_AND_TRAIN"),
  DOC_BLOCK_ONLINE: protocolString("DOC_BLOCK_ONLINE"),
  STOP_STRINGS_EVAL: stringList("STOP_STRINGS_EVAL"),
  STOP_STRINGS_TRAIN: stringList("STOP_STRINGS_TRAIN"),
  BGE_QUERY_INSTRUCTION: protocolString("BGE_QUERY_INSTRUCTION"),
  ONLINE_SITE_SUFFIX: protocolString("ONLINE_SITE_SUFFIX"),
  REWARD_SPLIT_QWEN: stringRecord("REWARD_SPLIT_QWEN") as Readonly<{ user: string; assistant: string }>,
  REWARD_SPLIT_LLAMA: stringRecord("REWARD_SPLIT_LLAMA") as Readonly<{ user: string; assistant: string }>,
});

/** Token-id patterns of `<|begin_of_documents|>\n` (start) and `end_of_documents|>\n\n` (end), per tokenizer (§5.3). */
export interface RetrieveMaskPattern {
  start: readonly number[];
  end: readonly number[];
}

/** `RETRIEVE_MASK_TOKEN_IDS` keyed by tokenizer family: `"qwen2.5"`, `"llama3.1"`. */
export const RETRIEVE_MASK_TOKEN_IDS: Readonly<Record<"qwen2.5" | "llama3.1", RetrieveMaskPattern>> = (() => {
  const v = protocolValue("RETRIEVE_MASK_TOKEN_IDS") as Record<string, { start: number[]; end: number[] }>;
  const out: Record<string, RetrieveMaskPattern> = {};
  for (const [key, pat] of Object.entries(v)) {
    out[key.split(" ")[0]] = Object.freeze({ start: Object.freeze([...pat.start]), end: Object.freeze([...pat.end]) });
  }
  if (!out["qwen2.5"] || !out["llama3.1"])
    throw new Error("protocol-strings.json: RETRIEVE_MASK_TOKEN_IDS lacks qwen2.5 or llama3.1");
  return Object.freeze(out) as Record<"qwen2.5" | "llama3.1", RetrieveMaskPattern>;
})();

/** First prompt token id that selects the Llama-3 pattern upstream (`<|begin_of_text|>`). */
export const LLAMA3_BOS_TOKEN_ID = 128000;

/**
 * Pick the upstream mask pattern from the first prompt token id: 128000 (Llama-3 BOS) → Llama-3.1, anything else → Qwen2.5.
 */
export function retrieveMaskPatternFor(firstPromptTokenId: number | undefined): RetrieveMaskPattern {
  return firstPromptTokenId === LLAMA3_BOS_TOKEN_ID
    ? RETRIEVE_MASK_TOKEN_IDS["llama3.1"]
    : RETRIEVE_MASK_TOKEN_IDS["qwen2.5"];
}

function matchesAt(ids: readonly number[], pat: readonly number[], i: number): boolean {
  if (pat.length === 0 || i + pat.length > ids.length) return false;
  for (let k = 0; k < pat.length; k++) if (ids[i + k] !== pat[k]) return false;
  return true;
}

/**
 * The upstream retrieved-document loss mask over response token ids (R1-Searcher §5.3): scanning left to right, an exact
 * occurrence of `start` opens a masked span at its first token; the span ends with the last token of the first exact
 * occurrence of `end` that starts after the start pattern, or runs to the end of the response when none follows.
 * Returns one value per id: 0 inside spans, 1 elsewhere.
 */
export function retrieveMaskFromTokenIds(responseIds: readonly number[], pattern: RetrieveMaskPattern): number[] {
  const mask = new Array<number>(responseIds.length).fill(1);
  let i = 0;
  while (i < responseIds.length) {
    if (!matchesAt(responseIds, pattern.start, i)) {
      i++;
      continue;
    }
    let j = i + pattern.start.length;
    let stop = responseIds.length;
    for (; j < responseIds.length; j++) {
      if (matchesAt(responseIds, pattern.end, j)) {
        stop = j + pattern.end.length;
        break;
      }
    }
    for (let k = i; k < stop; k++) mask[k] = 0;
    i = stop;
  }
  return mask;
}
