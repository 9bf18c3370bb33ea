/**
 * Training configs (RL and SFT/pre-training): zod schemas with the upstream defaults, preset resolution
 * (`preset` + overrides, deep-merged), file loading (YAML or JSON) and clear error messages.
 * Field ↔ upstream-flag mapping: docs/training.md.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ADVANTAGE_ESTIMATORS, type AdvantageEstimator } from "./algorithms/advantages.js";
import { KL_ESTIMATORS, type KlEstimator } from "./algorithms/kl.js";
import { LOSS_AGGREGATIONS, type LossAggregation } from "./algorithms/policy-loss.js";
import { LR_SCHEDULES, type LrScheduleName } from "./algorithms/lr-schedule.js";
import { TRAIN_PRESETS } from "./presets.js";

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

export const OptimSchema = z
  .object({
    /** Peak learning rate (`--actor_learning_rate`). */
    lr: z.number().positive().default(2e-6),
    /** Adam betas (DeepSpeed FusedAdam default upstream). */
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-8),
    /** Decoupled weight decay (`--l2`). */
    weightDecay: z.number().min(0).default(0),
    /** Gradient-norm clipping (`--max_norm`); 0 = off. */
    maxGradNorm: z.number().min(0).default(1.0),
    schedule: z.enum(LR_SCHEDULES as [LrScheduleName, ...LrScheduleName[]]).default("cosine_with_min_lr"),
    warmupRatio: z.number().min(0).max(1).default(0),
    /** min_lr = minLrRatio · lr (upstream 0.1). */
    minLrRatio: z.number().min(0).max(1).default(0.1),
    /** Length of the schedule in optimizer steps; default: the upstream formula (see docs/training.md). */
    totalSteps: posInt.optional(),
  })
  .strict();

export const ModelRefSchema = z
  .object({
    /** Checkpoint directory to start from (config.json + model.safetensors + tokenizer.json). */
    init: z.string().min(1).optional(),
    /** Reference checkpoint for the KL term (default: the initial policy). */
    reference: z.string().min(1).optional(),
    /** Create a fresh model with this architecture instead of loading one (pre-training); passed to the model module. */
    create: z.record(z.string(), z.unknown()).optional(),
    /** Tokenizer file for `create` (tokenizer.json). */
    tokenizer: z.string().min(1).optional(),
    /** Compute engine of the built-in model: auto (native where it loads; SEARCHRL_ENGINE overrides), native, wasm. */
    engine: z.enum(["auto", "native", "wasm"]).optional(),
  })
  .strict();

export const RlDataSchema = z
  .object({
    /** JSONL of questions (upstream: data/r1-searcher/training_set/stage_*.jsonl). */
    path: z.string().min(1),
    questionKey: z.string().default("question"),
    answerKey: z.string().default("answer"),
    /** Field used as the group key / sample id (falls back to the line number). */
    idKey: z.string().default("idx"),
    /** Use only the first N rows. */
    limit: posInt.optional(),
    /** Shuffle the prompts each episode (seeded). */
    shuffle: z.boolean().default(true),
  })
  .strict();

export const ProtocolRefSchema = z
  .object({
    name: z.string().default("r1-searcher"),
    variant: z.string().optional(),
    chatTemplate: z.enum(["none", "qwen2.5", "llama3.1"]).optional(),
    /** Replace the whole prompt; `{question}` is substituted (compact prompts for small models). */
    template: z.string().optional(),
  })
  .strict();

export const RetrieverRefSchema = z
  .object({
    /** Retriever spec (src/retrieval `openRetriever`): an index folder, `http://host:port/queries`, `web:PROVIDER`. */
    spec: z.string().min(1).optional(),
    /** Passages per query (upstream training: 3). */
    k: posInt.default(3),
  })
  .strict();

export const RewardRefSchema = z
  .object({
    /**
     * Reward preset of src/reward: `r1-searcher-qwen`, `r1-searcher-llama-stage1` (the score — the first element of
     * upstream's `[score, 0]`), `r1-searcher-llama-stage2`, `r1-searcher-plus` (group reward).
     */
    preset: z.string().min(1),
    /** R1-Searcher++ reward options (η, group variant, checks), passed to the reward module. */
    plus: z.record(z.string(), z.unknown()).optional(),
    /** Reward for questions without a gold answer (default: error). */
    unknownReward: z.number().optional(),
  })
  .strict();

