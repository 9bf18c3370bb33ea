/**
 * The three R1-Searcher reward functions, ported byte for byte from the upstream reward servers (r1-searcher.md
 * §3.2–3.6). They take the *solution* (everything after the prompt's `<think>`, as the servers cut it) and the gold
 * answer, and are pure. Substring counts run on the whole solution, retrieved documents included, exactly as upstream
 * (documents rendered by src/protocol cannot contain protocol strings, see docs/protocol.md "Forging protection").
 */
import { afterLast, beforeFirst, countOccurrences, pyStrip, pyWords } from "../util/pystr.js";
import { coverExactMatch, f1Score, type GoldAnswer } from "../metrics/answer.js";
import { R1_TAGS } from "../protocol/strings.js";

const T = R1_TAGS;
const C1 = T.beginDocs + "\n";
const C2 = T.endDocs + "\n\n";
const C7 = T.beginDocs + "\n(1)";

/** The upstream prediction: `py_strip(before_first(after_last(solution, "<answer>"), "</answer>"))`. */
export function r1Prediction(solution: string): string {
  return pyStrip(beforeFirst(afterLast(solution, T.answerOpen), T.answerClose));
}

/** Both answer tags present (the upstream "finished" flag). */
export function r1HasAnswerTags(solution: string): boolean {
  return solution.includes(T.answerOpen) && solution.includes(T.answerClose);
}

/** The seven substring counts c1…c7 of §3.2. */
export function r1TagCounts(solution: string): [number, number, number, number, number, number, number] {
  return [
    countOccurrences(solution, C1),
    countOccurrences(solution, C2),
    countOccurrences(solution, T.beginQuery),
    countOccurrences(solution, T.endQuery),
    countOccurrences(solution, T.beginDocs),
    countOccurrences(solution, T.endDocs),
    countOccurrences(solution, C7),
  ];
}

/** `docs_ok`: c1 = c2 = … = c7 (all zero is OK). */
export function r1DocsOk(solution: string): boolean {
  const c = r1TagCounts(solution);
  return c.every((x) => x === c[0]);
}

const DOC_SPANS = /<\|begin_of_documents\|>[\s\S]*?<\|end_of_documents\|>/g;
const CJK = /[\u4e00-\u9fff]/;

/** Upstream `have_chinese`: a character in U+4E00–U+9FFF outside `<|begin_of_documents|>…<|end_of_documents|>` spans. */
export function r1HasChineseOutsideDocs(solution: string): boolean {
  return CJK.test(solution.replace(DOC_SPANS, ""));
}

function thinkOk(solution: string): boolean {
  return countOccurrences(solution, T.thinkOpen) === 0 && countOccurrences(solution, T.thinkClose) === 1;
}

function answerTagsOnce(solution: string): boolean {
  return countOccurrences(solution, T.answerOpen) === 1 && countOccurrences(solution, T.answerClose) === 1;
}

/** Outcome of one R1-Searcher reward function. */
export interface R1RewardOutcome {
  /** The reward the server returns (the float; stage 1's `[score, 0]` pair is a server compatibility mode). */
  reward: number;
  /** Upstream "finished": both answer tags present. */
  finished: boolean;
  /** The prediction (`r1Prediction`). */
  pred: string;
  /** F1 of the prediction (qwen, stage 2); 0 without both answer tags (where upstream's F1 is overridden anyway). */
  f1?: number;
  /** Cover-EM of the prediction (false without both answer tags). */
  cem: boolean;
  /** Names of the format checks that failed (qwen, stage 2: they trigger the penalty; stage 1: they forfeit a bonus). */
  violations: string[];
}

/**
 * `reward_server_qwen_zero.py` (Qwen-2.5-7B base, RL-Zero). Range [−2, 1]:
 * F1 (0 without both answer tags), minus 2 once if any check fails: doc/query counts, "Assistant"/"assistant" anywhere
 * (documents included), think tags (0 `<think>`, 1 `</think>`), answer tags (exactly one each), query/doc tag names in the
 * answer, answer longer than 10 words, CJK outside document blocks.
 */
export function rewardR1SearcherQwen(solution: string, gold: GoldAnswer): R1RewardOutcome {
  const pred = r1Prediction(solution);
  const finished = r1HasAnswerTags(solution);
  // Without both tags upstream still computes F1 (of the whole solution) but then sets the score to 0: skip it.
  const f1 = finished ? f1Score(pred, gold).f1 : 0;
  let score = f1;
  const v: string[] = [];
  if (!r1DocsOk(solution)) v.push("doc/query tag counts differ");
  if (countOccurrences(solution, "Assistant") > 0 || countOccurrences(solution, "assistant") > 0)
    v.push('"assistant" in the solution');
  if (!thinkOk(solution)) v.push("think tags");
  if (!answerTagsOnce(solution)) v.push("answer tags not exactly once");
  if (pred.includes("begin_of_query") || pred.includes("begin_of_documents"))
    v.push("query/documents tag in the answer");
  if (pyWords(pred).length > 10) v.push("answer longer than 10 words");
  if (r1HasChineseOutsideDocs(solution)) v.push("CJK outside documents");
  if (v.length > 0) score -= 2;
  return { reward: score, finished, pred, f1, cem: finished && coverExactMatch(pred, gold), violations: v };
}

/**
 * `reward_server_llama_stage1.py` ("learn to retrieve"). Values −1, −0.5, 0, 0.5, 1, 1.5, 2:
 * −1 without both answer tags, else ±1 by Cover-EM; +0.5 when c1 = … = c7 ≥ 1 (at least one well-formed retrieval);
 * +0.5 when there is no `<think>`, one `</think>`, one `<answer>` and one `</answer>`.
 */
export function rewardR1SearcherLlamaStage1(solution: string, gold: GoldAnswer): R1RewardOutcome {
  const pred = r1Prediction(solution);
  const finished = r1HasAnswerTags(solution);
  const cem = finished && coverExactMatch(pred, gold); // unused upstream without both tags (score −1)
  let score = !finished ? -1 : cem ? 1 : -1;
  const v: string[] = [];
  const c = r1TagCounts(solution);
  if (c.every((x) => x === c[0]) && c[0] >= 1) score += 0.5;
  else v.push("no well-formed retrieval");
  if (thinkOk(solution) && answerTagsOnce(solution)) score += 0.5;
  else v.push("think/answer tags");
  return { reward: score, finished, pred, cem, violations: v };
}

/**
 * `reward_server_llama_stage2.py`. Range [−1, 1]: F1 (0 without both answer tags), minus 1 once if doc/query counts
 * differ, the think/answer tag counts are wrong, or CJK appears outside document blocks.
 */
export function rewardR1SearcherLlamaStage2(solution: string, gold: GoldAnswer): R1RewardOutcome {
  const pred = r1Prediction(solution);
  const finished = r1HasAnswerTags(solution);
  const f1 = finished ? f1Score(pred, gold).f1 : 0;
  let score = f1;
  const v: string[] = [];
  if (!r1DocsOk(solution)) v.push("doc/query tag counts differ");
  if (!(thinkOk(solution) && answerTagsOnce(solution))) v.push("think/answer tags");
  if (r1HasChineseOutsideDocs(solution)) v.push("CJK outside documents");
  if (v.length > 0) score -= 1;
  return { reward: score, finished, pred, f1, cem: finished && coverExactMatch(pred, gold), violations: v };
}
