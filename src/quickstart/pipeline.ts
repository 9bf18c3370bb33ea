/**
 * `searchrl quickstart`: the whole method end to end on one CPU, with real training at every stage.
 *
 *   world → BM25 index (+ ideal-query check) → pre-training text (world + labelled protocol prior) → tokenizer →
 *   pre-training of the built-in model → memory probe → R1-Searcher stage 1 (retrieval + format reward) → stage 2
 *   (F1 answer reward with format penalty) → R1-Searcher++ (rejection sampling with the model itself → SFT cold start →
 *   RL with the group reward and the memorization loss) → evaluation of every stage and the baselines on held-out
 *   questions → results.json + report.html.
 *
 * Every stage writes its resolved config to OUT/configs/ (runnable with `searchrl sft|train --config`, the other
 * commands are in OUT/configs/commands.sh) and marks itself done in OUT/state.json. Running the same command again
 * skips finished stages and resumes an interrupted training stage from its last checkpoint; evaluations resume from
 * their results files.
 */
import { existsSync, promises as fsp } from "node:fs";
import path from "node:path";
import { generateWorld, worldConfig, writeWorldDir, type World } from "../data/world/index.js";
import { evaluate, type EvalSummary } from "../eval/evaluate.js";
import { createBuiltinBackend } from "../llm/builtin.js";
import { trainBpe } from "../model/tokenizer/bpe.js";
import { loadTokenizer } from "../model/tokenizer/hf.js";
import { getProtocol } from "../protocol/index.js";
import type { ResponseProtocol } from "../protocol/types.js";
import { buildIndex } from "../retrieval/build.js";
import { openRetriever } from "../retrieval/factory.js";
import type { Retriever } from "../retrieval/types.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { defaultWorkerCount } from "../model/parallel.js";
import { Transformer } from "../model/transformer.js";
import {
  loadQuestions,
  rejectionSample,
  resolveRlConfig,
  resolveSftConfig,
  runRl,
  runSft,
  type TrainResult,
} from "../train/index.js";
import type { Tokenizer } from "../util/types.js";
import { parallelSetup, type ParallelSetup } from "./parallel-policy.js";
import { atomicWriteFile, atomicWriteJson, readJson } from "../util/fsutil.js";
import { readJsonlAll, writeJsonl } from "../util/jsonl.js";
import { formatDuration } from "../util/progress.js";
import {
  buildPretrainMix,
  idealQueryHitRates,
  idealQueryResults,
  probeQuestions,
  protocolTags,
  singleHopRsQuestions,
  groundedRecalls,
  quickstartPrompts,
  splitQuestions,
  tokenizerTexts,
  type QuickstartPrompts,
} from "./data.js";
import {
  mergeQuickstartConfig,
  parseQuickstartConfig,
  quickstartConfig,
  type QuickstartConfig,
  type QuickstartRlStage,
} from "./presets.js";
import { systemPromptKey, writeCommands } from "./commands.js";
import {
  finalCheckpoint,
  QUICKSTART_STAGES,
  QUICKSTART_SYSTEMS,
  QUICKSTART_SYSTEM_SPECS,
  quickstartPaths,
  type QuickstartPaths,
  type QuickstartStage,
  type QuickstartState,
} from "./layout.js";
import { buildResults, type QuickstartResults } from "./results.js";
import { renderReportHtml } from "./report.js";

