/**
 * A small deterministic tokenizer for tests: ids 0..255 are UTF-8 bytes (fallback), then the given pieces, matched
 * greedily longest-first. Tags can be split into several pieces on purpose (to test stop strings spanning tokens).
 */
import type { Tokenizer } from "../../util/types.js";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8");

export class VocabTokenizer implements Tokenizer {
  readonly pieces: string[];
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  private readonly byPiece = new Map<string, number>();
  private readonly maxLen: number;

  /** `pieces` get ids 256.. in order; `<s>` and `</s>` are appended as BOS / EOS (never produced by `encode`). */
  constructor(pieces: string[]) {
    this.pieces = pieces.filter((p, i) => p.length > 0 && pieces.indexOf(p) === i);
    this.pieces.forEach((p, i) => this.byPiece.set(p, 256 + i));
    this.bosTokenId = 256 + this.pieces.length;
    this.eosTokenIds = [257 + this.pieces.length];
    this.vocabSize = 258 + this.pieces.length;
    this.maxLen = this.pieces.reduce((m, p) => Math.max(m, p.length), 1);
  }

  encode(text: string): number[] {
    const out: number[] = [];
    let i = 0;
    while (i < text.length) {
      let matched = 0;
      for (let len = Math.min(this.maxLen, text.length - i); len >= 1; len--) {
        const id = this.byPiece.get(text.slice(i, i + len));
        if (id !== undefined) {
          out.push(id);
          matched = len;
          break;
        }
      }
      if (matched) {
        i += matched;
        continue;
      }
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of enc.encode(ch)) out.push(b);
      i += ch.length;
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    let s = "";
    let bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length) s += dec.decode(Uint8Array.from(bytes));
      bytes = [];
    };
    for (const id of ids) {
      if (id < 256) {
        bytes.push(id);
        continue;
      }
      flush();
      if (id === this.bosTokenId || this.eosTokenIds.includes(id)) continue;
      const p = this.pieces[id - 256];
      if (p !== undefined) s += p;
    }
    flush();
    return s;
  }

  /** Piece text of one id (for logs). */
  piece(id: number): string {
    if (id < 256) return `<0x${id.toString(16)}>`;
    return this.pieces[id - 256] ?? (id === this.bosTokenId ? "<s>" : "</s>");
  }
}

/** Pieces covering the R1-Searcher tags split into several tokens, plus common words. */
export const TEST_PIECES: string[] = [
  "<|",
  "|>",
  "|>\n\n",
  "begin",
  "end",
  "_of",
  "_query",
  "_documents",
  "<answer>",
  "</",
  "answer>",
  "<think>",
  "</think>",
  "\n\n",
  "\n",
  " ",
  "the",
  " the",
  " of",
  " is",
  " capital",
  " France",
  " Paris",
  " search",
  " Let",
  " me",
  "I",
  " need",
  " to",
  "<internal>",
  "</internal>",
  "<external>",
  "</external>",
  "<document>",
  "</document>",
];
