/**
 * Answer metrics exactly as R1-Searcher computes them (r1-searcher.md §4, `evaluation/metric_calc_rule.py`):
 * `normalizeAnswer`, `boolMapping`, EM, Cover-EM (`cover_exact_match_score_1` = ACC_R, and `_2`), HotpotQA-style F1.
 * Python traps handled: Unicode-aware `\b` for the articles, Python whitespace for `split()`, `split(" ")` in Cover-EM.
 */
import { pyWords, spaceSplit } from "../util/pystr.js";

/** A gold answer: one string or several (scores take the maximum over them). */
export type GoldAnswer = string | readonly string[];

// Python `string.punctuation` plus ‘ ’ ´ (and the backtick, already in string.punctuation).
const PUNCT = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~\u2018\u2019\u00b4]/g;
// Python 3 `\b(a|an|the)\b`: `\w` is Unicode letters and numbers plus "_" (marks are not word characters).
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/** R1-Searcher `normalize_answer`: `_`→space, lower-case, punctuation→space, articles→space, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  const t = s.replaceAll("_", " ").toLowerCase().replace(PUNCT, " ").replace(ARTICLES, " ");
  return pyWords(t).join(" ");
}

/** `bool_mapping`: exactly "True" → "yes", exactly "False" → "no", anything else unchanged. */
export function boolMapping(s: string): string {
  return s === "True" ? "yes" : s === "False" ? "no" : s;
}

function golds(gold: GoldAnswer): readonly string[] {
  return typeof gold === "string" ? [gold] : gold;
}

function norm(s: string): string {
  return normalizeAnswer(boolMapping(s));
}

function emOne(pred: string, gold: string): boolean {
  return norm(pred) === norm(gold);
}

function cem1One(pred: string, gold: string): boolean {
  const p = new Set(spaceSplit(norm(pred)));
  for (const g of spaceSplit(norm(gold))) if (!p.has(g)) return false;
  return true;
}

function cem2One(pred: string, gold: string): boolean {
  const p = spaceSplit(norm(pred));
  const g = spaceSplit(norm(gold));
  for (let i = 0; i + g.length <= p.length; i++) {
    let ok = true;
    for (let k = 0; k < g.length; k++) {
      if (p[i + k] !== g[k]) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return p.join(" ").includes(g.join(" "));
}

export interface F1Result {
  f1: number;
  precision: number;
  recall: number;
}

const ZERO: F1Result = Object.freeze({ f1: 0, precision: 0, recall: 0 });
const SPECIAL = new Set(["yes", "no", "noanswer"]);

function f1One(pred: string, gold: string): F1Result {
  const np = norm(pred);
  const ng = norm(gold);
  if (SPECIAL.has(np) && np !== ng) return ZERO;
  if (SPECIAL.has(ng) && np !== ng) return ZERO;
  const pt = pyWords(np);
  const gt = pyWords(ng);
  const counts = new Map<string, number>();
  for (const w of gt) counts.set(w, (counts.get(w) ?? 0) + 1);
  let same = 0;
  for (const w of pt) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      same++;
      counts.set(w, c - 1);
    }
  }
  if (same === 0) return ZERO;
  const precision = same / pt.length;
  const recall = same / gt.length;
  return { f1: (2 * precision * recall) / (precision + recall), precision, recall };
}

/** EM: normalized prediction equals a normalized gold (max over golds). */
export function exactMatch(pred: string, gold: GoldAnswer): boolean {
  return golds(gold).some((g) => emOne(pred, g));
}

/**
 * Cover-EM = ACC_R (`cover_exact_match_score_1`): every token of `normalize(gold).split(" ")` occurs among the tokens of
 * `normalize(pred).split(" ")` (order, contiguity and multiplicity ignored). An empty gold is covered only by an empty
 * prediction. Max over golds.
 */
export function coverExactMatch(pred: string, gold: GoldAnswer): boolean {
  return golds(gold).some((g) => cem1One(pred, g));
}

/** `cover_exact_match_score_2`: the gold tokens occur contiguously in the prediction, or as a substring. Max over golds. */
export function coverExactMatch2(pred: string, gold: GoldAnswer): boolean {
  return golds(gold).some((g) => cem2One(pred, g));
}

/**
 * HotpotQA-style token F1 with precision and recall: 0 when either normalized side is yes/no/noanswer and they differ;
 * multiset overlap of `split()` tokens otherwise. With several golds, the triple with the largest F1 (first on ties).
 */
export function f1Score(pred: string, gold: GoldAnswer): F1Result {
  let best: F1Result | null = null;
  for (const g of golds(gold)) {
    const r = f1One(pred, g);
    if (best === null || r.f1 > best.f1) best = r;
  }
  return best ?? { ...ZERO };
}

export interface AnswerScores extends F1Result {
  em: boolean;
  cem: boolean;
  cem2: boolean;
}

/** All answer metrics of one prediction. */
export function scoreAnswer(pred: string, gold: GoldAnswer): AnswerScores {
  return {
    em: exactMatch(pred, gold),
    cem: coverExactMatch(pred, gold),
    cem2: coverExactMatch2(pred, gold),
    ...f1Score(pred, gold),
  };
}
