/**
 * Byte-level BPE: a trainer (no JS library trains one) and an encoder/decoder, saved and loaded as a Hugging Face
 * `tokenizer.json` (model BPE with merges, ByteLevel pre-tokenizer and decoder, added tokens). Every byte has a token,
 * so any valid Unicode string round-trips: decode(encode(s)) === s.
 *
 * Vocabulary order: ids 0..255 are the single bytes (id = byte value), then one id per new merge result, then the
 * added tokens (special ones such as `<|endoftext|>` and protocol strings such as `<|begin_of_query|>`).
 */
import type { Tokenizer } from "../../util/types.js";
import { BYTE_TO_CHAR, fromByteChars, preTokenize, splitAddedTokens } from "./bytelevel.js";

export interface AddedTokenSpec {
  content: string;
  /** Special tokens (EOS, BOS, pad) are skipped by HF `decode(..., skip_special_tokens=True)`; protocol strings should not be. */
  special: boolean;
}

export interface TrainBpeOptions {
  /** Total vocabulary size including the 256 byte tokens and the added tokens. */
  vocabSize: number;
  /** Special tokens (special: true), e.g. ["<|endoftext|>"]. The first one is the EOS token unless `eos` says otherwise. */
  specialTokens?: string[];
  /** Other strings that must be single tokens (special: false), e.g. protocol tags. */
  addedTokens?: string[];
  /** Pairs seen fewer times stop the training early (default 2). */
  minFrequency?: number;
  /** EOS token content (default: the first special token). */
  eos?: string | null;
  /** BOS token content (default none). */
  bos?: string | null;
  /** Called every 100 merges with (merges done, merges wanted). */
  onProgress?: (done: number, total: number) => void;
}

