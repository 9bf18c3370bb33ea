/**
 * OUT/configs/commands.sh of a quickstart run: every stage as a `searchrl` command, paths relative to OUT.
 */
import path from "node:path";
import {
  finalCheckpoint,
  QUICKSTART_SYSTEMS,
  QUICKSTART_SYSTEM_SPECS,
  type QuickstartPaths,
  type QuickstartStage,
  type QuickstartState,
  type QuickstartSystem,
} from "./layout.js";
import type { QuickstartConfig } from "./presets.js";
import { atomicWriteFile } from "../util/fsutil.js";

/** The prompts of data/prompts.json a command can pass as its template. */
export type PromptKey = "r1" | "plus" | "direct" | "naiveRag";

/** The entry of data/prompts.json (`QuickstartPrompts` of data.ts) a system is evaluated with. */
export function systemPromptKey(system: QuickstartSystem): PromptKey {
  const spec = QUICKSTART_SYSTEM_SPECS[system];
  if (spec.mode === "no-retrieval") return "direct";
  if (spec.mode === "naive-rag") return "naiveRag";
  return spec.protocol === "r1-searcher-plus" ? "plus" : "r1";
}

/**
 * OUT/configs/commands.sh: every stage as a CLI command (paths relative to OUT). Every line runs as written from OUT,
 * the commented `serve agent` lines too once their `# ` is removed: the multi-line prompt templates are read from
 * data/prompts.json by a `$(node -p …)` substitution instead of being spelled out.
 */
export async function writeCommands(cfg: QuickstartConfig, p: QuickstartPaths, state: QuickstartState): Promise<void> {
  const rel = (x: string) => path.relative(p.out, x) || ".";
  const ck = (s: QuickstartStage) => rel(finalCheckpoint(state, s));
  const promptsFile = rel(p.prompts);
  const template = (key: PromptKey) => `"$(node -p 'require("./${promptsFile}").${key}')"`;
  const evalCmd = (name: QuickstartSystem) => {
    const spec = QUICKSTART_SYSTEM_SPECS[name];
    return (
      `npx searchrl eval --dataset world/test.jsonl --llm ${ck(spec.from)} --retriever index --protocol ${spec.protocol} --mode ${spec.mode} ` +
      `--template ${template(systemPromptKey(name))} --top-k ${cfg.k} --max-tokens ${cfg.segmentTokens} --max-searches ${cfg.maxRetrievals}` +
      `${cfg.eval.limit > 0 ? ` --limit ${cfg.eval.limit}` : ""} --out eval/${name}.results.jsonl`
    );
  };
  const serve = (stage: QuickstartStage, protocol: "r1-searcher" | "r1-searcher-plus") =>
    `# npx searchrl serve agent --llm ${ck(stage)} --retriever index --protocol ${protocol} ` +
    `--template ${template(protocol === "r1-searcher-plus" ? "plus" : "r1")} ` +
    `--top-k ${cfg.k} --segment-tokens ${cfg.segmentTokens} --max-searches ${cfg.maxRetrievals} --runs .`;
  const lines = [
    "#!/bin/sh",
    "# The quickstart's stages as searchrl commands (run from the quickstart folder). The world and the pre-training",
    "# text are written by `searchrl quickstart` (world/world.json regenerates the world; data/pretrain.jsonl holds the mix).",
    `# The prompt templates are read from ${promptsFile} (they span several lines).`,
    "set -e",
    `npx searchrl index build --corpus world/corpus.tsv --out index --bm25`,
    `npx searchrl sft --config configs/pretrain.json`,
    `npx searchrl train --config configs/r1-stage1.json`,
    `npx searchrl train --config configs/r1-stage2.json`,
    ...[
      ["data/rl-train.jsonl", ` --limit ${cfg.plus.rsQuestions}`],
      ...(cfg.plus.rsSingle > 0 ? [["data/plus-rs-single-hop.jsonl", ""]] : []),
    ].map(
      ([data, limit]) =>
        `npx searchrl data rejection-sample --llm ${ck("pretrain")} --retriever index --protocol r1-searcher-plus --template ${template("plus")} ` +
        `--data ${data}${limit} --n ${cfg.plus.rsSamples} --max-per-question 0 ` +
        `--k ${cfg.k} --max-tokens ${cfg.segmentTokens} --max-retrievals ${cfg.maxRetrievals} --max-answer-words 10 --seed ${cfg.seed}` +
        `${cfg.plus.rsRequireRetrieval ? " --require-retrieval" : ""} --out data/plus-rejection-sampled.jsonl`,
    ),
    `# data/plus-cold-start.jsonl = per question the ${cfg.plus.rsKeepPerQuestion} passing sample(s) ${cfg.plus.rsSelect === "fewest-retrievals" ? "with the fewest retrievals" : "first sampled"}${cfg.plus.rsGroundedRecalls ? " among those whose recalls are grounded (taught facts or facts of documents retrieved before)" : ""} (selection done by the quickstart)`,
    `npx searchrl sft --config configs/plus-sft.json`,
    `npx searchrl train --config configs/plus-rl.json`,
    ...QUICKSTART_SYSTEMS.map(evalCmd),
    "# serve a trained agent with the web UI (remove the '# ' and run from the quickstart folder; ask in the browser at",
    "# http://127.0.0.1:8000/, the run's curves are under Runs):",
    serve("r1-stage2", "r1-searcher"),
    serve("plus-rl", "r1-searcher-plus"),
    "",
  ];
  await atomicWriteFile(p.commands, lines.join("\n"));
}
