/**
 * The shape of a quickstart run that the pipeline, results.json and the report share: its stages, the evaluated
 * systems (how each is evaluated and how it is labelled), the state file's types and the paths inside OUT. It imports
 * nothing of the pipeline, the results or the report, so those three depend on it and not on each other in a circle.
 */
import path from "node:path";
import type { QuickstartConfig } from "./presets.js";

export const QUICKSTART_STAGES = [
  "world",
  "index",
  "data",
  "tokenizer",
  "pretrain",
  "probe",
  "r1-stage1",
  "r1-stage2",
  "plus-data",
  "plus-sft",
  "plus-rl",
  "eval",
  "report",
] as const;
export type QuickstartStage = (typeof QUICKSTART_STAGES)[number];

/** The evaluated systems, in report order. */
export const QUICKSTART_SYSTEMS = [
  "no-search",
  "naive-rag",
  "pretrained-search",
  "r1-stage1",
  "r1-stage2",
  "plus-sft",
  "plus-rl",
] as const;
export type QuickstartSystem = (typeof QUICKSTART_SYSTEMS)[number];

export interface QuickstartSystemSpec {
  /** The stage whose final checkpoint the system runs. */
  from: QuickstartStage;
  mode: "search" | "no-retrieval" | "naive-rag";
  protocol: "r1-searcher" | "r1-searcher-plus";
}

/**
 * How each system is evaluated: the stage whose final checkpoint it runs, the evaluation mode and the response
 * protocol (its prompt follows from the mode and the protocol). The eval stage, commands.sh and results.json read it.
 */
export const QUICKSTART_SYSTEM_SPECS: Record<QuickstartSystem, QuickstartSystemSpec> = {
  "no-search": { from: "pretrain", mode: "no-retrieval", protocol: "r1-searcher" },
  "naive-rag": { from: "pretrain", mode: "naive-rag", protocol: "r1-searcher" },
  "pretrained-search": { from: "pretrain", mode: "search", protocol: "r1-searcher" },
  "r1-stage1": { from: "r1-stage1", mode: "search", protocol: "r1-searcher" },
  "r1-stage2": { from: "r1-stage2", mode: "search", protocol: "r1-searcher" },
  "plus-sft": { from: "plus-sft", mode: "search", protocol: "r1-searcher-plus" },
  "plus-rl": { from: "plus-rl", mode: "search", protocol: "r1-searcher-plus" },
};

/** How the report and results.json name each system. */
export const SYSTEM_INFO: Record<QuickstartSystem, { label: string; description: string }> = {
  "no-search": { label: "Direct answer (no search)", description: "pre-trained model, Q/A prompt, no retrieval" },
  "naive-rag": {
    label: "Naive RAG (retrieve once)",
    description: "pre-trained model; the system searches once with the question, then the model answers",
  },
  "pretrained-search": {
    label: "Pre-trained + search prompt",
    description: "pre-trained model with the R1-Searcher prompt, before any RL",
  },
  "r1-stage1": { label: "R1-Searcher stage 1", description: "RL with the retrieval + format (+ Cover-EM) reward" },
  "r1-stage2": { label: "R1-Searcher (stage 2)", description: "RL with the F1 answer reward and format penalty" },
  "plus-sft": {
    label: "R1-Searcher++ SFT",
    description: "cold start on rejection-sampled trajectories of the model itself",
  },
  "plus-rl": {
    label: "R1-Searcher++ (RL)",
    description: "RL with format + answer + group reward and the memorization loss",
  },
};

export interface StageRecord {
  done: boolean;
  seconds: number;
  /** Wall seconds of every attempt (an interrupted stage resumed later has several). */
  attempts: number;
  finishedAt?: string;
  info?: Record<string, unknown>;
}

export interface QuickstartState {
  format: "searchrl-quickstart";
  version: 1;
  config: QuickstartConfig;
  stages: Partial<Record<QuickstartStage, StageRecord>>;
  created: string;
}

/** The latest checkpoint folder of a finished training run. */
export function finalCheckpoint(state: QuickstartState, stage: QuickstartStage): string {
  const c = state.stages[stage]?.info?.checkpoint;
  if (typeof c !== "string")
    throw new Error(`stage ${stage} has no checkpoint (state.json is inconsistent; use --redo ${stage})`);
  return c;
}

/** Paths inside OUT. */
export function quickstartPaths(out: string) {
  const o = path.resolve(out);
  return {
    out: o,
    state: path.join(o, "state.json"),
    world: path.join(o, "world"),
    index: path.join(o, "index"),
    data: path.join(o, "data"),
    pretrainText: path.join(o, "data", "pretrain.jsonl"),
    /** The run's prompts (R1-Searcher, R1-Searcher++, the baselines); commands.sh reads its templates from here. */
    prompts: path.join(o, "data", "prompts.json"),
    tokenizerDir: path.join(o, "tokenizer"),
    tokenizer: path.join(o, "tokenizer", "tokenizer.json"),
    runs: path.join(o, "runs"),
    run: (name: string) => path.join(o, "runs", name),
    configs: path.join(o, "configs"),
    config: (name: string) => path.join(o, "configs", `${name}.json`),
    commands: path.join(o, "configs", "commands.sh"),
    plusData: path.join(o, "data", "plus-cold-start.jsonl"),
    plusSampled: path.join(o, "data", "plus-rejection-sampled.jsonl"),
    /** Rejection-sampling counts summed over every attempt of the plus-data stage (a resumed stage adds to them). */
    plusSampledCounts: path.join(o, "data", "plus-rejection-sampled.counts.json"),
    rsSingleQuestions: path.join(o, "data", "plus-rs-single-hop.jsonl"),
    /** R1-Searcher++ RL questions: the RL train questions + `plus.rlSingle` single-hop questions. */
    plusRlQuestions: path.join(o, "data", "plus-rl-train.jsonl"),
    eval: path.join(o, "eval"),
    evalFile: (name: string) => path.join(o, "eval", `${name}.results.jsonl`),
    results: path.join(o, "results.json"),
    report: path.join(o, "report.html"),
    trainQuestions: path.join(o, "world", "train.jsonl"),
    /** Train questions for RL and rejection sampling: the train split minus those the pre-training text answers. */
    rlQuestions: path.join(o, "data", "rl-train.jsonl"),
    testQuestions: path.join(o, "world", "test.jsonl"),
  };
}
export type QuickstartPaths = ReturnType<typeof quickstartPaths>;
