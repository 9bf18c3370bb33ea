/**
 * `searchrl train`, `searchrl sft` and `searchrl data rejection-sample`: thin wrappers over src/train (config loading,
 * Ctrl-C → stop after the current step with a checkpoint, a summary line on stdout).
 */
import { Option, type Command } from "commander";
import { z } from "zod";
import { createBackend } from "../../llm/factory.js";
import { getProtocol } from "../../protocol/index.js";
import { openRetriever } from "../../retrieval/factory.js";
import {
  loadQuestions,
  loadTrainConfig,
  rejectionSample,
  runRl,
  runSft,
  type RlConfig,
  type SftConfig,
  type TrainResult,
} from "../../train/index.js";
import type { RegisterCommands } from "../groups.js";

const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${name} must be a non-negative integer (got ${JSON.stringify(v)})`);
  return n;
};
const numArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number (got ${JSON.stringify(v)})`);
  return n;
};

interface RunFlags {
  config: string;
  resume?: boolean;
  runDir?: string;
  maxSteps?: number;
  printConfig?: boolean;
  quiet?: boolean;
}

/** Abort on the first SIGINT/SIGTERM (stop after the current step); a second one exits at once. */
function stopSignal(log: (s: string) => void): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130);
    log(`${sig}: stopping after the current step (a checkpoint will be written); press again to exit now`);
    ac.abort();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}

function summary(res: TrainResult): string {
  return JSON.stringify({
    runDir: res.runDir,
    steps: res.steps,
    checkpoint: res.checkpoint,
    stoppedEarly: res.stoppedEarly,
    final: res.final,
  });
}

async function runCommand(kind: "rl" | "sft", flags: RunFlags): Promise<void> {
  const cfg = await loadTrainConfig(flags.config, kind);
  if (flags.maxSteps !== undefined) cfg.run.maxSteps = flags.maxSteps;
  if (flags.runDir) cfg.runDir = flags.runDir;
  if (flags.printConfig) {
    process.stdout.write(JSON.stringify(cfg, null, 2) + "\n");
    return;
  }
  // notices (resume, warnings) are printed even with --quiet, which only hides the progress line
  const log = (s: string) => void process.stderr.write(s + "\n");
  const stop = stopSignal(log);
  try {
    const hooks = { resume: Boolean(flags.resume), quiet: Boolean(flags.quiet), signal: stop.signal, onLog: log };
    const res = kind === "rl" ? await runRl(cfg as RlConfig, {}, hooks) : await runSft(cfg as SftConfig, {}, hooks);
    process.stdout.write(summary(res) + "\n");
  } finally {
    stop.dispose();
  }
}

function addRunOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--config <file>", "training config (YAML or JSON): a preset name plus overrides")
    .option("--resume", "continue from RUN_DIR/checkpoints/latest")
    .option("--run-dir <dir>", "run directory (overrides runDir of the config)")
    .option("--max-steps <n>", "stop after this many steps (overrides run.maxSteps)", intArg("--max-steps"))
    .option("--print-config", "print the resolved config (preset + overrides + defaults) and exit")
    .option("--quiet", "no progress line");
}

const RejectionFlags = z.object({
  llm: z.string().min(1),
  retriever: z.string().min(1),
  protocol: z.string().min(1),
  data: z.string().min(1),
  n: z.number().int().positive(),
  out: z.string().min(1),
  k: z.number().int().positive().optional(),
  temperature: z.number().min(0).optional(),
  topP: z.number().gt(0).max(1).optional(),
  maxTokens: z.number().int().positive().optional(),
  maxRetrievals: z.number().int().nonnegative().optional(),
  maxPerQuestion: z.number().int().nonnegative().optional(),
  requireRetrieval: z.boolean().optional(),
  requireInternal: z.boolean().optional(),
  maxAnswerWords: z.number().int().nonnegative().optional(),
  seed: z.number().int().nonnegative().optional(),
  limit: z.number().int().positive().optional(),
  variant: z.string().optional(),
  chatTemplate: z.enum(["none", "qwen2.5", "llama3.1"]).optional(),
  template: z.string().optional(),
  tokenizer: z.string().optional(),
  questionKey: z.string().default("question"),
  answerKey: z.string().default("answer"),
  idKey: z.string().default("idx"),
  batchQuestions: z.number().int().positive().optional(),
  quiet: z.boolean().optional(),
});