export const RolloutSchema = z
  .object({
    nSamplesPerPrompt: posInt.default(16),
    /** Prompts per rollout step. */
    rolloutBatchSize: posInt.default(64),
    /** Upstream hard-codes 1.0 / 0.95 in the retrieval rollout. */
    temperature: z.number().min(0).default(1.0),
    topP: z.number().gt(0).max(1).default(0.95),
    topK: nonNegInt.default(0),
    maxTokensPerSegment: posInt.default(512),
    maxRetrievals: nonNegInt.default(8),
    /** Total token budget of one trajectory (prompt excluded). */
    maxTotalTokens: posInt.optional(),
    /** Concurrent trajectories in flight. */
    concurrency: posInt.default(8),
  })
  .strict();

export const AlgorithmSchema = z
  .object({
    advantageEstimator: z
      .enum(ADVANTAGE_ESTIMATORS as [AdvantageEstimator, ...AdvantageEstimator[]])
      .default("reinforce_baseline"),
    /** β of the KL penalty (`--init_kl_coef`, fixed controller). */
    initKlCoef: z.number().min(0).default(0),
    klEstimator: z.enum(KL_ESTIMATORS as [KlEstimator, ...KlEstimator[]]).default("k1"),
    /** KL as a loss term instead of a reward term (`--use_kl_loss`, off upstream). */
    useKlLoss: z.boolean().default(false),
    gamma: z.number().min(0).max(1).default(1),
    clipEps: z.number().min(0).default(0.2),
    clipEpsHigh: z.number().min(0).optional(),
    rewardClip: z.tuple([z.number(), z.number()]).default([-10, 10]),
    lossAggregation: z
      .enum(LOSS_AGGREGATIONS as [LossAggregation, ...LossAggregation[]])
      .default("seq-mean-token-mean"),
    /** Samples per optimizer step (`--train_batch_size`). */
    trainBatchSize: posInt.default(256),
    /** Samples per forward/backward (`--micro_train_batch_size`). */
    microTrainBatchSize: posInt.default(1),
    /** Samples per scoring forward pass when making experience (`--micro_rollout_batch_size`). */
    microRolloutBatchSize: posInt.default(1),
    /** Passes over each rollout batch (`--max_epochs`). */
    maxEpochs: posInt.default(1),
    /** Force whitening on/off (default: on except for group_norm). */
    whiten: z.boolean().optional(),
  })
  .strict();

export const RewriterSchema = z.discriminatedUnion("kind", [
  z
    .object({
      kind: z.literal("template"),
      /** How to pick the supporting sentence of a retrieved block: overlap with the query, the answer, or both. */
      select: z.enum(["query+answer", "query", "answer"]).default("query+answer"),
    })
    .strict(),
  z
    .object({
      kind: z.literal("llm"),
      /** LLM backend spec (see src/llm), e.g. `openai:http://127.0.0.1:8000/v1#model`. */
      llm: z.string().min(1),
      /** Prompt template: {question}, {answer}, {reasoning}, {documents} are substituted. */
      prompt: z.string().optional(),
      temperature: z.number().min(0).default(0),
      maxTokens: posInt.default(512),
    })
    .strict(),
]);

export const MemorizationSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** μ: weight of L_M in the total loss. */
    coef: z.number().min(0).default(0.1),
    rewriter: RewriterSchema.default({ kind: "template", select: "query+answer" }),
    /** Rewrite only correct rollouts that retrieved at least once (D8). */
    requireRetrieval: z.boolean().default(true),
    /** Keep a rewritten path only if its answer still passes Cover-EM against the gold answer (D8). */
    recheck: z.boolean().default(true),
    /** Answers longer than this many words fail the re-check (R1-Searcher++ answer reward). */
    maxAnswerWords: posInt.default(10),
    /** At most this many rewritten paths per rollout step (0 = no limit). */
    maxPerStep: nonNegInt.default(0),
    /** At most this many rewritten paths per question per step. */
    maxPerQuestion: posInt.default(1),
  })
  .strict();

export const RunScheduleSchema = z
  .object({
    /** Passes over the prompt set (`--num_episodes`). */
    numEpisodes: posInt.default(1),
    /** Stop after this many steps (rollout steps for RL, optimizer steps for SFT). */
    maxSteps: posInt.optional(),
    /** Checkpoint every N steps (0 = only at the end). */
    saveSteps: nonNegInt.default(20),
    /** Keep at most N checkpoints (0 = all). */
    maxCheckpoints: nonNegInt.default(3),
    /** Write samples/step-NNNNNN.jsonl (RL). */
    logSamples: z.boolean().default(true),
  })
  .strict();

