/**
 * Policy/environment masks for text-only trajectories (a response that exists only as text, e.g. from a text-only
 * server or a dataset): the environment's spans come from `protocol.parse(text).environmentSpans`.
 */
import type { ResponseProtocol } from "../protocol/types.js";
import type { Tokenizer } from "../util/types.js";

export interface TokensWithMask {
  tokens: number[];
  /** 1 = policy token, 0 = environment token. */
  mask: number[];
}

function normalizeSpans(spans: ReadonlyArray<readonly [number, number]>, length: number): Array<[number, number]> {
  const sorted = spans
    .map(([a, b]) => [Math.max(0, Math.min(a, length)), Math.max(0, Math.min(b, length))] as [number, number])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else out.push([s[0], s[1]]);
  }
  return out;
}

/**
 * Tokenize `text` piece by piece at the span boundaries, so every token lies entirely inside or outside an
 * environment span: tokens of a span get mask 0, the others 1. (Tokenizing across a boundary could merge policy and
 * environment characters into one token; this never does.)
 */
export function encodeWithSpans(
  tokenizer: Tokenizer,
  text: string,
  environmentSpans: ReadonlyArray<readonly [number, number]>,
): TokensWithMask {
  const spans = normalizeSpans(environmentSpans, text.length);
  const tokens: number[] = [];
  const mask: number[] = [];
  let pos = 0;
  const push = (piece: string, m: number): void => {
    if (piece.length === 0) return;
    for (const t of tokenizer.encode(piece)) {
      tokens.push(t);
      mask.push(m);
    }
  };
  for (const [a, b] of spans) {
    push(text.slice(pos, a), 1);
    push(text.slice(a, b), 0);
    pos = b;
  }
  push(text.slice(pos), 1);
  return { tokens, mask };
}

/** Tokens and mask of a text-only response, with the protocol's environment spans (document blocks). */
export function encodeResponseWithMask(
  protocol: ResponseProtocol,
  tokenizer: Tokenizer,
  responseText: string,
): TokensWithMask {
  return encodeWithSpans(tokenizer, responseText, protocol.parse(responseText).environmentSpans);
}

/**
 * Mask for EXISTING token ids of `text` (e.g. a whole-text tokenization): a token is an environment token (0) when
 * the characters it decodes to lie entirely inside an environment span. Character offsets come from decoding growing
 * prefixes, so the tokenizer's decode must be prefix-stable (byte-level BPE and the built-in tokenizers are).
 */
export function maskFromSpans(
  tokenizer: Tokenizer,
  tokens: readonly number[],
  environmentSpans: ReadonlyArray<readonly [number, number]>,
): number[] {
  const spans = normalizeSpans(environmentSpans, Number.MAX_SAFE_INTEGER);
  const mask: number[] = [];
  let prevLen = 0;
  let si = 0;
  for (let i = 0; i < tokens.length; i++) {
    const len = tokenizer.decode(tokens.slice(0, i + 1)).length;
    const a = prevLen;
    const b = Math.max(len, prevLen);
    while (si < spans.length && spans[si][1] <= a) si++;
    const inside = si < spans.length && spans[si][0] <= a && b <= spans[si][1] && b > a;
    mask.push(inside ? 0 : 1);
    prevLen = b;
  }
  return mask;
}
