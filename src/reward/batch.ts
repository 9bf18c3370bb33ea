/**
 * The batch reward API: `scoreBatch(preset, items, options)` scores many trajectories at once, grouping them by
 * question for the presets that need the group (R1-Searcher++). Inputs fit both callers:
 * - text-only callers (the reward server) pass `text` = the full decoded sequence and let the preset's prompt markers
 *   (or `prompt`) split off the response and the question;
 * - the rollout/trainer passes `response` (+ `question`, `gold`, `retrievals`, `group`) and nothing is re-parsed from
 *   prompts, which also makes every preset work with custom (compact) prompts.
 */
import { pyStrip } from "../util/pystr.js";
import type { GoldAnswer } from "../metrics/answer.js";
import { coverExactMatch } from "../metrics/answer.js";
import { hasPromptMarkers, splitPromptResponse, type PromptSplitStyle } from "../protocol/chat.js";
import { PROTOCOLS } from "../protocol/index.js";
import { normalizeQuestionKey, stripSequence, UnknownQuestionError, type GoldLookup } from "./lookup.js";
import {
  rewardR1SearcherLlamaStage1,
  rewardR1SearcherLlamaStage2,
  rewardR1SearcherQwen,
  type R1RewardOutcome,
} from "./r1-searcher.js";
import {
  DEFAULT_PLUS_REWARD_OPTIONS,
  plusAnswerReward,
  plusFormatCheck,
  plusGroupRewards,
  type PlusRewardOptions,
} from "./plus.js";

export type RewardPresetName =
  "r1-searcher-qwen" | "r1-searcher-llama-stage1" | "r1-searcher-llama-stage2" | "r1-searcher-plus";

export interface RewardPreset {
  readonly name: RewardPresetName;
  readonly description: string;
  /** Smallest and largest possible reward (with default options). */
  readonly range: readonly [number, number];
  /** Prompt markers used to split `text` items (the upstream server's split). */
  readonly split: PromptSplitStyle;
  /** EOS and pad strings of the model family (`strip_sequence` + one EOS appended, as the servers do). */
  readonly eos: string;
  readonly pad: string;
  /** True when the reward of a sample depends on the other samples of its question. */
  readonly usesGroups: boolean;
}

export const REWARD_PRESETS: Readonly<Record<RewardPresetName, RewardPreset>> = Object.freeze({
  "r1-searcher-qwen": {
    name: "r1-searcher-qwen",
    description: "R1-Searcher Qwen-2.5 base RL-Zero (reward_server_qwen_zero.py): F1 − 2 on any format problem",
    range: [-2, 1],
    split: "qwen-base",
    eos: "<|endoftext|>",
    pad: "<|endoftext|>",
    usesGroups: false,
  },
  "r1-searcher-llama-stage1": {
    name: "r1-searcher-llama-stage1",
    description: "R1-Searcher Llama stage 1 (reward_server_llama_stage1.py): ±1 Cover-EM + 0.5 retrieval + 0.5 format",
    range: [-1, 2],
    split: "llama3.1-chat",
    eos: "<|eot_id|>",
    pad: "<|eot_id|>",
    usesGroups: false,
  },
  "r1-searcher-llama-stage2": {
    name: "r1-searcher-llama-stage2",
    description: "R1-Searcher Llama stage 2 (reward_server_llama_stage2.py): F1 − 1 on any format problem",
    range: [-1, 1],
    split: "llama3.1-chat",
    eos: "<|eot_id|>",
    pad: "<|eot_id|>",
    usesGroups: false,
  },
  "r1-searcher-plus": {
    name: "r1-searcher-plus",
    description:
      "R1-Searcher++: format (0/−2) + Cover-EM answer (≤10 words) + group reward min(2σ², 2) for the fewest retrievals",
    range: [-2, 3],
    split: "qwen2.5-chat",
    eos: "<|im_end|>",
    pad: "<|endoftext|>",
    usesGroups: true,
  },
});

export const REWARD_PRESET_NAMES = Object.freeze(Object.keys(REWARD_PRESETS) as RewardPresetName[]);

/** A preset by name; throws with the list of names when unknown. */
export function getRewardPreset(name: string): RewardPreset {
  if (!Object.hasOwn(REWARD_PRESETS, name))
    throw new Error(`unknown reward preset "${name}" (expected one of ${REWARD_PRESET_NAMES.join(", ")})`);
  return REWARD_PRESETS[name as RewardPresetName];
}