export const RlConfigSchema = z
  .object({
    stage: z.literal("rl").default("rl"),
    preset: z.string().optional(),
    description: z.string().optional(),
    seed: nonNegInt.default(42),
    runDir: z.string().min(1).optional(),
    model: ModelRefSchema.default({}),
    data: RlDataSchema,
    protocol: ProtocolRefSchema.default({ name: "r1-searcher" }),
    retriever: RetrieverRefSchema.default({ k: 3 }),
    reward: RewardRefSchema,
    rollout: RolloutSchema.default(RolloutSchema.parse({})),
    algorithm: AlgorithmSchema.default(AlgorithmSchema.parse({})),
    optim: OptimSchema.default(OptimSchema.parse({})),
    run: RunScheduleSchema.default(RunScheduleSchema.parse({})),
    memorization: MemorizationSchema.default(MemorizationSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const est = c.algorithm.advantageEstimator;
    if (c.rollout.nSamplesPerPrompt < 2 && est !== "reinforce") {
      ctx.addIssue({
        code: "custom",
        path: ["rollout", "nSamplesPerPrompt"],
        message: `advantage estimator "${est}" needs at least 2 samples per prompt (got ${c.rollout.nSamplesPerPrompt})`,
      });
    }
    const samples = c.rollout.rolloutBatchSize * c.rollout.nSamplesPerPrompt;
    if (c.algorithm.trainBatchSize > samples) {
      ctx.addIssue({
        code: "custom",
        path: ["algorithm", "trainBatchSize"],
        message: `trainBatchSize ${c.algorithm.trainBatchSize} exceeds the samples of a rollout step (${c.rollout.rolloutBatchSize} prompts × ${c.rollout.nSamplesPerPrompt} = ${samples})`,
      });
    }
    if (c.algorithm.microTrainBatchSize > c.algorithm.trainBatchSize) {
      ctx.addIssue({
        code: "custom",
        path: ["algorithm", "microTrainBatchSize"],
        message: `microTrainBatchSize ${c.algorithm.microTrainBatchSize} exceeds trainBatchSize ${c.algorithm.trainBatchSize}`,
      });
    }
    if (c.algorithm.rewardClip[0] > c.algorithm.rewardClip[1]) {
      ctx.addIssue({
        code: "custom",
        path: ["algorithm", "rewardClip"],
        message: "rewardClip: low bound above high bound",
      });
    }
  });

export const SftDataSchema = z
  .object({
    /** JSONL file: rows of {text}, {prompt, response}, or Trajectory objects (promptTokens/responseTokens/mask). */
    path: z.string().min(1),
    /** `auto` detects the row kind per line. */
    format: z.enum(["auto", "text", "prompt-response", "trajectory"]).default("auto"),
    textKey: z.string().default("text"),
    promptKey: z.string().default("prompt"),
    responseKey: z.string().default("response"),
    /** Sequences longer than this are cut (text rows are split into windows of this length). */
    maxSeqLen: posInt.default(1024),
    limit: posInt.optional(),
    shuffle: z.boolean().default(true),
    /** Add the tokenizer's BOS before every sequence and EOS after text/response rows. */
    addBos: z.boolean().default(true),
    addEos: z.boolean().default(true),
  })
  .strict();

export const SftConfigSchema = z
  .object({
    stage: z.enum(["sft", "pretrain"]).default("sft"),
    preset: z.string().optional(),
    description: z.string().optional(),
    seed: nonNegInt.default(42),
    runDir: z.string().min(1).optional(),
    model: ModelRefSchema.default({}),
    data: SftDataSchema,
    /** Protocol whose environment spans (retrieved documents) are masked in prompt/response rows. */
    protocol: ProtocolRefSchema.default({ name: "r1-searcher" }),
    /** `environment`: mask retrieved-document tokens (R1-Searcher++ SFT); `none`: train on every response token. */
    mask: z.enum(["environment", "none"]).default("environment"),
    epochs: posInt.default(6),
    /** Sequences per optimizer step. */
    batchSize: posInt.default(64),
    microBatchSize: posInt.default(4),
    lossAggregation: z.enum(LOSS_AGGREGATIONS as [LossAggregation, ...LossAggregation[]]).default("token-mean"),
    optim: OptimSchema.default(OptimSchema.parse({ lr: 2e-5 })),
    run: RunScheduleSchema.default(RunScheduleSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.microBatchSize > c.batchSize) {
      ctx.addIssue({
        code: "custom",
        path: ["microBatchSize"],
        message: `microBatchSize ${c.microBatchSize} exceeds batchSize ${c.batchSize}`,
      });
    }
  });

export type RlConfig = z.infer<typeof RlConfigSchema>;
export type SftConfig = z.infer<typeof SftConfigSchema>;
export type RlConfigInput = z.input<typeof RlConfigSchema>;
export type SftConfigInput = z.input<typeof SftConfigSchema>;
export type TrainConfig = RlConfig | SftConfig;

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
/** What `runRl` accepts: a full config, or a preset name with any subset of overrides. */
export type RlConfigLike = RlConfigInput | RlConfig | ({ preset: string } & DeepPartial<RlConfigInput>);
/** What `runSft` accepts: a full config, or a preset name with any subset of overrides. */
export type SftConfigLike = SftConfigInput | SftConfig | ({ preset: string } & DeepPartial<SftConfigInput>);

/** A config problem; `message` lists every issue as `path: message`. */
export class TrainConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
    this.name = "TrainConfigError";
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep merge for configs: objects merge key by key, everything else (arrays included) is replaced by the override. */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? deepMerge(base[k], v) : v;
  // a discriminated union switch (e.g. rewriter.kind) must not inherit the other variant's fields
  if ("kind" in base && "kind" in override && base.kind !== override.kind) return { ...override };
  return out;
}

