/**
 * A scripted llama.cpp model for tests: a bigram GGUF (see gguf.ts) whose most likely successor of each scripted
 * piece is the next piece of a chain, with a margin large enough that greedy decoding follows the chain and sampling
 * mostly does. Every other logit is a fixed pseudo-random value, so log-probs are exactly computable.
 */
import { buildSpmVocab, writeBigramGguf, type BigramVocab } from "./gguf.js";

export interface ScriptedGgufOptions {
  /** Chains of pieces (SPM pieces: a leading space is written as U+2581 or as " "). Piece i+1 follows piece i. */
  chains: string[][];
  /** Pieces always tokenized whole (tags). */
  userDefined: string[];
  /** Extra words (all their prefixes are added). */
  words?: string[];
  /** Characters that get their own piece (others use byte fallback). */
  alphabet?: string;
  /** Logit of a scripted successor (others are in [-1, 1]). Default 12. */
  margin?: number;
  contextLength?: number;
}

export interface ScriptedGguf {
  vocab: BigramVocab;
  /** Raw logits of the next token after token `t`. */
  logits(t: number): Float64Array;
  /** Raw log-softmax of token `next` after token `t`. */
  logprob(t: number, next: number): number;
  id(piece: string): number;
}

const DEFAULT_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,?!:()'\"-\n";

export function writeScriptedGguf(file: string, opts: ScriptedGgufOptions): ScriptedGguf {
  const norm = (p: string): string => p.replace(/ /g, "\u2581");
  const chains = opts.chains.map((c) => c.map(norm));
  const words = [...(opts.words ?? []), ...chains.flat().filter((p) => !opts.userDefined.includes(p) && p !== "</s>")];
  const vocab = buildSpmVocab(
    opts.alphabet ?? DEFAULT_ALPHABET,
    words.map((w) => w.replace(/\u2581/g, " ")),
    opts.userDefined,
  );
  const index = new Map(vocab.tokens.map((t, i) => [t, i]));
  const id = (piece: string): number => {
    const i = index.get(norm(piece));
    if (i === undefined) throw new Error(`scripted gguf: piece ${JSON.stringify(piece)} is not in the vocabulary`);
    return i;
  };
  const next = new Map<number, number>();
  for (const chain of chains) {
    for (let i = 0; i + 1 < chain.length; i++) {
      const a = id(chain[i]);
      const b = id(chain[i + 1]);
      const prev = next.get(a);
      if (prev !== undefined && prev !== b) throw new Error(`scripted gguf: piece ${chain[i]} has two successors`);
      next.set(a, b);
    }
  }
  const V = vocab.tokens.length;
  const margin = opts.margin ?? 12;
  const logits = (t: number): Float64Array => {
    const r = new Float64Array(V);
    for (let v = 0; v < V; v++) r[v] = Math.sin(t * 7.1 + v * 3.3);
    const n = next.get(t);
    if (n !== undefined) r[n] = margin;
    return r;
  };
  writeBigramGguf(file, {
    vocab,
    logits: (t) => Float32Array.from(logits(t)),
    contextLength: opts.contextLength ?? 4096,
  });
  const logprob = (t: number, n: number): number => {
    const r = logits(t);
    let m = -Infinity;
    for (const x of r) m = Math.max(m, x);
    let s = 0;
    for (const x of r) s += Math.exp(x - m);
    return r[n] - m - Math.log(s);
  };
  return { vocab, logits, logprob, id };
}

/**
 * The R1-Searcher-shaped script used by tests: after `<think>` the model searches once, and after a document block
 * (which ends in a newline) it answers.
 */
export const R1_SCRIPT: ScriptedGgufOptions = {
  userDefined: [
    "<think>",
    "<|begin_of_query|>",
    "<|end_of_query|>",
    "<answer>",
    "</ans",
    "wer>",
    "<|begin_of_documents|>",
    "<|end_of_documents|>",
  ],
  chains: [
    ["<think>", " Let", " me", " search", " ", "<|begin_of_query|>", " capital", " France", "<|end_of_query|>"],
    ["\n", "<answer>", " Paris", "</ans", "wer>", "</s>"],
  ],
};