/** One trajectory to score. Give `response` (preferred) or `text`. */
export interface RewardItem {
  /** The response only: everything the model and the environment wrote after the prompt. No prompt split is done. */
  response?: string;
  /**
   * The full decoded sequence (prompt + response, special tokens kept), as OpenRLHF sends it. The preset strips
   * leading/trailing EOS/pad, appends one EOS, and splits question and solution with its prompt markers (or cuts
   * `prompt` off the front when the text starts with it).
   */
  text?: string;
  /** The prompt string (OpenRLHF `prompts`): used to cut `text` when the markers are not the preset's. */
  prompt?: string;
  /** The question (gold lookup key, default group key). Parsed from `text` when absent. */
  question?: string;
  /** Gold answer(s). When absent it is looked up by question in `ScoreBatchOptions.gold`. */
  gold?: GoldAnswer;
  /** Group key (samples of one question share it). Default: `normalizeQuestionKey(question)`. */
  group?: string;
  /** Retrieval count when known (the rollout knows it); parsed from the response otherwise. */
  retrievals?: number;
}

export interface RewardDetails {
  /** F1 of the prediction (r1-searcher-qwen, -llama-stage2). */
  f1?: number;
  /** Cover-EM of the prediction. */
  cem: boolean;
  /** R1-Searcher++ terms. */
  formatReward?: number;
  answerReward?: number;
  groupReward?: number;
  /** Size of the group the sample was scored in (R1-Searcher++). */
  groupSize?: number;
  /** Failed format checks (see each preset). */
  violations: string[];
}

export interface RewardResult {
  /** The reward for the advantage. */
  reward: number;
  /** Answer quality in [0, 1] (F1 for qwen/stage 2, Cover-EM for stage 1 and R1-Searcher++), for dynamic filtering. */
  score: number;
  /** Answer present and correct by Cover-EM (R1-Searcher++: also format OK, as its group reward requires). */
  correct: boolean;
  /** No format violation (stage 1: the think/answer format bonus was earned). */
  formatOk: boolean;
  retrievals: number;
  /** Both answer tags present (the upstream log's "finished"). */
  finished: boolean;
  /** The question used for lookup and grouping ("" when unknown). */
  question: string;
  /** The solution text that was scored (as the upstream log writes it). */
  solution: string;
  /** The extracted answer (null when absent). */
  answer: string | null;
  details: RewardDetails;
}

export interface ScoreBatchOptions {
  /** Gold answers for items that do not carry `gold`. */
  gold?: GoldLookup;
  /** Override the preset's prompt split markers for `text` items. */
  split?: PromptSplitStyle;
  /** Override the preset's EOS / pad strings for `text` items. */
  eos?: string;
  pad?: string;
  /** R1-Searcher++ options (η, group variant, checks, protocol). */
  plus?: Partial<PlusRewardOptions>;
  /**
   * Reward for items whose gold answer is unknown. Default: throw `UnknownQuestionError` naming them. When set, such items
   * get this reward (score 0, violations ["unknown question"]).
   */
  unknownReward?: number;
}

/** What `scoreBatch` derives from an item before scoring it. */
export interface ResolvedRewardItem {
  question: string;
  solution: string;
  /** Undefined when neither the item nor the lookup knows the question. */
  gold: GoldAnswer | undefined;
  group: string;
}

type Resolved = ResolvedRewardItem;

/**
 * Resolve an item as `scoreBatch` does (question/solution split, gold lookup, group key) without scoring it — for
 * callers that must route items to groups first (the reward server's group mode).
 */
export function resolveRewardItem(
  presetName: RewardPresetName | string,
  item: RewardItem,
  opts: ScoreBatchOptions = {},
): ResolvedRewardItem {
  return resolve(getRewardPreset(presetName), item, opts);
}

function resolve(preset: RewardPreset, item: RewardItem, opts: ScoreBatchOptions): Resolved {
  let question = item.question;
  let solution: string;
  if (item.response !== undefined) {
    solution = pyStrip(item.response);
  } else if (item.text !== undefined) {
    const eos = opts.eos ?? preset.eos;
    const t = stripSequence(item.text, opts.pad ?? preset.pad, eos) + eos;
    const style = opts.split ?? preset.split;
    if (item.prompt !== undefined && item.prompt.length > 0 && t.startsWith(item.prompt)) {
      solution = pyStrip(t.slice(item.prompt.length));
      if (question === undefined)
        question = hasPromptMarkers(item.prompt, style) ? splitPromptResponse(t, style).question : "";
    } else {
      const s = splitPromptResponse(t, style);
      solution = s.solution;
      if (question === undefined) question = s.question;
    }
  } else {
    throw new Error("reward item needs `response` or `text`");
  }
  question ??= "";
  const gold = item.gold ?? opts.gold?.get(question);
  return { question, solution, gold, group: item.group ?? normalizeQuestionKey(question) };
}

function r1Result(o: R1RewardOutcome, r: Resolved, retrievals: number, presetName: RewardPresetName): RewardResult {
  const stage1 = presetName === "r1-searcher-llama-stage1";
  return {
    reward: o.reward,
    score: stage1 ? (o.finished && o.cem ? 1 : 0) : o.finished ? (o.f1 ?? 0) : 0,
    correct: o.finished && o.cem,
    formatOk: stage1 ? !o.violations.includes("think/answer tags") : o.violations.length === 0,
    retrievals,
    finished: o.finished,
    question: r.question,
    solution: r.solution,
    answer: o.finished ? o.pred : null,
    details: { ...(o.f1 !== undefined ? { f1: o.f1 } : {}), cem: o.cem, violations: o.violations },
  };
}

