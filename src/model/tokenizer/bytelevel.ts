/**
 * Byte-level pieces shared by the BPE trainer and encoder, as Hugging Face `tokenizers` defines them for the
 * `ByteLevel` pre-tokenizer/decoder: the GPT-2 byte <-> printable-character table and the GPT-2 split regex.
 */

/** byte value -> the printable character standing for it in vocab strings. */
export const BYTE_TO_CHAR: string[] = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  for (let i = 0; i < bs.length; i++) out[bs[i]] = String.fromCodePoint(cs[i]);
  return out;
})();

/** printable character -> byte value. */
export const CHAR_TO_BYTE: Map<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** The GPT-2 pre-tokenization pattern (ByteLevel with use_regex = true). */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();

/** Split text into pre-tokens (GPT-2 regex) and map each to its byte-level character string. */
export function preTokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(GPT2_SPLIT)) out.push(toByteChars(m[0]));
  return out;
}

/** UTF-8 bytes of `s` as byte-level characters. */
export function toByteChars(s: string): string {
  const bytes = encoder.encode(s);
  let r = "";
  for (const b of bytes) r += BYTE_TO_CHAR[b];
  return r;
}

/** Byte-level characters back to bytes (characters outside the table are UTF-8 encoded as they are). */
export function fromByteChars(s: string, out: number[]): void {
  for (const ch of s) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) out.push(b);
    else for (const x of encoder.encode(ch)) out.push(x);
  }
}

/**
 * Split text around added tokens (leftmost, longest match first). Returns segments; `added` is the token id for
 * added-token segments, -1 for ordinary text.
 */
export function splitAddedTokens(
  text: string,
  added: ReadonlyMap<string, number>,
  sortedByLength: readonly string[],
): { text: string; added: number }[] {
  if (added.size === 0 || text.length === 0) return text.length ? [{ text, added: -1 }] : [];
  const out: { text: string; added: number }[] = [];
  const firsts = new Set(sortedByLength.map((t) => t.charCodeAt(0)));
  let last = 0;
  let i = 0;
  while (i < text.length) {
    if (!firsts.has(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let hit: string | null = null;
    for (const tok of sortedByLength) {
      if (text.startsWith(tok, i)) {
        hit = tok;
        break;
      }
    }
    if (hit === null) {
      i++;
      continue;
    }
    if (i > last) out.push({ text: text.slice(last, i), added: -1 });
    out.push({ text: hit, added: added.get(hit)! });
    i += hit.length;
    last = i;
  }
  if (last < text.length) out.push({ text: text.slice(last), added: -1 });
  return out;
}
