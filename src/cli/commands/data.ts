/**
 * `searchrl data world | export | difficulty`: the synthetic world, exports for veRL / OpenRLHF / FlashRAG, and
 * difficulty bucketing. (`data rejection-sample` is registered by its own command file.)
 */
import path from "node:path";
import { Option, type Command } from "commander";
import { z } from "zod";
import {
  DIFFICULTY_BUCKETS,
  DATA_EXPORT_FORMATS as EXPORT_FORMATS,
  runDifficulty,
  writeBucketFiles,
  WORLD_PRESET_NAMES,
  checkWorld,
  generateWorld,
  readQuestionRows,
  splitFromFileName,
  worldConfig,
  writeExport,
  writeWorldDir,
  type DataExportFormat as ExportFormat,
} from "../../data/index.js";
import { createBackend } from "../../llm/index.js";
import { PROTOCOL_NAMES, getProtocol } from "../../protocol/index.js";
import { openRetriever } from "../../retrieval/index.js";
import type { ChatTemplateName, PromptOptions } from "../../protocol/types.js";
import type { RegisterCommands } from "../groups.js";

/** Validate parsed CLI options; a failure names the option. */
export function parseOptions<T extends z.ZodType>(schema: T, raw: unknown): z.infer<T> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const iss = r.error.issues[0];
    throw new Error(
      `--${String(iss?.path[0] ?? "?").replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}: ${iss?.message}`,
    );
  }
  return r.data;
}

const num = (what: string) => z.coerce.number({ error: `expected ${what}` });
const int = (what: string) => num(what).int(`expected ${what}`);

const WorldOpts = z.object({
  preset: z.enum(WORLD_PRESET_NAMES as [string, ...string[]], {
    error: `expected one of ${WORLD_PRESET_NAMES.join(", ")}`,
  }),
  seed: int("an integer").nonnegative("must be >= 0"),
  out: z.string().min(1),
  internalShare: num("a number in [0, 1]").min(0).max(1).optional(),
  questions: z
    .string()
    .regex(/^\d+,\d+,\d+$/, "expected TRAIN,DEV,TEST counts, e.g. 400,60,200")
    .transform((s) => {
      const [train, dev, test] = s.split(",").map(Number);
      return { train, dev, test };
    })
    .optional(),
  distractors: num("a number in [0, 3]").min(0).max(3).optional(),
  priorCount: int("an integer").nonnegative().optional(),
  priorProtocols: z.string().optional(),
  k: int("an integer").min(1).max(20),
  quiet: z.boolean().optional(),
});

const ExportOpts = z.object({
  format: z.enum(EXPORT_FORMATS, { error: `expected one of ${EXPORT_FORMATS.join(", ")}` }),
  in: z.string().min(1),
  out: z.string().min(1),
  protocol: z.string(),
  variant: z.string().optional(),
  chatTemplate: z.enum(["none", "qwen2.5", "llama3.1"]).optional(),
  dataSource: z.string().min(1).optional(),
  split: z.string().min(1).optional(),
  ability: z.string().min(1).optional(),
  limit: int("an integer").positive().optional(),
  verlTools: z.boolean().optional(),
});

const DifficultyOpts = z
  .object({
    llm: z.string().min(1),
    retriever: z.string().min(1),
    protocol: z.string(),
    data: z.string().min(1),
    n: int("an integer").positive(),
    out: z.string().min(1),
    model: z.string().optional(),
    tokenizer: z.string().optional(),
    variant: z.string().optional(),
    chatTemplate: z.enum(["none", "qwen2.5", "llama3.1"]).optional(),
    easyBelow: num("a number").positive(),
    hardAbove: num("a number").positive(),
    estimator: z.enum(["first", "expected"]),
    metric: z.enum(["cover-em", "em"]),
    temperature: num("a number").min(0),
    topP: num("a number in (0, 1]").gt(0).max(1),
    k: int("an integer").min(1).max(100),
    maxSearches: int("an integer").min(0),
    segmentMaxTokens: int("an integer").positive(),
    seed: int("an integer").optional(),
    limit: int("an integer").positive().optional(),
    bucketsDir: z.string().optional(),
    concurrency: int("an integer").positive().optional(),
    quiet: z.boolean().optional(),
  })
  .refine((o) => o.easyBelow <= o.hardAbove + 1, { message: "must be at most --hard-above + 1", path: ["easyBelow"] });

