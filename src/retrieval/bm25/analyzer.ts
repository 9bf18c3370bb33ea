/**
 * The BM25 text analyzer ("searchrl-en-v1"). Corpus and queries go through the same steps, in this order:
 *
 * 1. Unicode folding: NFKD, then combining marks removed (`Pokémon` → `Pokemon`, `ﬁ` → `fi`); only applied to
 *    strings with non-ASCII characters.
 * 2. Lower-casing (`String.prototype.toLowerCase`).
 * 3. Tokens = maximal runs of Unicode letters/digits, where an apostrophe between two such runs joins them
 *    (`don't`); a final possessive `'s` is removed (`Obama's` → `obama`), other apostrophes deleted (`dont`).
 * 4. Stop words removed (Lucene's English list of 33 words, option `stopwords: "none"` keeps them).
 * 5. Tokens longer than 40 characters dropped (LanceDB's `max_token_length`).
 * 6. Porter stemming (Lucene's `PorterStemFilter` variant; option `stem: "none"`).
 *
 * The analyzed tokens are what both engines index (LanceDB FTS with its plain whitespace tokenizer, and the in-memory
 * exact scorer), so their BM25 scores agree.
 */
import { porterStem } from "./porter.js";

/** Lucene `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`. */
// prettier-ignore
export const ENGLISH_STOP_WORDS: readonly string[] = [
  "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
  "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

export interface AnalyzerOptions {
  /** "porter" (default) or "none". */
  stem?: "porter" | "none";
  /** "english" (default) or "none". */
  stopwords?: "english" | "none";
  /** Drop tokens longer than this (default 40). */
  maxTokenLength?: number;
}

export interface AnalyzerConfig {
  name: "searchrl-en-v1";
  stem: "porter" | "none";
  stopwords: "english" | "none";
  maxTokenLength: number;
}

export function analyzerConfig(opts: AnalyzerOptions = {}): AnalyzerConfig {
  return {
    name: "searchrl-en-v1",
    stem: opts.stem ?? "porter",
    stopwords: opts.stopwords ?? "english",
    maxTokenLength: opts.maxTokenLength ?? 40,
  };
}

const TOKEN_RE = /[\p{L}\p{N}]+(?:['\u2019][\p{L}\p{N}]+)*/gu;
/** Anything but printable ASCII and common whitespace takes the Unicode path (which gives the same tokens for ASCII). */
const NON_ASCII = /[^\t\n\r -~]/;
const MARKS = /\p{M}/gu;
const APOS = /['\u2019]/g;

export class Analyzer {
  readonly config: AnalyzerConfig;
  private readonly stop: Set<string>;
  private cache = new Map<string, string>();
  private static readonly CACHE_MAX = 1 << 19;

  constructor(opts: AnalyzerOptions | AnalyzerConfig = {}) {
    this.config = analyzerConfig(opts);
    this.stop = new Set(this.config.stopwords === "english" ? ENGLISH_STOP_WORDS : []);
  }

  /** Fold, lower-case and split into raw word tokens (before stop words and stemming). */
  words(text: string): string[] {
    const out: string[] = [];
    this.eachWord(text, (w) => out.push(w));
    return out;
  }

  private eachWord(text: string, emit: (w: string) => void): void {
    let s = text;
    if (NON_ASCII.test(s)) {
      s = s.normalize("NFKD").replace(MARKS, "").toLowerCase();
      for (const m of s.matchAll(TOKEN_RE)) {
        const w = cleanApostrophes(m[0]);
        if (w.length > 0) emit(w);
      }
      return;
    }
    // ASCII fast path: the same tokens as TOKEN_RE, by scanning char codes.
    s = s.toLowerCase();
    const n = s.length;
    let i = 0;
    while (i < n) {
      while (i < n && !isAlnum(s.charCodeAt(i))) i++;
      if (i >= n) break;
      const start = i;
      let apos = false;
      for (;;) {
        while (i < n && isAlnum(s.charCodeAt(i))) i++;
        if (i + 1 < n && s.charCodeAt(i) === 39 && isAlnum(s.charCodeAt(i + 1))) {
          apos = true;
          i++;
          continue;
        }
        break;
      }
      const w = apos ? cleanApostrophes(s.slice(start, i)) : s.slice(start, i);
      if (w.length > 0) emit(w);
    }
  }

  private term(w: string): string | null {
    const cached = this.cache.get(w);
    if (cached !== undefined) return cached === "" ? null : cached;
    let t: string | null = w;
    if (this.stop.has(w) || w.length > this.config.maxTokenLength) t = null;
    else if (this.config.stem === "porter") t = porterStem(w);
    if (this.cache.size >= Analyzer.CACHE_MAX) this.cache.clear();
    this.cache.set(w, t ?? "");
    return t;
  }

  /** The index terms of a text. */
  terms(text: string): string[] {
    const out: string[] = [];
    this.eachWord(text, (w) => {
      const t = this.term(w);
      if (t !== null) out.push(t);
    });
    return out;
  }
}

function isAlnum(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
}

/** Drop a final possessive 's, then delete remaining apostrophes. */
function cleanApostrophes(w: string): string {
  if (w.length > 1 && (w.includes("'") || w.includes("\u2019"))) {
    if (w.endsWith("'s") || w.endsWith("\u2019s")) w = w.slice(0, -2);
    w = w.replace(APOS, "");
  }
  return w;
}
