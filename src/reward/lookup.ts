/**
 * Gold-answer lookup as the upstream reward servers do it (r1-searcher.md §3.2): the key is `normalize_text(question)`;
 * later duplicates overwrite earlier ones. Also `strip_sequence`, which the servers apply to every decoded query.
 */
import { z } from "zod";
import { readLines } from "../util/jsonl.js";
import { escapeRegExp, PY_WS_CLASS, pyStrip } from "../util/pystr.js";
import type { GoldAnswer } from "../metrics/answer.js";

// Exactly the character class of upstream `normalize_text` (backslash, underscore, backtick and tilde are not in it).
const KEY_PUNCT = /[,.:"'[\]\-=+|!@#$%^&*();<>?/！￥…（）—{}：”“《》？]/g;
const KEY_IMPORT = new RegExp(`import${PY_WS_CLASS}[a-zA-Z.]+(?:${PY_WS_CLASS}as${PY_WS_CLASS}[a-zA-Z.]+)\\n`, "g");
const KEY_WS = new RegExp(`${PY_WS_CLASS}+`, "g");

/**
 * The upstream lookup key `normalize_text`: lower-case; each of ``, . : " ' [ ] - = + | ! @ # $ % ^ & * ( ) ; < > ? /``
 * and `！ ￥ … （ ） — { } ： ” “ 《 》 ？` → space; the `import x as y\n` pattern → space; Python-whitespace runs → one
 * space; strip. Not the answer normalizer of the metrics.
 */
export function normalizeQuestionKey(text: string): string {
  let t = text.toLowerCase().replace(KEY_PUNCT, " ");
  t = t.replace(KEY_IMPORT, " ");
  t = t.replace(KEY_WS, " ");
  return pyStrip(t);
}

/**
 * Upstream `strip_sequence(text, pad, eos)`: remove a leading run and a trailing run of pad/eos strings. Python's `$`
 * also matches before a final newline, so a run followed by one trailing "\n" is removed too (the newline stays).
 */
const stripCache = new Map<string, [RegExp, RegExp]>();

export function stripSequence(text: string, pad: string, eos: string): string {
  const key = `${eos}\u0000${pad}`;
  let re = stripCache.get(key);
  if (!re) {
    const alt = `(?:${escapeRegExp(eos)}|${escapeRegExp(pad)})+`;
    re = [new RegExp(`^${alt}`), new RegExp(`${alt}(?=\\n?$)`)];
    stripCache.set(key, re);
  }
  return text.replace(re[0], "").replace(re[1], "");
}

/** Where gold answers come from when a request does not carry them. */
export interface GoldLookup {
  /** Gold answer of a question (matched with `normalizeQuestionKey`), or undefined. */
  get(question: string): GoldAnswer | undefined;
  readonly size: number;
}

/** A question is not in the gold table; the message names the question(s). */
export class UnknownQuestionError extends Error {
  /** The unknown questions (at most 20, each cut to 300 characters: a failed prompt split yields the whole text). */
  readonly questions: string[];
  /** How many distinct unknown questions there were. */
  readonly count: number;
  constructor(questions: string[]) {
    const cut = (q: string) => (q.length > 300 ? q.slice(0, 300) + "…" : q);
    const shown = questions.slice(0, 5).map((q) => JSON.stringify(cut(q)));
    const hint = questions.includes("")
      ? " (an empty question means the prompt split found none: check the preset's prompt format or split markers, or send the gold answer as a label)"
      : "";
    super(
      `unknown question${questions.length > 1 ? "s" : ""} (not in the gold data): ${shown.join(", ")}${questions.length > 5 ? ` and ${questions.length - 5} more` : ""}${hint}`,
    );
    this.name = "UnknownQuestionError";
    this.questions = questions.slice(0, 20).map(cut);
    this.count = questions.length;
  }
}

/** JSON answer values accepted in gold data: a string, a list of strings, or a boolean (→ "yes"/"no"). */
export const GoldValueSchema = z.union([z.string(), z.array(z.string()), z.boolean()]);

export function goldFromValue(v: z.infer<typeof GoldValueSchema>): GoldAnswer {
  return v === true ? "yes" : v === false ? "no" : v;
}

/** In-memory gold table keyed by `normalizeQuestionKey(question)`. */
export class GoldTable implements GoldLookup {
  private readonly map = new Map<string, GoldAnswer>();

  /** Build from rows with `question` and `answer` (later duplicates overwrite earlier ones, as upstream). */
  static fromRows(rows: Iterable<{ question: string; answer: GoldAnswer }>): GoldTable {
    const t = new GoldTable();
    for (const r of rows) t.set(r.question, r.answer);
    return t;
  }

  set(question: string, answer: GoldAnswer): void {
    this.map.set(normalizeQuestionKey(question), answer);
  }

  get(question: string): GoldAnswer | undefined {
    return this.map.get(normalizeQuestionKey(question));
  }

  get size(): number {
    return this.map.size;
  }
}

const GoldRowSchema = z.object({ question: z.string(), answer: GoldValueSchema }).loose();

/**
 * Load gold answers from a JSONL file of rows with `question` and `answer` (the R1-Searcher training/eval files).
 * Errors name the file and 1-based line.
 */
export async function loadGoldTable(file: string): Promise<GoldTable> {
  const t = new GoldTable();
  let n = 0;
  try {
    for await (const line of readLines(file)) {
      n++;
      if (line.trim() === "") continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (err) {
        throw new Error(`${file}:${n}: invalid JSON (${err instanceof Error ? err.message : String(err)})`);
      }
      const r = GoldRowSchema.safeParse(v);
      if (!r.success)
        throw new Error(
          `${file}:${n}: a gold row needs "question" (string) and "answer" (string, list of strings or boolean)`,
        );
      t.set(r.data.question, goldFromValue(r.data.answer));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${file}: no such file`);
    throw err;
  }
  return t;
}