function promptOptions(o: { variant?: string; chatTemplate?: string }): PromptOptions | undefined {
  if (!o.variant && !o.chatTemplate) return undefined;
  return {
    ...(o.variant ? { variant: o.variant } : {}),
    ...(o.chatTemplate ? { chatTemplate: o.chatTemplate as ChatTemplateName } : {}),
  };
}

function worldCommand(data: Command): void {
  data
    .command("world")
    .description("generate the synthetic world: corpus, question splits, pre-training and protocol-prior text")
    .addOption(new Option("--preset <name>", "world size").choices(WORLD_PRESET_NAMES).default("small"))
    .option("--seed <n>", "random seed", "1")
    .requiredOption("--out <dir>", "output directory (files are written into it; other files there are kept)")
    .option("--internal-share <x>", "share of famous entities whose facts are internal (pre-training) knowledge")
    .option("--questions <train,dev,test>", "questions per split (upper bounds)")
    .option("--distractors <x>", "distractor passages per entity")
    .option("--prior-count <n>", "worked examples per protocol-prior file (default: one per eligible fact)")
    .option(
      "--prior-protocols <names>",
      "comma-separated protocols for prior files, or 'none'",
      "r1-searcher,r1-searcher-plus",
    )
    .option("--k <n>", "passages per query in prior examples and length estimates", "3")
    .option("--quiet", "print only the output directory")
    .action(async (raw: Record<string, unknown>) => {
      const o = parseOptions(WorldOpts, raw);
      const cfg = worldConfig(o.preset, o.seed, {
        ...(o.internalShare !== undefined ? { internalShare: o.internalShare } : {}),
        ...(o.questions ? { questions: o.questions } : {}),
        ...(o.distractors !== undefined ? { distractorRate: o.distractors } : {}),
      });
      const priorProtocols =
        !o.priorProtocols || o.priorProtocols === "none" ? [] : o.priorProtocols.split(",").map((s) => s.trim());
      for (const p of priorProtocols) getProtocol(p);
      const t0 = performance.now();
      const world = generateWorld(cfg);
      const genMs = performance.now() - t0;
      const problems = checkWorld(world);
      if (problems.length)
        throw new Error(`generated world failed its checks:\n  ${problems.slice(0, 10).join("\n  ")}`);
      const summary = await writeWorldDir(world, o.out, { priorProtocols, priorCount: o.priorCount, k: o.k });
      if (o.quiet) {
        process.stdout.write(`${path.resolve(o.out)}\n`);
        return;
      }
      const s = summary.stats;
      const lines = [
        `world ${cfg.preset} seed ${cfg.seed} -> ${path.resolve(o.out)} (generated in ${genMs.toFixed(0)} ms)`,
        `entities ${Object.entries(s.entities)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}; famous ${s.famousEntities}`,
        `facts ${s.facts} (internal ${s.internalFacts}, share ${s.internalFactShare}); passages ${s.passages.entity} + ${s.passages.distractor} distractors, ~${s.passages.meanTokens} tokens each`,
      ];
      for (const [split, q] of Object.entries(s.questions)) {
        lines.push(
          `${split}: ${q.total} questions (${Object.entries(q.byKind)
            .map(([k, v]) => `${k} ${v}`)
            .join(
              ", ",
            )}); ideal retrievals ${q.meanIdealRetrievals} vs search-all ${q.meanSearchAllRetrievals}; internal steps ${q.internalStepShare}`,
        );
      }
      for (const [name, l] of Object.entries(summary.lengths)) {
        lines.push(
          `${name}: prompt ~${l.promptTokens} tokens, ideal response ~${l.idealResponseTokens.mean} (max ${l.idealResponseTokens.max}) with k=${l.k}`,
        );
      }
      lines.push(`files: ${Object.values(summary.files).join(", ")}`);
      process.stdout.write(lines.join("\n") + "\n");
    });
}