/** A trained or loaded byte-level BPE tokenizer. */
export class BpeTokenizer implements Tokenizer {
  /** id -> token string (byte-level characters for ordinary tokens, raw content for added tokens). */
  readonly vocab: string[];
  private readonly ids = new Map<string, number>();
  /** "a b" -> rank */
  private readonly ranks = new Map<string, number>();
  readonly merges: [string, string][];
  readonly added: AddedTokenSpec[];
  private readonly addedIds = new Map<string, number>();
  private readonly addedSorted: string[];
  private readonly cache = new Map<string, number[]>();
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];

  constructor(opts: {
    vocab: string[];
    merges: [string, string][];
    added: (AddedTokenSpec & { id: number })[];
    bos?: string | null;
    eos?: string[];
  }) {
    this.vocab = opts.vocab.slice();
    for (let i = 0; i < this.vocab.length; i++) {
      if (this.vocab[i] !== undefined && !this.ids.has(this.vocab[i])) this.ids.set(this.vocab[i], i);
    }
    this.merges = opts.merges.map(([a, b]) => [a, b]);
    this.merges.forEach(([a, b], r) => this.ranks.set(a + " " + b, r));
    this.added = [];
    for (const a of opts.added) {
      this.addedIds.set(a.content, a.id);
      this.vocab[a.id] = a.content;
      this.added.push({ content: a.content, special: a.special });
    }
    this.addedSorted = [...this.addedIds.keys()].sort((x, y) => y.length - x.length);
    const idOf = (s: string | null | undefined): number | null =>
      s == null ? null : (this.addedIds.get(s) ?? this.ids.get(s) ?? null);
    this.bosTokenId = idOf(opts.bos);
    this.eosTokenIds = (opts.eos ?? []).map((e) => idOf(e)).filter((x): x is number => x !== null);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Id of a token string (added-token content or byte-level vocab string). */
  tokenToId(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.ids.get(token);
  }

  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let parts = Array.from(word);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(parts[i] + " " + parts[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = parts[best];
      const b = parts[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(parts[i]);
      }
      parts = merged;
    }
    const ids = parts.map((p) => {
      const id = this.ids.get(p);
      if (id === undefined) throw new Error(`BPE: token ${JSON.stringify(p)} missing from the vocabulary`);
      return id;
    });
    if (this.cache.size < 200_000) this.cache.set(word, ids);
    return ids;
  }

  /** Encode text (no BOS/EOS added); added tokens in the text become their single ids. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const seg of splitAddedTokens(text, this.addedIds, this.addedSorted)) {
      if (seg.added >= 0) {
        out.push(seg.added);
        continue;
      }
      for (const w of preTokenize(seg.text)) for (const id of this.bpe(w)) out.push(id);
    }
    return out;
  }

  /** Decode ids to text (invalid UTF-8 sequences become U+FFFD, as HF does). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const tok = this.vocab[id];
      if (tok === undefined) throw new Error(`decode: token id ${id} outside the vocabulary`);
      if (this.addedIds.get(tok) === id) {
        for (const b of new TextEncoder().encode(tok)) bytes.push(b);
      } else fromByteChars(tok, bytes);
    }
    return new TextDecoder("utf-8").decode(Uint8Array.from(bytes));
  }

  /** The bytes a token stands for (added tokens: their UTF-8 content). */
  tokenBytes(id: number): Uint8Array {
    const tok = this.vocab[id];
    if (tok === undefined) throw new Error(`token id ${id} outside the vocabulary`);
    const bytes: number[] = [];
    if (this.addedIds.get(tok) === id) return new TextEncoder().encode(tok);
    fromByteChars(tok, bytes);
    return Uint8Array.from(bytes);
  }

  /** The Hugging Face `tokenizer.json` object of this tokenizer. */
  toJson(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    const addedIdSet = new Set(this.addedIds.values());
    for (let i = 0; i < this.vocab.length; i++) if (!addedIdSet.has(i)) vocab[this.vocab[i]] = i;
    const added_tokens = [...this.addedIds.entries()]
      .sort((a, b) => a[1] - b[1])
      .map(([content, id]) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: this.added.find((a) => a.content === content)?.special ?? true,
      }));
    return {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens,
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: this.merges.map(([a, b]) => `${a} ${b}`),
      },
    };
  }

  /**
   * Read a byte-level BPE `tokenizer.json` object (as written by {@link toJson}, or GPT-2/Qwen2-style files without
   * normalizer). `bos`/`eos` name the special tokens (tokenizer.json itself does not say which is which).
   */
  static fromJson(json: unknown, opts: { bos?: string | null; eos?: string[] } = {}): BpeTokenizer {
    const j = json as {
      model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
      added_tokens?: { id: number; content: string; special?: boolean }[];
      pre_tokenizer?: { type?: string } | null;
      normalizer?: unknown;
    };
    if (j?.model?.type !== "BPE" || !j.model.vocab || !j.model.merges)
      throw new Error("tokenizer.json: not a BPE model");
    if (j.pre_tokenizer?.type !== "ByteLevel")
      throw new Error("tokenizer.json: only ByteLevel pre-tokenization is supported here");
    if (j.normalizer) throw new Error("tokenizer.json: normalizers are not supported here (use HfTokenizer)");
    const vocab: string[] = [];
    for (const [tok, id] of Object.entries(j.model.vocab)) vocab[id] = tok;
    const merges = j.model.merges.map((m) => {
      if (Array.isArray(m)) return [m[0], m[1]] as [string, string];
      const i = m.indexOf(" ");
      return [m.slice(0, i), m.slice(i + 1)] as [string, string];
    });
    const added = (j.added_tokens ?? []).map((a) => ({ id: a.id, content: a.content, special: a.special ?? true }));
    const eos =
      opts.eos ??
      added
        .filter((a) => a.special)
        .slice(0, 1)
        .map((a) => a.content);
    return new BpeTokenizer({ vocab, merges, added, bos: opts.bos ?? null, eos });
  }
}

/** A binary max-heap of (count, key) with lazy deletion. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private better(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): { count: number; key: number } | null {
    const n = this.counts.length;
    if (n === 0) return null;
    const top = { count: this.counts[0], key: this.keys[0] };
    this.swap(0, n - 1);
    this.counts.pop();
    this.keys.pop();
    let i = 0;
    const m = this.counts.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let b = i;
      if (l < m && this.better(l, b)) b = l;
      if (r < m && this.better(r, b)) b = r;
      if (b === i) break;
      this.swap(i, b);
      i = b;
    }
    return top;
  }
}

const KEY_BASE = 1 << 21;

/**
 * Train a byte-level BPE on texts. Deterministic: ties between equally frequent pairs go to the pair with the lower
 * (left id, right id).
 */