export const register: RegisterCommands = (program, groups) => {
  addRunOptions(
    program.command("train").description("RL training with retrieval (R1-Searcher REINFORCE++/GRPO, R1-Searcher++)"),
  ).action(async (flags: RunFlags) => runCommand("rl", flags));
  addRunOptions(
    program.command("sft").description("supervised fine-tuning / pre-training (retrieved documents masked)"),
  ).action(async (flags: RunFlags) => runCommand("sft", flags));

  groups.data
    .command("rejection-sample")
    .description("sample N trajectories per question, keep the correct and well-formed ones (SFT cold-start data)")
    .requiredOption(
      "--llm <spec>",
      "LLM backend: http(s)://host:port/v1#model, model.gguf, or a built-in checkpoint folder",
    )
    .requiredOption("--retriever <spec>", "retriever: an index folder, http://host:port/queries, web:PROVIDER")
    .requiredOption("--protocol <name>", "response protocol (r1-searcher, r1-searcher-plus, search-r1)")
    .requiredOption("--data <file>", "questions JSONL (question / answer / idx)")
    .requiredOption("--n <n>", "samples per question", intArg("--n"))
    .requiredOption("--out <file>", "output JSONL (appended; questions already in it are skipped)")
    .option("--k <n>", "passages per query (default 3)", intArg("--k"))
    .option("--temperature <t>", "sampling temperature (default 1)", numArg("--temperature"))
    .option("--top-p <p>", "nucleus sampling (default 0.95)", numArg("--top-p"))
    .option("--max-tokens <n>", "tokens per generation segment (default 512)", intArg("--max-tokens"))
    .option("--max-retrievals <n>", "retrievals per trajectory (default 8)", intArg("--max-retrievals"))
    .option(
      "--max-per-question <n>",
      "passing samples kept per question, 0 = all (default 1)",
      intArg("--max-per-question"),
    )
    .option("--require-retrieval", "keep only samples that searched at least once")
    .option("--require-internal", "keep only samples with an internal-knowledge block (R1-Searcher++)")
    .option("--max-answer-words <n>", "reject answers longer than this (0 = no cap)", intArg("--max-answer-words"))
    .option("--seed <n>", "sampling seed", intArg("--seed"))
    .option("--limit <n>", "first N questions only", intArg("--limit"))
    .option("--variant <name>", "prompt variant of the protocol")
    .addOption(new Option("--chat-template <name>", "chat template").choices(["none", "qwen2.5", "llama3.1"]))
    .option("--template <text>", "whole prompt template ({question} substituted)")
    .option("--tokenizer <path>", "tokenizer.json for an HTTP backend (exact token ids)")
    .option("--question-key <key>", "question field", "question")
    .option("--answer-key <key>", "gold answer field", "answer")
    .option("--id-key <key>", "question id field", "idx")
    .option("--batch-questions <n>", "questions rolled out together (default 8)", intArg("--batch-questions"))
    .option("--quiet", "no progress line")
    .action(async (raw: Record<string, unknown>) => {
      const parsed = RejectionFlags.safeParse(raw);
      if (!parsed.success) {
        throw new Error(
          `data rejection-sample: ${parsed.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; ")}`,
        );
      }
      const f = parsed.data;
      const protocol = getProtocol(f.protocol);
      const questions = await loadQuestions(f.data, {
        questionKey: f.questionKey,
        answerKey: f.answerKey,
        idKey: f.idKey,
        limit: f.limit,
      });
      const backend = await createBackend(f.llm, f.tokenizer ? { tokenizer: f.tokenizer } : {});
      const retriever = await openRetriever(f.retriever);
      try {
        const settings = {
          llm: f.llm,
          retriever: f.retriever,
          protocol: f.protocol,
          n: f.n,
          temperature: f.temperature ?? 1,
          topP: f.topP ?? 0.95,
          k: f.k ?? 3,
          maxPerQuestion: f.maxPerQuestion ?? 1,
          requireRetrieval: Boolean(f.requireRetrieval),
          requireInternal: Boolean(f.requireInternal),
          maxAnswerWords: f.maxAnswerWords ?? 0,
          seed: f.seed,
        };
        const s = await rejectionSample({
          backend,
          retriever,
          protocol,
          questions,
          n: f.n,
          out: f.out,
          promptOptions: {
            ...(f.variant ? { variant: f.variant } : {}),
            ...(f.chatTemplate ? { chatTemplate: f.chatTemplate } : {}),
            ...(f.template !== undefined ? { template: f.template } : {}),
          },
          temperature: settings.temperature,
          topP: settings.topP,
          k: settings.k,
          maxTokensPerSegment: f.maxTokens,
          maxRetrievals: f.maxRetrievals,
          maxPerQuestion: settings.maxPerQuestion,
          requireRetrieval: settings.requireRetrieval,
          requireInternal: settings.requireInternal,
          maxAnswerWords: settings.maxAnswerWords,
          seed: f.seed,
          batchQuestions: f.batchQuestions,
          quiet: f.quiet,
        });
        process.stdout.write(JSON.stringify({ ...s, settings }) + "\n");
        if (s.failed > 0) {
          for (const f of s.failures) process.stderr.write(`warning: question ${f}\n`);
          throw new Error(
            `data rejection-sample: ${s.failed} of ${s.questions - s.skipped} question(s) failed and were not written to ${f.out}; run the same command again to retry them`,
          );
        }
      } finally {
        await retriever.close();
        await backend.close();
      }
    });
};