function formatIssues(source: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const p = i.path.length ? i.path.map(String).join(".") : "(root)";
    return `${source}: ${p}: ${i.message}`;
  });
}

/** Expand the named preset (if any) under the given overrides; returns the merged raw object. */
export function applyPreset(raw: unknown, source = "config"): Record<string, unknown> {
  if (!isPlainObject(raw)) throw new TrainConfigError(`${source}: expected an object at the top level`);
  const name = raw.preset;
  if (name === undefined) return raw;
  if (typeof name !== "string" || !(name in TRAIN_PRESETS)) {
    throw new TrainConfigError(
      `${source}: preset: unknown preset ${JSON.stringify(name)} (known: ${Object.keys(TRAIN_PRESETS).join(", ")})`,
    );
  }
  return deepMerge(TRAIN_PRESETS[name], raw) as Record<string, unknown>;
}

function parseWith<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = formatIssues(source, r.error.issues);
    throw new TrainConfigError(`invalid training config\n  ${issues.join("\n  ")}`, issues);
  }
  return r.data;
}

/** Validate an RL config object (preset applied first). */
export function resolveRlConfig(raw: unknown, source = "config"): RlConfig {
  const merged = applyPreset(raw, source);
  if (merged.stage !== undefined && merged.stage !== "rl") {
    throw new TrainConfigError(
      `${source}: stage: this is a "${String(merged.stage)}" config; use \`searchrl sft\` for it`,
    );
  }
  return parseWith(RlConfigSchema, merged, source);
}

/** Validate an SFT / pre-training config object (preset applied first). */
export function resolveSftConfig(raw: unknown, source = "config"): SftConfig {
  const merged = applyPreset(raw, source);
  if (merged.stage === "rl")
    throw new TrainConfigError(`${source}: stage: this is an RL config; use \`searchrl train\` for it`);
  return parseWith(SftConfigSchema, merged, source);
}

/** Read a YAML or JSON config file (by extension; `.yml`/`.yaml` → YAML, otherwise JSON, with YAML as fallback). */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    throw new TrainConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  const ext = path.extname(file).toLowerCase();
  try {
    if (ext === ".json") return JSON.parse(text);
    return parseYaml(text);
  } catch (err) {
    throw new TrainConfigError(`${file}: cannot parse ${ext === ".json" ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
}

/**
 * Resolve relative paths of a config (data, model, retriever index) against `baseDir` (the config file's folder).
 * A retriever spec that is not a URL or `web:` is an index folder and is resolved too.
 */
export function resolveConfigPaths<T extends TrainConfig>(cfg: T, baseDir: string): T {
  const abs = (p: string | undefined): string | undefined => (p === undefined ? p : path.resolve(baseDir, p));
  const out = structuredClone(cfg);
  out.data.path = abs(out.data.path)!;
  out.model.init = abs(out.model.init);
  out.model.reference = abs(out.model.reference);
  out.model.tokenizer = abs(out.model.tokenizer);
  if (out.runDir) out.runDir = abs(out.runDir);
  if (out.stage === "rl") {
    const r = out as RlConfig;
    const spec = r.retriever.spec;
    // an index directory is a path; URLs and `web:PROVIDER` are not
    if (spec && !/^[a-z][a-z0-9+.-]*:\/\//i.test(spec) && !/^web:/i.test(spec))
      r.retriever.spec = path.resolve(baseDir, spec);
  }
  return out;
}

/** Load, merge the preset, validate and resolve paths of a config file. */
export async function loadTrainConfig(file: string, kind: "rl" | "sft"): Promise<TrainConfig> {
  const raw = await readConfigFile(file);
  const cfg = kind === "rl" ? resolveRlConfig(raw, file) : resolveSftConfig(raw, file);
  return resolveConfigPaths(cfg, path.dirname(path.resolve(file)));
}