function exportCommand(data: Command): void {
  data
    .command("export")
    .description(
      "export a question file (upstream idx/question/answer JSONL, a world split, FlashRAG) for veRL, OpenRLHF or FlashRAG",
    )
    .addOption(new Option("--format <name>", "output format").choices([...EXPORT_FORMATS]).makeOptionMandatory())
    .requiredOption("--in <file>", "input JSONL")
    .requiredOption("--out <file>", "output file (verl: .parquet, or .jsonl for JSON rows)")
    .addOption(
      new Option("--protocol <name>", "response protocol whose prompt is written")
        .choices([...PROTOCOL_NAMES])
        .default("r1-searcher"),
    )
    .option("--variant <name>", "prompt variant of the protocol (e.g. train-base, eval-v0)")
    .addOption(
      new Option("--chat-template <name>", "chat template for chat variants").choices(["none", "qwen2.5", "llama3.1"]),
    )
    .option(
      "--data-source <name>",
      "veRL data_source (default: searchrl_world for world files, else the input file name)",
    )
    .option("--split <name>", "split written into the rows (default: the row's, else from the file name, else train)")
    .option("--ability <name>", "veRL ability", "fact-reasoning")
    .option("--limit <n>", "export only the first N rows")
    .option(
      "--verl-tools",
      "verl: add the multi-turn SearchTool fields (extra_info.need_tools_kwargs, tools_kwargs.search)",
    )
    .action(async (raw: Record<string, unknown>) => {
      const o = parseOptions(ExportOpts, raw);
      const protocol = getProtocol(o.protocol);
      const rows = await readQuestionRows(o.in, o.limit ?? Infinity);
      const isWorld = rows.length > 0 && rows[0].metadata !== undefined && "steps" in rows[0].metadata;
      const dataSource = o.dataSource ?? (isWorld ? "searchrl_world" : path.basename(o.in).replace(/\.jsonl?$/i, ""));
      const po = promptOptions(o);
      const n = await writeExport(o.format as ExportFormat, rows, o.out, {
        protocol,
        ...(po ? { promptOptions: po } : {}),
        dataSource,
        ...(o.split ? { split: o.split } : {}),
        defaultSplit: splitFromFileName(o.in) ?? "train",
        ability: o.ability,
        verlTools: o.verlTools,
      });
      process.stdout.write(
        `wrote ${n} ${o.format} rows to ${o.out} (protocol ${protocol.name}, data_source ${dataSource})\n`,
      );
    });
}

