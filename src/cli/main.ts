#!/usr/bin/env node
/**
 * The `searchrl` command line. Each command group lives in its own file under `commands/` and registers itself;
 * this file only wires them together and turns thrown errors into a clear message and exit code 1.
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import type { CommandGroups } from "./groups.js";
import { register as registerMetrics } from "./commands/metrics.js";
import { register as registerServeReward } from "./commands/serve-reward.js";
import { register as registerCorpus } from "./commands/corpus.js";
import { register as registerIndex } from "./commands/index-build.js";
import { register as registerSearch } from "./commands/search.js";
import { register as registerServeRetrieval } from "./commands/serve-retrieval.js";
import { register as registerModel } from "./commands/model.js";
import { register as registerEval } from "./commands/eval.js";
import { register as registerTrain } from "./commands/train.js";
import { register as registerData } from "./commands/data.js";
import { register as registerQuickstart } from "./commands/quickstart.js";
import { register as registerServeAgent } from "./commands/serve-agent.js";
import { register as registerUi } from "./commands/ui.js";

export function buildProgram(): Command {
  const program = new Command("searchrl")
    .description(
      "Train, evaluate and serve LLMs that call a search engine while they reason (R1-Searcher, R1-Searcher++).",
    )
    .version(VERSION)
    .option("--debug", "print stack traces on errors")
    .showHelpAfterError();
  const groups: CommandGroups = {
    serve: program.command("serve").description("HTTP servers: reward, retrieval, agent"),
    data: program
      .command("data")
      .description("datasets: synthetic world, export, difficulty bucketing, rejection sampling"),
    corpus: program.command("corpus").description("corpus ingestion (KILT split, readers)"),
    index: program.command("index").description("build search indexes"),
    model: program.command("model").description("the built-in model: tokenizer, checkpoints, GGUF export"),
  };
  for (const register of [
    registerMetrics,
    registerServeReward,
    registerCorpus,
    registerIndex,
    registerSearch,
    registerServeRetrieval,
    registerModel,
    registerEval,
    registerTrain,
    registerData,
    registerQuickstart,
    registerServeAgent,
    registerUi,
  ]) {
    register(program, groups);
  }
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const debug = argv.includes("--debug");
    process.stderr.write(`searchrl: ${err instanceof Error ? (debug ? err.stack : err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.env.SEARCHRL_CLI_ENTRY === "1") {
  await main();
}