function unknownResult(r: Resolved, reward: number): RewardResult {
  return {
    reward,
    score: 0,
    correct: false,
    formatOk: false,
    retrievals: 0,
    finished: false,
    question: r.question,
    solution: r.solution,
    answer: null,
    details: { cem: false, violations: ["unknown question"] },
  };
}

/**
 * Score many trajectories with a preset. Results keep the input order. For `r1-searcher-plus` the group reward is
 * computed over the items that share a group key within this call — pass all samples of a question together.
 * Throws `UnknownQuestionError` (naming every unknown question) when a gold answer is missing and
 * `options.unknownReward` is not set.
 */
export function scoreBatch(
  presetName: RewardPresetName | string,
  items: readonly RewardItem[],
  options: ScoreBatchOptions = {},
): RewardResult[] {
  const preset = getRewardPreset(presetName);
  const resolved = items.map((it) => resolve(preset, it, options));
  const unknown = resolved.filter((r) => r.gold === undefined).map((r) => r.question);
  if (unknown.length > 0 && options.unknownReward === undefined) throw new UnknownQuestionError([...new Set(unknown)]);
  const out = new Array<RewardResult>(items.length);

  if (preset.name !== "r1-searcher-plus") {
    const fn =
      preset.name === "r1-searcher-qwen"
        ? rewardR1SearcherQwen
        : preset.name === "r1-searcher-llama-stage1"
          ? rewardR1SearcherLlamaStage1
          : rewardR1SearcherLlamaStage2;
    const r1 = PROTOCOLS["r1-searcher"];
    resolved.forEach((r, i) => {
      if (r.gold === undefined) {
        out[i] = unknownResult(r, options.unknownReward as number);
        return;
      }
      const retrievals = items[i].retrievals ?? r1.countRetrievals(r.solution);
      out[i] = r1Result(fn(r.solution, r.gold), r, retrievals, preset.name);
    });
    return out;
  }

  const po: PlusRewardOptions = { ...DEFAULT_PLUS_REWARD_OPTIONS, ...(options.plus ?? {}) };
  const groups = new Map<string, number[]>();
  const partial: Array<{ fmt: ReturnType<typeof plusFormatCheck>; ans: 0 | 1; retrievals: number } | null> =
    resolved.map((r, i) => {
      if (r.gold === undefined) return null;
      const fmt = plusFormatCheck(r.solution, po);
      const ans = plusAnswerReward(fmt.answer, r.gold, po.maxAnswerWords);
      const retrievals = items[i].retrievals ?? fmt.parsed.retrievals;
      const g = groups.get(r.group);
      if (g) g.push(i);
      else groups.set(r.group, [i]);
      return { fmt, ans, retrievals };
    });
  const groupReward = new Array<number>(items.length).fill(0);
  const groupSize = new Array<number>(items.length).fill(1);
  for (const idxs of groups.values()) {
    const samples = idxs.map((i) => {
      const p = partial[i]!;
      return { correct: p.fmt.ok && p.ans === 1, retrievals: p.retrievals };
    });
    const g = plusGroupRewards(samples, po);
    idxs.forEach((i, k) => {
      groupReward[i] = g[k];
      groupSize[i] = idxs.length;
    });
  }
  resolved.forEach((r, i) => {
    const p = partial[i];
    if (p === null) {
      out[i] = unknownResult(r, options.unknownReward as number);
      return;
    }
    const formatReward = p.fmt.ok ? 0 : po.formatPenalty;
    const answerTags = p.fmt.answer !== null;
    out[i] = {
      reward: formatReward + p.ans + groupReward[i],
      score: p.ans,
      correct: p.fmt.ok && p.ans === 1,
      formatOk: p.fmt.ok,
      retrievals: p.retrievals,
      finished: answerTags && p.fmt.parsed.segments.some((s) => s.kind === "answer" && s.closed),
      question: r.question,
      solution: r.solution,
      answer: p.fmt.answer,
      details: {
        cem: p.fmt.answer !== null && coverExactMatch(p.fmt.answer, r.gold as GoldAnswer),
        formatReward,
        answerReward: p.ans,
        groupReward: groupReward[i],
        groupSize: groupSize[i],
        violations: p.fmt.violations,
      },
    };
  });
  return out;
}

/** Score one trajectory (for group presets the item is its own group, so the group reward is 0). */
export function scoreOne(
  presetName: RewardPresetName | string,
  item: RewardItem,
  options: ScoreBatchOptions = {},
): RewardResult {
  return scoreBatch(presetName, [item], options)[0];
}