function difficultyCommand(data: Command): void {
  data
    .command("difficulty")
    .description(
      "sample N rollouts per question and bucket the questions by rollouts needed for a correct answer (easy/medium/hard/unsolved)",
    )
    .requiredOption(
      "--llm <spec>",
      "LLM backend: http(s)://host:port[/v1][#model], a .gguf file, or a built-in checkpoint directory",
    )
    .requiredOption("--retriever <spec>", "retriever: an index directory or an http(s) retrieval server URL")
    .addOption(new Option("--protocol <name>", "response protocol").choices([...PROTOCOL_NAMES]).default("r1-searcher"))
    .requiredOption("--data <file>", "questions (idx/question/answer JSONL, a world split, FlashRAG)")
    .option("--n <n>", "rollouts per question (must exceed --hard-above to tell hard from unsolved)", "32")
    .requiredOption("--out <file>", "per-question records (JSONL, appended; questions already there are skipped)")
    .option("--model <name>", "model name for an HTTP backend (instead of #name in --llm)")
    .option("--tokenizer <path>", "tokenizer.json (or a folder with one) for an HTTP backend")
    .option("--variant <name>", "prompt variant of the protocol")
    .addOption(
      new Option("--chat-template <name>", "chat template for chat variants").choices(["none", "qwen2.5", "llama3.1"]),
    )
    .option("--easy-below <n>", "needed < N is easy (upstream 10)", "10")
    .option("--hard-above <n>", "needed > N is hard (upstream 20); otherwise medium", "20")
    .addOption(
      new Option("--estimator <name>", "first = index of the first correct sample; expected = N / correct")
        .choices(["first", "expected"])
        .default("first"),
    )
    .addOption(new Option("--metric <name>", "answer check").choices(["cover-em", "em"]).default("cover-em"))
    .option("--temperature <x>", "sampling temperature", "1")
    .option("--top-p <x>", "nucleus sampling", "0.95")
    .option("--k <n>", "passages per query", "3")
    .option("--max-searches <n>", "retrievals per rollout", "8")
    .option("--segment-max-tokens <n>", "new tokens per generation segment", "512")
    .option("--seed <n>", "sampling seed (per sample and turn)")
    .option("--limit <n>", "only the first N questions")
    .option(
      "--buckets-dir <dir>",
      "also write the question rows of each bucket to DIR/{easy,medium,hard,unsolved}.jsonl",
    )
    .option("--concurrency <n>", "trajectories in flight")
    .option("--quiet", "no progress line")
    .action(async (raw: Record<string, unknown>) => {
      const o = parseOptions(DifficultyOpts, raw);
      const protocol = getProtocol(o.protocol);
      const rows = await readQuestionRows(o.data, o.limit ?? Infinity);
      if (rows.length === 0) throw new Error(`${o.data} has no question rows`);
      if (o.n <= o.hardAbove) {
        process.stderr.write(
          `note: --n ${o.n} <= --hard-above ${o.hardAbove}: no question can be "hard", unsolved ones are "unsolved"\n`,
        );
      }
      const backend = await createBackend(o.llm, {
        ...(o.model ? { model: o.model } : {}),
        ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
        onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
      });
      try {
        const retriever = await openRetriever(o.retriever);
        try {
          const po = promptOptions(o);
          const failures: string[] = [];
          const records = await runDifficulty({
            rows,
            protocol,
            backend,
            retriever,
            n: o.n,
            thresholds: { easyBelow: o.easyBelow, hardAbove: o.hardAbove },
            estimator: o.estimator,
            metric: o.metric,
            sampling: { temperature: o.temperature, topP: o.topP, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
            limits: { topK: o.k, maxSearches: o.maxSearches, segmentMaxTokens: o.segmentMaxTokens },
            ...(po ? { promptOptions: po } : {}),
            ...(o.concurrency ? { concurrency: o.concurrency } : {}),
            out: o.out,
            progress: !o.quiet,
            onQuestionFailed: (row, error) => failures.push(`question ${String(row.idx)}: ${error}`),
          });
          const counts = o.bucketsDir ? await writeBucketFiles(o.bucketsDir, rows, records) : null;
          const c =
            counts ??
            Object.fromEntries(DIFFICULTY_BUCKETS.map((b) => [b, records.filter((r) => r.bucket === b).length]));
          process.stdout.write(
            `${records.length} questions, ${o.n} rollouts each: ${DIFFICULTY_BUCKETS.map((b) => `${b} ${c[b]}`).join(", ")} -> ${o.out}` +
              (o.bucketsDir ? ` and ${o.bucketsDir}/` : "") +
              "\n",
          );
          if (failures.length > 0) {
            for (const f of failures.slice(0, 5)) process.stderr.write(`warning: ${f}\n`);
            throw new Error(
              `data difficulty: ${failures.length} of ${rows.length} question(s) failed and were not written to ${o.out}; run the same command again to retry them`,
            );
          }
        } finally {
          await retriever.close();
        }
      } finally {
        await backend.close();
      }
    });
}

export const register: RegisterCommands = (_program, groups) => {
  worldCommand(groups.data);
  exportCommand(groups.data);
  difficultyCommand(groups.data);
};
