/**
 * R1-Searcher++ reward: R = R_format + R_answer + R_group (r1-searcher-plus.md §3.2, §7 D1/D3/D4, §8).
 * Every reconstruction [R] is an option of `PlusRewardOptions`; defaults and reasons are in docs/rewards.md.
 */
import { countOccurrences, pyStrip, pyWords } from "../util/pystr.js";
import { coverExactMatch, type GoldAnswer } from "../metrics/answer.js";
import { PROTOCOLS } from "../protocol/index.js";
import type { R1SearcherPlusProtocol } from "../protocol/plus.js";
import type { ParsedResponse } from "../protocol/types.js";

export type GroupRewardVariant = "two-variance" | "std";

export interface PlusRewardOptions {
  /** Clip of the group reward (η, default 2). */
  eta: number;
  /** "two-variance": min(2σ², η) (default); "std": min(σ, η). */
  groupVariant: GroupRewardVariant;
  /** Answers with more words than this get no answer reward (default 10; Python `split()` on the stripped answer). */
  maxAnswerWords: number;
  /** Format reward when a check fails (default −2). */
  formatPenalty: number;
  /**
   * Where "Assistant"/"assistant" is forbidden: "outside-documents" (default; retrieved text does not count),
   * "everywhere" (R1-Searcher's Qwen check, documents included), "off".
   */
  assistantCheck: "outside-documents" | "everywhere" | "off";
  /** Forbid CJK characters (U+4E00–U+9FFF) outside document blocks (default true). */
  cjkCheck: boolean;
  /** The response format (tags, layout); default: the built-in r1-searcher-plus protocol. */
  protocol: R1SearcherPlusProtocol;
}

export const DEFAULT_PLUS_REWARD_OPTIONS: Readonly<PlusRewardOptions> = Object.freeze({
  eta: 2,
  groupVariant: "two-variance",
  maxAnswerWords: 10,
  formatPenalty: -2,
  assistantCheck: "outside-documents",
  cjkCheck: true,
  protocol: PROTOCOLS["r1-searcher-plus"],
});

export interface PlusFormatCheck {
  ok: boolean;
  /** Names of the failed checks (empty when ok). */
  violations: string[];
  parsed: ParsedResponse;
  /** The stripped final answer, null when absent. */
  answer: string | null;
}

const CJK = /[\u4e00-\u9fff]/;

/**
 * The format checker (D4): R1-Searcher's Qwen checks with the tags swapped, plus `<internal>` balance and `<document>`
 * only right after `</external>`. Substring checks run on the response with the *contents* of document blocks removed,
 * so retrieved text can neither break nor satisfy them.
 * Checks: the parser's structural problems (unclosed or stray tags, documents not after a closed query, a query without
 * documents, no answer or several, a `<think>` in the response or not exactly one `</think>`); equal counts of the
 * external/document open/close tags; exactly one answer-open and answer-close tag; equal internal open/close counts; no
 * external/document/internal tag inside the answer; "assistant" (see `assistantCheck`); CJK outside documents.
 */
export function plusFormatCheck(response: string, options: Partial<PlusRewardOptions> = {}): PlusFormatCheck {
  const o = { ...DEFAULT_PLUS_REWARD_OPTIONS, ...options };
  const p = o.protocol;
  const c = p.config;
  const parsed = p.parse(response);
  const violations = [...parsed.formatErrors];
  // Response with document contents removed (tags kept).
  let outside = "";
  let pos = 0;
  for (const s of parsed.segments) {
    if (s.kind !== "documents") continue;
    const innerStart = s.start + c.document[0].length;
    const innerEnd = s.closed ? s.end - c.document[1].length : s.end;
    outside += response.slice(pos, innerStart);
    pos = Math.max(innerStart, innerEnd);
  }
  outside += response.slice(pos);
  const counts = [c.external[0], c.external[1], c.document[0], c.document[1]].map((t) => countOccurrences(outside, t));
  if (!counts.every((x) => x === counts[0]))
    violations.push(`external/document tag counts differ (${counts.join(", ")})`);
  if (countOccurrences(outside, c.answer[0]) !== 1 || countOccurrences(outside, c.answer[1]) !== 1)
    violations.push("answer tags not exactly once");
  if (countOccurrences(outside, c.internal[0]) !== countOccurrences(outside, c.internal[1]))
    violations.push("internal tags unbalanced");
  const answer = parsed.answer === null ? null : pyStrip(parsed.answer);
  if (answer !== null) {
    for (const t of [...c.external, ...c.document, ...c.internal]) {
      if (answer.includes(t)) {
        violations.push(`${t} inside the answer`);
        break;
      }
    }
  }
  if (o.assistantCheck !== "off") {
    const hay = o.assistantCheck === "everywhere" ? response : outside;
    if (hay.includes("Assistant") || hay.includes("assistant")) violations.push('"assistant" in the response');
  }
  if (o.cjkCheck && CJK.test(outside)) violations.push("CJK outside documents");
  return { ok: violations.length === 0, violations: [...new Set(violations)], parsed, answer };
}

/** R_answer: 1 when the answer has at most `maxWords` words and covers the gold (Cover-EM), else 0 (D3). */
export function plusAnswerReward(
  answer: string | null,
  gold: GoldAnswer,
  maxWords = DEFAULT_PLUS_REWARD_OPTIONS.maxAnswerWords,
): 0 | 1 {
  if (answer === null) return 0;
  if (pyWords(answer).length > maxWords) return 0;
  return coverExactMatch(answer, gold) ? 1 : 0;
}

export interface GroupSample {
  /** Correct = format OK and answer reward 1 (D1). */
  correct: boolean;
  /** Retrieval count (completed external calls). */
  retrievals: number;
}

/**
 * R_group over the samples of one question (D1): among correct samples, σ = population std of their retrieval counts,
 * t_min = their minimum; every correct sample with t_min retrievals gets min(2σ², η) ("two-variance", default) or
 * min(σ, η) ("std"); all others 0. No correct sample, or σ = 0, → no bonus.
 */
export function plusGroupRewards(
  samples: readonly GroupSample[],
  options: Partial<Pick<PlusRewardOptions, "eta" | "groupVariant">> = {},
): number[] {
  const eta = options.eta ?? DEFAULT_PLUS_REWARD_OPTIONS.eta;
  const variant = options.groupVariant ?? DEFAULT_PLUS_REWARD_OPTIONS.groupVariant;
  const out = samples.map(() => 0);
  const ts = samples.filter((s) => s.correct).map((s) => s.retrievals);
  if (ts.length === 0) return out;
  const mean = ts.reduce((a, b) => a + b, 0) / ts.length;
  const variance = ts.reduce((a, t) => a + (t - mean) ** 2, 0) / ts.length;
  const sigma = Math.sqrt(variance);
  const tMin = Math.min(...ts);
  const bonus = Math.min(variant === "std" ? sigma : 2 * variance, eta);
  samples.forEach((s, i) => {
    if (s.correct && s.retrievals === tMin) out[i] = bonus;
  });
  return out;
}