export interface QuickstartOptions {
  out: string;
  /** Preset name (default small); ignored when OUT already holds a run (its config is used). */
  preset?: string;
  seed?: number;
  /** Overrides deep-merged over the preset (a `--config` file). */
  overrides?: Record<string, unknown>;
  /** Stop after this stage (the rest runs on the next call). */
  until?: QuickstartStage;
  /** Re-run these stages (and everything after them). */
  redo?: QuickstartStage[];
  /** Print no progress lines (the stage log still goes to `log`). */
  quiet?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface QuickstartRun {
  out: string;
  state: QuickstartState;
  results: QuickstartResults | null;
  /** True when stopped before the report (--until or a signal). */
  stopped: boolean;
}

async function readState(file: string): Promise<QuickstartState | null> {
  if (!existsSync(file)) return null;
  const s = await readJson<QuickstartState>(file);
  if (s.format !== "searchrl-quickstart") throw new Error(`${file} is not a quickstart state file`);
  s.config = parseQuickstartConfig(s.config);
  return s;
}

/** Rewrite absolute paths of a training config relative to the configs folder (so OUT can be moved). */
function relativeConfig(cfg: Record<string, unknown>, configsDir: string): Record<string, unknown> {
  const rel = (p: unknown) => (typeof p === "string" && path.isAbsolute(p) ? path.relative(configsDir, p) || "." : p);
  const c = structuredClone(cfg) as Record<string, Record<string, unknown> | unknown>;
  if (c.runDir) c.runDir = rel(c.runDir);
  for (const [obj, keys] of [
    ["data", ["path"]],
    ["model", ["init", "reference", "tokenizer"]],
    ["retriever", ["spec"]],
  ] as const) {
    const o = c[obj] as Record<string, unknown> | undefined;
    if (!o) continue;
    for (const k of keys) if (o[k] !== undefined) o[k] = rel(o[k]);
  }
  return c as Record<string, unknown>;
}

/** Everything the stages share once the early stages ran. */
interface Ctx {
  cfg: QuickstartConfig;
  p: QuickstartPaths;
  log: (s: string) => void;
  quiet: boolean;
  signal?: AbortSignal;
  world: World;
  r1: ResponseProtocol;
  plus: ResponseProtocol;
  prompts: QuickstartPrompts;
  retriever?: Retriever;
}

/** An RL stage's training config (the preset + the quickstart's CPU-sized overrides). */
function rlStageConfig(
  ctx: Ctx,
  opts: {
    preset: string;
    name: string;
    init: string;
    protocol: "r1-searcher" | "r1-searcher-plus";
    template: string;
    stage: QuickstartRlStage;
    extra?: Record<string, unknown>;
  },
): Record<string, unknown> {
  const { cfg, p } = ctx;
  const s = opts.stage;
  const trajectories = s.prompts * s.samples;
  const updatesPerStep = Math.ceil(trajectories / s.trainBatch);
  const base: Record<string, unknown> = {
    preset: opts.preset,
    seed: cfg.seed,
    runDir: p.run(opts.name),
    model: { init: opts.init },
    data: { path: p.rlQuestions },
    protocol: { name: opts.protocol, template: opts.template },
    retriever: { spec: p.index, k: cfg.k },
    rollout: {
      nSamplesPerPrompt: s.samples,
      rolloutBatchSize: s.prompts,
      temperature: s.temperature,
      maxTokensPerSegment: cfg.segmentTokens,
      maxRetrievals: cfg.maxRetrievals,
      concurrency: trajectories,
    },
    algorithm: {
      trainBatchSize: s.trainBatch,
      microTrainBatchSize: s.microBatch,
      microRolloutBatchSize: Math.min(trajectories, 64),
      ...(s.kl !== undefined ? { initKlCoef: s.kl } : {}),
    },
    optim: { lr: s.lr, totalSteps: s.steps * updatesPerStep },
    run: { numEpisodes: 1000, maxSteps: s.steps, saveSteps: Math.max(1, Math.ceil(s.steps / 4)), maxCheckpoints: 1 },
  };
  return deepMergeObj(deepMergeObj(base, opts.extra ?? {}), s.overrides);
}

function deepMergeObj(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  return mergeQuickstartConfig(a, b) as Record<string, unknown>;
}

async function writeStageConfig(ctx: Ctx, name: string, cfg: Record<string, unknown>): Promise<void> {
  await atomicWriteJson(ctx.p.config(name), relativeConfig(cfg, ctx.p.configs));
}

function trainHooks(ctx: Ctx, label: string) {
  return {
    resume: true,
    quiet: ctx.quiet,
    signal: ctx.signal,
    onLog: (l: string) => ctx.log(`  ${label}: ${l}`),
  };
}

function summarizeRun(res: TrainResult): Record<string, unknown> {
  return { checkpoint: res.checkpoint, steps: res.steps, runDir: res.runDir };
}

/** Run (or resume) the quickstart in `opts.out`. */
export async function runQuickstart(opts: QuickstartOptions): Promise<QuickstartRun> {
  const p = quickstartPaths(opts.out);
  const log = opts.log ?? ((s: string) => void process.stderr.write(s + "\n"));
  await fsp.mkdir(p.out, { recursive: true });

  let state = await readState(p.state);
  if (state) {
    const want = opts.preset ?? state.config.preset;
    const wantSeed = opts.seed ?? state.config.seed;
    if (want !== state.config.preset || wantSeed !== state.config.seed) {
      throw new Error(
        `${p.out} holds a quickstart run with preset ${state.config.preset} and seed ${state.config.seed}; ` +
          `use another --out for preset ${want} seed ${wantSeed}`,
      );
    }
    if (opts.overrides && Object.keys(opts.overrides).length > 0) {
      if (opts.redo?.length) {
        // re-running stages with changed settings: the overrides apply from now on (earlier stages keep their outputs)
        state.config = parseQuickstartConfig(mergeQuickstartConfig(state.config, opts.overrides));
        log(`config updated with the overrides for the stages from ${opts.redo.join(", ")} on`);
      } else {
        log(
          `note: ${p.out} already holds a run; its stored config is used (pass --redo STAGE to re-run stages with the --config overrides)`,
        );
      }
    }
  } else {
    const config = quickstartConfig(opts.preset ?? "small", opts.seed ?? 1, opts.overrides ?? {});
    state = { format: "searchrl-quickstart", version: 1, config, stages: {}, created: new Date().toISOString() };
    await atomicWriteJson(p.state, state);
  }
  const st = state;
  if (opts.redo?.length) {
    const first = Math.min(...opts.redo.map((s) => QUICKSTART_STAGES.indexOf(s)));
    for (const s of QUICKSTART_STAGES.slice(first)) {
      delete st.stages[s];
      for (const dir of STAGE_OUTPUTS[s](p)) await fsp.rm(dir, { recursive: true, force: true });
    }
    await atomicWriteJson(p.state, st);
  }
  const cfg = st.config;
  const r1 = getProtocol("r1-searcher");
  const plus = getProtocol("r1-searcher-plus");
  const world = generateWorld(worldConfig(cfg.world.preset, cfg.seed, cfg.world.overrides));
  const ctx: Ctx = {
    cfg,
    p,
    log,
    quiet: Boolean(opts.quiet),
    signal: opts.signal,
    world,
    r1,
    plus,
    prompts: quickstartPrompts(cfg, r1, plus),
  };

  const t0 = Date.now();
  log(
    `quickstart ${cfg.preset} (seed ${cfg.seed}) → ${p.out}` +
      (Object.keys(st.stages).length
        ? ` (resuming: ${Object.keys(st.stages).filter((k) => st.stages[k as QuickstartStage]?.done).length} stages done)`
        : ""),
  );
  let stopped = false;
  try {
    for (const [i, stage] of QUICKSTART_STAGES.entries()) {
      const rec = st.stages[stage];
      if (rec?.done) {
        log(`[${i + 1}/${QUICKSTART_STAGES.length}] ${stage}: done (${formatDuration(rec.seconds)})`);
        continue;
      }
      if (opts.signal?.aborted) {
        stopped = true;
        break;
      }
      log(`[${i + 1}/${QUICKSTART_STAGES.length}] ${stage}: ${STAGE_TITLES[stage]}`);
      const s0 = Date.now();
      const info = await STAGES[stage](ctx, st);
      const seconds = (Date.now() - s0) / 1000 + (rec?.seconds ?? 0);
      if (info === STOPPED) {
        st.stages[stage] = { done: false, seconds, attempts: (rec?.attempts ?? 0) + 1 };
        await atomicWriteJson(p.state, st);
        log(`  ${stage}: stopped; run the same command again to resume`);
        stopped = true;
        break;
      }
      st.stages[stage] = {
        done: true,
        seconds,
        attempts: (rec?.attempts ?? 0) + 1,
        finishedAt: new Date().toISOString(),
        info,
      };
      await atomicWriteJson(p.state, st);
      log(`  ${stage}: done in ${formatDuration((Date.now() - s0) / 1000)}${infoLine(stage, info)}`);
      if (opts.until === stage) {
        stopped = stage !== "report";
        break;
      }
    }
  } finally {
    await ctx.retriever?.close();
  }
  const results = existsSync(p.results) && st.stages.report?.done ? await readJson<QuickstartResults>(p.results) : null;
  if (!stopped && results) {
    log(`quickstart finished in ${formatDuration((Date.now() - t0) / 1000)} (this call); report: ${p.report}`);
  }
  return { out: p.out, state: st, results, stopped };
}

const STOPPED = Symbol("stopped");

/** Rejection-sampling counts of the plus-data stage, summed over its attempts (OUT/data/…counts.json). */
interface SampleCounts {
  sampled: number;
  rejected: Record<string, number>;
}

/** What a stage writes (removed before the stage is re-run with --redo). */
const STAGE_OUTPUTS: Record<QuickstartStage, (p: QuickstartPaths) => string[]> = {
  world: (p) => [p.world],
  index: (p) => [p.index],
  data: (p) => [p.pretrainText, p.rlQuestions, path.join(p.data, "background")],
  tokenizer: (p) => [p.tokenizerDir],
  pretrain: (p) => [p.run("pretrain")],
  probe: (p) =>
    [path.join(p.eval, "probe-internal.results.jsonl"), path.join(p.eval, "probe-external.results.jsonl")].flatMap(
      (f) => [f, f.replace(/\.jsonl$/, ".summary.json")],
    ),
  "r1-stage1": (p) => [p.run("r1-stage1")],
  "r1-stage2": (p) => [p.run("r1-stage2")],
  "plus-data": (p) => [p.plusData, p.plusSampled, p.plusSampled + ".tried", p.plusSampledCounts, p.rsSingleQuestions],
  "plus-sft": (p) => [p.run("plus-sft")],
  "plus-rl": (p) => [p.run("plus-rl"), p.plusRlQuestions],
  eval: (p) => QUICKSTART_SYSTEMS.flatMap((s) => [p.evalFile(s), p.evalFile(s).replace(/\.jsonl$/, ".summary.json")]),
  report: (p) => [p.results, p.report],
};
type StageFn = (ctx: Ctx, state: QuickstartState) => Promise<Record<string, unknown> | typeof STOPPED>;

const STAGE_TITLES: Record<QuickstartStage, string> = {
  world: "generate the synthetic world (entities, facts, corpus, question splits)",
  index: "build the BM25 index of the corpus and check the ideal queries",
  data: "pre-training text: internal facts + Q/A + reasoning chains + the protocol prior",
  tokenizer: "train the BPE tokenizer (protocol tags as single tokens)",
  pretrain: "pre-train the built-in model (like a base model's pre-training)",
  probe: "probe the pre-trained model's memory (single-hop questions, no search)",
  "r1-stage1": "R1-Searcher stage 1: RL with the retrieval + format reward (learn to search)",
  "r1-stage2": "R1-Searcher stage 2: RL with the F1 answer reward and format penalty (learn to answer)",
  "plus-data": "R1-Searcher++ cold-start data: rejection sampling with the pre-trained model itself",
  "plus-sft": "R1-Searcher++ SFT cold start (retrieved documents masked)",
  "plus-rl": "R1-Searcher++ RL: group reward for the fewest retrievals + memorization loss",
  eval: "evaluate every stage and the baselines on the held-out test questions",
  report: "write results.json and report.html",
};

function infoLine(stage: QuickstartStage, info: Record<string, unknown>): string {
  const f = (x: unknown) =>
    typeof x === "number"
      ? Number.isInteger(x)
        ? String(x)
        : Math.abs(x) < 10
          ? x.toFixed(3)
          : String(Math.round(x))
      : String(x);
  const pick = (keys: string[]) =>
    keys
      .filter((k) => info[k] !== undefined)
      .map((k) => `${k} ${f(info[k])}`)
      .join(", ");
  switch (stage) {
    case "world":
      return ` (${pick(["passages", "facts", "train", "test"])})`;
    case "index":
      return ` (ideal query hit rate: top-1 ${f(info.top1)}, top-k ${f(info.topK)})`;
    case "data":
      return ` (${pick(["rows", "tokens"])})`;
    case "pretrain":
      return ` (${pick(["steps", "firstLoss", "lastLoss"])})`;
    case "probe":
      return ` (internal facts recalled ${f(info.internalCem)}, external ${f(info.externalCem)})`;
    case "plus-data":
      return ` (${pick(["sampled", "kept"])})`;
    default:
      return info.final
        ? ` (${Object.entries(info.final as Record<string, number>)
            .map(([k, v]) => `${k} ${f(v)}`)
            .join(", ")})`
        : "";
  }
}

/** Whether a response recalls at least one fact from memory (an R1-Searcher++ internal segment). */
function recallsInternal(protocol: ResponseProtocol, response: string): boolean {
  return protocol.parse(response).segments.some((s) => s.kind === "internal");
}

function workersOf(ctx: Ctx): number {
  return ctx.cfg.workers ?? defaultWorkerCount();
}

async function retrieverOf(ctx: Ctx): Promise<Retriever> {
  ctx.retriever ??= await openRetriever(ctx.p.index);
  return ctx.retriever;
}

const STAGES: Record<QuickstartStage, StageFn> = {
  async world(ctx) {
    const summary = await writeWorldDir(ctx.world, ctx.p.world, { priorProtocols: [], k: ctx.cfg.k });
    const s = summary.stats as unknown as Record<string, unknown>;
    return {
      passages: ctx.world.passages.length,
      facts: ctx.world.facts.length,
      train: splitQuestions(ctx.world, "train").length,
      test: splitQuestions(ctx.world, "test").length,
      stats: s,
    };
  },

  async index(ctx) {
    await buildIndex({
      corpus: path.join(ctx.p.world, "corpus.tsv"),
      out: ctx.p.index,
      bm25: true,
      progress: !ctx.quiet,
    });
    const results = await idealQueryResults(ctx.world, await retrieverOf(ctx), ctx.cfg.k);
    return idealQueryHitRates(ctx.world, results);
  },

  async data(ctx) {
    const results = await idealQueryResults(ctx.world, await retrieverOf(ctx), ctx.cfg.k);
    const mix = await buildPretrainMix(
      ctx.cfg,
      ctx.world,
      { r1: ctx.r1, plus: ctx.plus },
      ctx.prompts,
      results,
      (pass) => path.join(ctx.p.data, "background", `index-${pass}`),
    );
    await fsp.mkdir(ctx.p.data, { recursive: true });
    await writeJsonl(ctx.p.pretrainText, mix.rows);
    const seen = new Set(mix.seenTrainQuestions);
    const rlQuestions = splitQuestions(ctx.world, "train").filter((q) => !seen.has(q.idx));
    await writeJsonl(ctx.p.rlQuestions, rlQuestions);
    await atomicWriteJson(ctx.p.prompts, ctx.prompts);
    return {
      rows: mix.rows.length,
      counts: mix.counts,
      droppedBackground: mix.droppedBackground,
      rlQuestions: rlQuestions.length,
      trainQuestionsInPretraining: seen.size,
    };
  },

  async tokenizer(ctx) {
    const rows = (await fsp.readFile(ctx.p.pretrainText, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { text: string; source: string });
    const tags = [...new Set([...protocolTags(ctx.r1), ...protocolTags(ctx.plus)])];
    const tok = trainBpe(
      tokenizerTexts(
        ctx.world,
        rows.map((r) => r.text),
        ctx.prompts,
      ),
      {
        vocabSize: ctx.cfg.tokenizer.vocabSize,
        specialTokens: ["<|endoftext|>"],
        addedTokens: tags,
        bos: null,
      },
    );
    await atomicWriteFile(ctx.p.tokenizer, JSON.stringify(tok.toJson()));
    let tokens = 0;
    for (const r of rows) tokens += tok.encode(r.text).length;
    const sample = ctx.prompts.r1.replace("{question}", splitQuestions(ctx.world, "test")[0]?.question ?? "?");
    return {
      vocabSize: tok.vocabSize,
      tags: tags.length,
      pretrainTokens: tokens,
      promptTokens: tok.encode(sample).length,
    };
  },

  async pretrain(ctx) {
    const { cfg, p } = ctx;
    const tok = await loadTokenizer(p.tokenizer);
    const rows = (await fsp.readFile(p.pretrainText, "utf8")).trim().split("\n").length;
    // the text file already holds every pass (fresh paraphrases and background worlds): one epoch over it
    const total = Math.ceil(rows / cfg.pretrain.batchSize);
    const conf = {
      stage: "pretrain",
      seed: cfg.seed,
      description: "pre-training of the built-in model on the world text (internal facts) + the protocol prior",
      runDir: p.run("pretrain"),
      model: {
        create: { ...cfg.model, vocabSize: tok.vocabSize, eosTokenIds: [...tok.eosTokenIds] },
        tokenizer: p.tokenizer,
      },
      data: {
        path: p.pretrainText,
        format: "text",
        maxSeqLen: Math.min(cfg.pretrain.maxSeqLen, cfg.model.maxPositions),
        addBos: false,
      },
      protocol: { name: "r1-searcher" },
      mask: "none",
      epochs: 1,
      batchSize: cfg.pretrain.batchSize,
      microBatchSize: cfg.pretrain.microBatchSize,
      optim: {
        lr: cfg.pretrain.lr,
        schedule: "cosine_with_min_lr",
        warmupRatio: cfg.pretrain.warmupRatio,
        minLrRatio: cfg.pretrain.minLrRatio,
        totalSteps: total,
      },
      run: { saveSteps: Math.max(1, Math.ceil(total / 4)), maxCheckpoints: 1 },
    };
    await writeStageConfig(ctx, "pretrain", conf);
    const resolved = resolveSftConfig(conf);
    const model = await Transformer.create(resolved.model.create as never, { seed: resolved.seed });
    const setup = await onAllCores(ctx, model, tok, resolved.optim);
    let res: TrainResult;
    try {
      res = await runSft(resolved, { policy: setup.policy, tokenizer: tok }, trainHooks(ctx, "pretrain"));
    } finally {
      await setup.close();
    }
    if (res.stoppedEarly) return STOPPED;
    const losses = res.metrics.map((m) => m.loss).filter((x): x is number => typeof x === "number");
    return { ...summarizeRun(res), firstLoss: losses[0], lastLoss: losses[losses.length - 1] };
  },

  async probe(ctx, state) {
    const ckpt = finalCheckpoint(state, "pretrain");
    const { internal, external } = probeQuestions(ctx.world, ctx.cfg.eval.probe, ctx.cfg.seed);
    const backend = await createBuiltinBackend({ checkpointDir: ckpt });
    try {
      const run = async (items: typeof internal, name: string) =>
        (
          await evaluate({
            backend,
            protocol: ctx.r1,
            items,
            dataset: name,
            mode: "no-retrieval",
            baselinePrompt: ctx.prompts.direct,
            limits: { segmentMaxTokens: ctx.cfg.segmentTokens },
            outFile: path.join(ctx.p.eval, `${name}.results.jsonl`),
            concurrency: ctx.cfg.eval.concurrency,
            progress: !ctx.quiet,
            signal: ctx.signal,
          })
        ).summary;
      const si = await run(internal, "probe-internal");
      const se = await run(external, "probe-external");
      return { internalCem: si.cem, externalCem: se.cem, internalCount: si.count, externalCount: se.count };
    } finally {
      await backend.close();
    }
  },

  async "r1-stage1"(ctx, state) {
    const conf = rlStageConfig(ctx, {
      preset: "r1-searcher-llama-stage1",
      name: "r1-stage1",
      init: finalCheckpoint(state, "pretrain"),
      protocol: "r1-searcher",
      template: ctx.prompts.r1,
      stage: ctx.cfg.r1Stage1,
    });
    return rlStage(ctx, "r1-stage1", conf);
  },

  async "r1-stage2"(ctx, state) {
    const conf = rlStageConfig(ctx, {
      preset: "r1-searcher-llama-stage2",
      name: "r1-stage2",
      init: finalCheckpoint(state, "r1-stage1"),
      protocol: "r1-searcher",
      template: ctx.prompts.r1,
      stage: ctx.cfg.r1Stage2,
    });
    return rlStage(ctx, "r1-stage2", conf);
  },

  async "plus-data"(ctx, state) {
    const { cfg, p } = ctx;
    const ckpt = finalCheckpoint(state, "pretrain");
    const questions = (await loadQuestions(p.rlQuestions, {})).slice(0, cfg.plus.rsQuestions);
    if (cfg.plus.rsSingle > 0) {
      // single-hop questions about facts no test question needs (internal and external): they show the model where
      // recalling works and where only a search does
      const single = singleHopRsQuestions(ctx.world, cfg.plus.rsSingle, cfg.seed);
      await writeJsonl(p.rsSingleQuestions, single);
      questions.push(...(await loadQuestions(p.rsSingleQuestions, {})));
    }
    // counts of earlier attempts (a resumed stage samples only the questions not sampled yet; its checks and counts
    // cover every question, so a failed stage fails the same way when it is run again)
    const before: SampleCounts = existsSync(p.plusSampledCounts)
      ? await readJson<SampleCounts>(p.plusSampledCounts)
      : { sampled: 0, rejected: {} };
    if (before.sampled > 0) ctx.log(`  plus-data: resuming after ${before.sampled} samples of an earlier attempt`);
    const backend = await createBuiltinBackend({ checkpointDir: ckpt, maxBatch: 256, workers: workersOf(ctx) });
    try {
      const summary = await rejectionSample({
        backend,
        retriever: await retrieverOf(ctx),
        protocol: ctx.plus,
        questions,
        n: cfg.plus.rsSamples,
        out: p.plusSampled,
        promptOptions: { template: ctx.prompts.plus },
        temperature: 1,
        topP: 0.95,
        maxTokensPerSegment: cfg.segmentTokens,
        maxRetrievals: cfg.maxRetrievals,
        k: cfg.k,
        seed: cfg.seed,
        maxPerQuestion: 0,
        requireRetrieval: cfg.plus.rsRequireRetrieval,
        maxAnswerWords: 10,
        batchQuestions: Math.max(1, Math.floor(256 / cfg.plus.rsSamples)),
        concurrency: 256,
        quiet: ctx.quiet,
        signal: ctx.signal,
      });
      const counts: SampleCounts = { sampled: before.sampled + summary.sampled, rejected: { ...before.rejected } };
      for (const [k, v] of Object.entries(summary.rejected)) counts.rejected[k] = (counts.rejected[k] ?? 0) + v;
      await atomicWriteJson(p.plusSampledCounts, counts);
      if (ctx.signal?.aborted) return STOPPED;
      if (summary.failed > 0)
        throw new Error(
          `rejection sampling: ${summary.failed} question(s) failed (${summary.failures.join("; ")}); run again to retry them`,
        );
      // every passing sample of every attempt (the file the sampler appends to)
      const all = existsSync(p.plusSampled)
        ? await readJsonlAll<{ group?: string; question_id?: string; retrievals: number; response: string }>(
            p.plusSampled,
          )
        : [];
      if (all.length === 0) {
        throw new Error(
          `rejection sampling kept no trajectory of ${counts.sampled} samples: the pre-trained model never produced a correct, well-formed R1-Searcher++ answer (more pre-training or more protocol-prior text is needed)`,
        );
      }
      // D5 selection: per question, the passing samples with the fewest retrievals (in sample order)
      const byQ = new Map<string, typeof all>();
      for (const r of all) {
        const id = String(r.question_id ?? r.group);
        byQ.set(id, [...(byQ.get(id) ?? []), r]);
      }
      const rows: typeof all = [];
      let ungrounded = 0;
      for (const group of byQ.values()) {
        const list = cfg.plus.rsGroundedRecalls
          ? group.filter((r) => {
              const g = groundedRecalls(ctx.world, ctx.plus, r.response);
              if (g.grounded < g.recalls) ungrounded++;
              return g.grounded === g.recalls;
            })
          : group;
        const sorted =
          cfg.plus.rsSelect === "fewest-retrievals" ? [...list].sort((a, b) => a.retrievals - b.retrievals) : list;
        rows.push(...sorted.slice(0, cfg.plus.rsKeepPerQuestion));
      }
      if (rows.length === 0)
        throw new Error(
          `rejection sampling: all ${all.length} passing samples (of ${counts.sampled}) recall a fact the model was never taught (plus.rsGroundedRecalls); more samples (plus.rsSamples) or more pre-training are needed`,
        );
      await writeJsonl(p.plusData, rows);
      return {
        sampled: counts.sampled,
        passed: all.length,
        kept: rows.length,
        rejected: counts.rejected,
        ...(cfg.plus.rsGroundedRecalls ? { passedUngrounded: ungrounded } : {}),
        keptWithRetrieval: rows.filter((r) => r.retrievals > 0).length,
        keptWithInternal: rows.filter((r) => recallsInternal(ctx.plus, r.response)).length,
        keptRetrievalsMean: rows.reduce((a, r) => a + r.retrievals, 0) / Math.max(1, rows.length),
      };
    } finally {
      await backend.close();
    }
  },

  async "plus-sft"(ctx, state) {
    const { cfg, p } = ctx;
    const conf = {
      preset: "r1-searcher-plus-sft",
      seed: cfg.seed,
      runDir: p.run("plus-sft"),
      model: { init: finalCheckpoint(state, "pretrain") },
      data: { path: p.plusData, addBos: false, maxSeqLen: cfg.model.maxPositions },
      protocol: { name: "r1-searcher-plus" },
      epochs: cfg.plus.sftEpochs,
      batchSize: cfg.plus.sftBatch,
      microBatchSize: cfg.plus.sftBatch,
      optim: { lr: cfg.plus.sftLr },
      run: { saveSteps: 0, maxCheckpoints: 1 },
    };
    await writeStageConfig(ctx, "plus-sft", conf);
    const resolved = resolveSftConfig(conf);
    const tok = await loadTokenizer(p.tokenizer);
    const setup = await onAllCores(ctx, await loadCheckpoint(resolved.model.init!), tok, resolved.optim);
    let res: TrainResult;
    try {
      res = await runSft(resolved, { policy: setup.policy, tokenizer: tok }, trainHooks(ctx, "plus-sft"));
    } finally {
      await setup.close();
    }
    if (res.stoppedEarly) return STOPPED;
    const losses = res.metrics.map((m) => m.loss).filter((x): x is number => typeof x === "number");
    return { ...summarizeRun(res), firstLoss: losses[0], lastLoss: losses[losses.length - 1] };
  },

  async "plus-rl"(ctx, state) {
    const { cfg, p } = ctx;
    let data: Record<string, unknown> = {};
    if (cfg.plus.rlSingle > 0) {
      const rows = [
        ...(await loadQuestions(p.rlQuestions, {})).map((q) => q.raw),
        ...singleHopRsQuestions(ctx.world, cfg.plus.rlSingle, cfg.seed),
      ];
      await writeJsonl(p.plusRlQuestions, rows);
      data = { data: { path: p.plusRlQuestions } };
    }
    const conf = rlStageConfig(ctx, {
      preset: "r1-searcher-plus-rl",
      name: "plus-rl",
      init: finalCheckpoint(state, "plus-sft"),
      protocol: "r1-searcher-plus",
      template: ctx.prompts.plus,
      stage: ctx.cfg.plus.rl,
      extra: {
        reward: { plus: { eta: ctx.cfg.plus.eta } },
        memorization: { enabled: ctx.cfg.plus.memorizationCoef > 0, coef: ctx.cfg.plus.memorizationCoef },
        ...data,
      },
    });
    return rlStage(ctx, "plus-rl", conf);
  },

  async eval(ctx, state) {
    const { cfg, p } = ctx;
    const test = splitQuestions(ctx.world, "test");
    const items = (cfg.eval.limit > 0 ? test.slice(0, cfg.eval.limit) : test).map((q) => ({
      idx: q.idx,
      question: q.question,
      answer: q.answer,
    }));
    const limits = { segmentMaxTokens: cfg.segmentTokens, maxSearches: cfg.maxRetrievals, topK: cfg.k };
    const out: Record<string, EvalSummary> = {};
    for (const name of QUICKSTART_SYSTEMS) {
      if (ctx.signal?.aborted) return STOPPED;
      const spec = QUICKSTART_SYSTEM_SPECS[name];
      const plus = spec.protocol === "r1-searcher-plus";
      const backend = await createBuiltinBackend({
        checkpointDir: finalCheckpoint(state, spec.from),
        maxBatch: 256,
        workers: workersOf(ctx),
      });
      try {
        const r = await evaluate({
          backend,
          protocol: plus ? ctx.plus : ctx.r1,
          retriever: await retrieverOf(ctx),
          items,
          dataset: `world-test:${name}`,
          mode: spec.mode,
          promptOptions: { template: plus ? ctx.prompts.plus : ctx.prompts.r1 },
          // the baselines' prompts (the same entries of data/prompts.json commands.sh reads)
          ...(spec.mode !== "search" ? { baselinePrompt: ctx.prompts[systemPromptKey(name)] } : {}),
          ...(spec.mode === "naive-rag" ? { ragTopK: cfg.k } : {}),
          limits,
          outFile: p.evalFile(name),
          concurrency: cfg.eval.concurrency,
          progress: !ctx.quiet,
          signal: ctx.signal,
        });
        out[name] = r.summary;
        ctx.log(
          `  ${name.padEnd(18)} Cover-EM ${(100 * r.summary.cem).toFixed(1).padStart(5)}  EM ${(100 * r.summary.em).toFixed(1).padStart(5)}  F1 ${(100 * r.summary.f1).toFixed(1).padStart(5)}  retrievals ${r.summary.retrievalsMean.toFixed(2)}`,
        );
      } finally {
        await backend.close();
      }
    }
    await writeCommands(cfg, p, state);
    return {
      systems: Object.fromEntries(
        Object.entries(out).map(([k, v]) => [
          k,
          { cem: v.cem, em: v.em, f1: v.f1, retrievals: v.retrievalsMean, count: v.count },
        ]),
      ),
    };
  },

  async report(ctx, state) {
    const results = await buildResults(ctx.p, state, ctx.world);
    await atomicWriteJson(ctx.p.results, results);
    await atomicWriteFile(ctx.p.report, renderReportHtml(results));
    return { claims: results.claims };
  },
};

/** The model on every core (`workers` extra threads): policy for the trainer, backend for sampling. */
async function onAllCores(
  ctx: Ctx,
  model: Transformer,
  tokenizer: Tokenizer,
  optim: { betas: [number, number]; eps: number; weightDecay: number; maxGradNorm: number },
): Promise<ParallelSetup> {
  return parallelSetup({
    model,
    tokenizer,
    workers: ctx.cfg.workers ?? defaultWorkerCount(),
    policy: { betas: optim.betas, eps: optim.eps, weightDecay: optim.weightDecay, maxGradNorm: optim.maxGradNorm },
  });
}

async function rlStage(
  ctx: Ctx,
  name: string,
  conf: Record<string, unknown>,
): Promise<Record<string, unknown> | typeof STOPPED> {
  await writeStageConfig(ctx, name, conf);
  const resolved = resolveRlConfig(conf);
  const tok = await loadTokenizer(ctx.p.tokenizer);
  const setup = await onAllCores(ctx, await loadCheckpoint(resolved.model.init!), tok, resolved.optim);
  let res: TrainResult;
  try {
    res = await runRl(
      resolved,
      { policy: setup.policy, backend: setup.backend, tokenizer: tok, retriever: await retrieverOf(ctx) },
      trainHooks(ctx, name),
    );
  } finally {
    await setup.close();
  }
  if (res.stoppedEarly) return STOPPED;
  const m = res.metrics;
  const pick = (row: Record<string, unknown> | undefined) =>
    row
      ? Object.fromEntries(
          ["reward_mean", "accuracy", "retrievals_mean", "response_length_mean"]
            .filter((k) => typeof row[k] === "number")
            .map((k) => [k, row[k] as number]),
        )
      : {};
  return { ...summarizeRun(res), first: pick(m[0]), final: pick(m[m.length - 1]) };
}