export function trainBpe(texts: Iterable<string>, opts: TrainBpeOptions): BpeTokenizer {
  const special = opts.specialTokens ?? [];
  const plain = opts.addedTokens ?? [];
  const allAdded = [...special, ...plain];
  if (new Set(allAdded).size !== allAdded.length) throw new Error("trainBpe: duplicate added tokens");
  for (const a of allAdded) {
    if (a.length === 0) throw new Error("trainBpe: empty added token");
    if (/\s/.test(a)) throw new Error(`trainBpe: added token ${JSON.stringify(a)} contains whitespace`);
  }
  const numMergeTokens = opts.vocabSize - 256 - allAdded.length;
  if (numMergeTokens < 0)
    throw new Error(
      `trainBpe: vocabSize ${opts.vocabSize} is smaller than 256 bytes + ${allAdded.length} added tokens`,
    );
  if (opts.vocabSize >= KEY_BASE) throw new Error("trainBpe: vocabSize too large");
  const minFreq = opts.minFrequency ?? 2;

  // Word frequencies (added tokens removed from the training text).
  const addedMap = new Map(allAdded.map((a, i) => [a, i]));
  const addedSorted = [...allAdded].sort((x, y) => y.length - x.length);
  const freq = new Map<string, number>();
  for (const text of texts) {
    for (const seg of splitAddedTokens(text, addedMap, addedSorted)) {
      if (seg.added >= 0) continue;
      for (const w of preTokenize(seg.text)) freq.set(w, (freq.get(w) ?? 0) + 1);
    }
  }
  const vocab: string[] = BYTE_TO_CHAR.slice();
  const ids = new Map<string, number>(vocab.map((s, i) => [s, i]));
  const byteId = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));
  const words: Int32Array[] = [];
  const wfreq: number[] = [];
  for (const [w, f] of freq) {
    const chars = Array.from(w);
    const arr = new Int32Array(chars.length);
    for (let i = 0; i < chars.length; i++) arr[i] = byteId.get(chars[i])!;
    words.push(arr);
    wfreq.push(f);
  }
  // Pair statistics.
  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPair = (key: number, wi: number, f: number): void => {
    counts.set(key, (counts.get(key) ?? 0) + f);
    let s = where.get(key);
    if (!s) {
      s = new Set();
      where.set(key, s);
    }
    s.add(wi);
  };
  for (let wi = 0; wi < words.length; wi++) {
    const w = words[wi];
    for (let i = 0; i < w.length - 1; i++) addPair(w[i] * KEY_BASE + w[i + 1], wi, wfreq[wi]);
  }
  const heap = new PairHeap();
  for (const [k, c] of counts) heap.push(c, k);
  const merges: [string, string][] = [];
  let made = 0;
  while (made < numMergeTokens) {
    const top = heap.pop();
    if (!top) break;
    const cur = counts.get(top.key) ?? 0;
    if (cur !== top.count) {
      if (cur > 0) heap.push(cur, top.key);
      continue;
    }
    if (cur < minFreq) break;
    const a = Math.floor(top.key / KEY_BASE);
    const b = top.key % KEY_BASE;
    const newStr = vocab[a] + vocab[b];
    let nid = ids.get(newStr);
    if (nid === undefined) {
      nid = vocab.length;
      vocab.push(newStr);
      ids.set(newStr, nid);
      made++;
    }
    merges.push([vocab[a], vocab[b]]);
    const affected = where.get(top.key);
    where.delete(top.key);
    counts.delete(top.key);
    const changed = new Set<number>();
    if (affected) {
      for (const wi of affected) {
        const w = words[wi];
        const f = wfreq[wi];
        // Remove old pairs of this word, rebuild, add new pairs.
        for (let i = 0; i < w.length - 1; i++) {
          const k = w[i] * KEY_BASE + w[i + 1];
          if (k === top.key) continue;
          const c = (counts.get(k) ?? 0) - f;
          if (c <= 0) counts.delete(k);
          else counts.set(k, c);
          changed.add(k);
          where.get(k)?.delete(wi);
        }
        const out: number[] = [];
        for (let i = 0; i < w.length; i++) {
          if (i < w.length - 1 && w[i] === a && w[i + 1] === b) {
            out.push(nid);
            i++;
          } else out.push(w[i]);
        }
        const nw = Int32Array.from(out);
        words[wi] = nw;
        for (let i = 0; i < nw.length - 1; i++) {
          const k = nw[i] * KEY_BASE + nw[i + 1];
          addPair(k, wi, f);
          changed.add(k);
        }
      }
    }
    for (const k of changed) {
      const c = counts.get(k);
      if (c !== undefined && c > 0) heap.push(c, k);
    }
    if (opts.onProgress && merges.length % 100 === 0) opts.onProgress(made, numMergeTokens);
  }
  const added = allAdded.map((content, i) => ({ id: vocab.length + i, content, special: i < special.length }));
  const eos = opts.eos === undefined ? (special.length ? [special[0]] : []) : opts.eos === null ? [] : [opts.eos];
  return new BpeTokenizer({ vocab, merges, added, bos: opts.bos ?? null, eos });
}
