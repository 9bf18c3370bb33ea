/**
 * The tokenizer a backend uses when it has no real one (an HTTP server given without `--tokenizer`): UTF-8 bytes as
 * ids. Token ids are then NOT the model's ids; they only keep text spans (and the policy/environment mask) aligned.
 * A backend that uses it records a warning on every result.
 */
import type { Tokenizer } from "../util/types.js";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8");

export class TextOnlyTokenizer implements Tokenizer {
  readonly vocabSize = 256;
  readonly bosTokenId = null;
  readonly eosTokenIds: readonly number[] = [];
  /** Marks this tokenizer as a stand-in (no model ids). */
  readonly textOnly = true;
  encode(text: string): number[] {
    return Array.from(enc.encode(text));
  }
  decode(ids: readonly number[]): string {
    return dec.decode(Uint8Array.from(ids));
  }
}

/** True for the byte stand-in tokenizer (token ids are not model ids). */
export function isTextOnlyTokenizer(t: Tokenizer): boolean {
  return (t as { textOnly?: boolean }).textOnly === true;
}
