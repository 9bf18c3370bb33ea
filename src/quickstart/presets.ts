/**
 * Quickstart configuration: one object that fixes every choice of the end-to-end run (world, prompts, tokenizer,
 * model, pre-training, the R1-Searcher stages, the R1-Searcher++ stages, evaluation). Presets: `small` (the default,
 * the benchmark), `tiny` (a few minutes less), `micro` (the test suite: seconds per stage, proves the wiring only).
 * Any field can be overridden with a JSON/YAML file (`searchrl quickstart --config FILE`), deep-merged over the preset.
 */
import { z } from "zod";
import { deepMerge } from "../train/config.js";

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

/** Sampling shared by the RL stages (one rollout step = `prompts` questions × `samples` trajectories). */
const RlStageSchema = z
  .object({
    /** Rollout steps. */
    steps: posInt,
    /** Questions per rollout step. */
    prompts: posInt,
    /** Trajectories per question (the GRPO / group-reward group). */
    samples: posInt,
    /** Samples per optimizer step (a rollout step gives prompts × samples; fewer = several updates per step). */
    trainBatch: posInt,
    /** Samples per forward/backward pass. */
    microBatch: posInt,
    lr: z.number().positive(),
    /** KL coefficient β (the presets' 1e-4 unless overridden). */
    kl: z.number().min(0).optional(),
    temperature: z.number().positive().default(1),
    /** Extra overrides deep-merged into the stage's training config (any `searchrl train` config field). */
    overrides: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type QuickstartRlStage = z.infer<typeof RlStageSchema>;

export const QuickstartConfigSchema = z
  .object({
    preset: z.string().default("custom"),
    seed: nonNegInt.default(1),
    /** Worker threads besides the main one for training and sampling (default: one per extra core, at most 3). */
    workers: nonNegInt.optional(),
    world: z
      .object({
        /** World preset of src/data/world (`tiny`, `small`, `medium`). */
        preset: z.string(),
        /** Overrides of the world config (internalShare, questions, mix, distractorRate, ...). */
        overrides: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    prompts: z
      .object({
        /**
         * First line of the search prompts and of the protocol-prior texts, per protocol (a short "search tool"
         * reminder; a 7B model would get a long system prompt instead). `{query_open}` etc. are filled from the protocol.
         */
        r1Header: z.string(),
        plusHeader: z.string(),
        /** Question/answer wrapper of the pre-training texts and of every prompt; `{question}` is filled. */
        qaWrapper: z.string(),
      })
      .strict(),
    /** Passages per query in training, evaluation, the naive-RAG baseline and the prior examples. */
    k: posInt,
    tokenizer: z.object({ vocabSize: posInt }).strict(),
    model: z
      .object({
        hiddenSize: posInt,
        intermediateSize: posInt,
        numLayers: posInt,
        numHeads: posInt,
        maxPositions: posInt,
      })
      .strict(),
    pretrain: z
      .object({
        /**
         * Passes over the world's pre-training text (each pass with fresh paraphrases) — and one fresh background
         * world per pass.
         */
        epochs: posInt,
        batchSize: posInt,
        microBatchSize: posInt,
        lr: z.number().positive(),
        warmupRatio: z.number().min(0).max(1).default(0.02),
        minLrRatio: z.number().min(0).max(1).default(0.1),
        /** Window length of the text rows. */
        maxSeqLen: posInt,
        /**
         * Generic text per pass from a freshly generated background world whose entities never occur in the main
         * world (texts naming a main-world entity are dropped): like the web text a base model reads. It shows the
         * answer format and the search protocols on facts that have nothing to do with the evaluated world.
         */
        background: z
          .object({
            /** World preset of the background worlds. */
            preset: z.string().default("small"),
            /** Encyclopedia paragraphs of the background world's famous entities (internal facts), per pass. */
            facts: nonNegInt,
            /** Single-hop Q/A texts in the answer format, per pass. */
            qa: nonNegInt,
            /** Multi-hop reasoning chains without search, per pass. */
            chains: nonNegInt,
            /** Search-protocol examples per protocol and pass: single-hop and multi-hop, with real BM25 results. */
            priorSingle: nonNegInt,
            priorMulti: nonNegInt,
          })
          .strict(),
        /**
         * Protocol-prior examples per protocol on the MAIN world, for the whole run (single-hop on train-only facts,
         * multi-hop on train questions whose facts no dev/test question needs). Default 0: the prior comes from the
         * background worlds only.
         */
        mainPriorMode: z.enum(["internal", "train-only"]).default("train-only"),
        mainPriorSingle: nonNegInt.default(0),
        mainPriorMulti: nonNegInt.default(0),
        /**
         * Which kinds of multi-hop questions the multi-hop protocol-prior examples (main and background worlds) show.
         * Default all; `["comparison"]` shows two independent searches only, never a bridge (a query built from a
         * retrieved fact), so the pre-trained model knows the search format but RL has to find the chained search.
         */
        priorMultiKinds: z
          .array(z.enum(["bridge", "comparison", "compositional"]))
          .min(1)
          .optional(),
        /**
         * Include the world's no-search reasoning chains of train questions whose facts are all internal. Off by
         * default: they teach the answers of those train questions, which would inflate the RL reward of answering
         * from memory; the background worlds' chains show the same reasoning format.
         */
        mainChains: z.boolean().default(false),
        /**
         * R1-Searcher++ recall examples per pass on the main world's internal facts (single-hop: the fact's question,
         * then `<internal>` fact `</internal>` and the answer; every pass takes the next ones of a fixed shuffle of all
         * internal facts). They state only facts the pre-training text states anyway and never show a search, a
         * document or a multi-hop question; they practise writing a known fact inside the recall tags, which a tiny
         * model does not do for facts it only read as encyclopedia text (docs/quickstart.md, "What it took" 13–14).
         */
        mainRecall: nonNegInt.default(0),
      })
      .strict(),
    /** R1-Searcher stage 1 (learn to retrieve) and stage 2 (learn to answer). */
    r1Stage1: RlStageSchema,
    r1Stage2: RlStageSchema,
    /** Tokens per generated segment and retrievals per trajectory, in training and evaluation. */
    segmentTokens: posInt,
    maxRetrievals: posInt,
    plus: z
      .object({
        /** Rejection sampling (D5): train questions used, samples per question, kept per question. */
        rsQuestions: posInt,
        rsSamples: posInt,
        rsKeepPerQuestion: posInt,
        /** Also sample single-hop questions about train-only facts (half internal, half external). */
        rsSingle: nonNegInt.default(0),
        /** Which passing samples of a question are kept: the ones with the fewest retrievals, or the first sampled. */
        rsSelect: z.enum(["fewest-retrievals", "first"]).default("fewest-retrievals"),
        /** Keep only samples with at least one `<internal>` block and at least one retrieval? (D5 choice) */
        rsRequireRetrieval: z.boolean().default(false),
        /**
         * Keep only samples whose every recalled fact (`<internal>`) is grounded: a fact the pre-training text taught
         * or one a document retrieved earlier in the same trajectory states (checked against the world's facts).
         * Without it, "fewest retrievals" selection favours lucky invented recalls (docs/quickstart.md).
         */
        rsGroundedRecalls: z.boolean().default(false),
        sftEpochs: posInt,
        sftBatch: posInt,
        sftLr: z.number().positive(),
        rl: RlStageSchema,
        /**
         * Single-hop questions about train-only facts (half internal, half external; the rejection-sampling pool) added
         * to the RL questions: the cleanest signal for "recall what you know, search what you do not".
         */
        rlSingle: nonNegInt.default(0),
        /** μ of the memorization loss. */
        memorizationCoef: z.number().min(0).default(0.1),
        /** η of the group reward. */
        eta: z.number().min(0).default(2),
      })
      .strict(),
    eval: z
      .object({
        /** Held-out questions evaluated (first N of the test split; 0 = all). */
        limit: nonNegInt,
        /** Single-hop probes of the pre-trained model's memory (internal / external facts, no search). */
        probe: nonNegInt,
        concurrency: posInt.default(64),
      })
      .strict(),
  })
  .strict();

export type QuickstartConfig = z.infer<typeof QuickstartConfigSchema>;
export type QuickstartConfigInput = z.input<typeof QuickstartConfigSchema>;

const PROMPTS = {
  r1Header: "Search tool: {query_open} name keyword {query_close}",
  plusHeader: "Search tool: {query_open} name keyword {query_close} or recall: {internal_open} fact {internal_close}",
  qaWrapper: "Question: {question}\nAnswer: ",
};

/**
 * What the model knows follows the kind of entity: every person, city and country is famous (its facts are taught in
 * pre-training), no organisation or work is (their facts are only in the corpus) — like a base model that knows
 * geography and well-known people but must look up a company or a book. A 1 M-parameter model cannot tie its
 * search-or-recall choice to a memorized property of one entity, only to what it can see (docs/quickstart.md, "What it
 * took" 12–14); `small-entity` is the same run with fame drawn per entity (half of every type).
 */
const FAME_BY_TYPE = { person: 1, city: 1, country: 1, organisation: 0, work: 0 };

/** The benchmark preset: the `small` world, a ~1 M-parameter model, about ten minutes on two cores. */
const SMALL: QuickstartConfigInput = {
  preset: "small",
  world: { preset: "small", overrides: { internalShare: 0.5, internalShareByType: FAME_BY_TYPE } },
  prompts: PROMPTS,
  k: 1,
  tokenizer: { vocabSize: 768 },
  model: { hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, maxPositions: 512 },
  pretrain: {
    epochs: 36,
    batchSize: 32,
    microBatchSize: 32,
    lr: 2e-3,
    maxSeqLen: 384,
    background: { preset: "small", facts: 60, qa: 80, chains: 40, priorSingle: 10, priorMulti: 30 },
    mainPriorSingle: 15,
    mainPriorMulti: 20,
    mainRecall: 30,
  },
  r1Stage1: { steps: 5, prompts: 16, samples: 8, trainBatch: 32, microBatch: 32, lr: 1e-4 },
  r1Stage2: { steps: 8, prompts: 16, samples: 8, trainBatch: 32, microBatch: 32, lr: 1e-4 },
  segmentTokens: 64,
  maxRetrievals: 4,
  plus: {
    rsQuestions: 400,
    rsSamples: 4,
    rsKeepPerQuestion: 1,
    rsSingle: 200,
    sftEpochs: 3,
    sftBatch: 16,
    sftLr: 3e-4,
    rsGroundedRecalls: true,
    // per-question baseline (R1-Searcher's reinforce_baseline) instead of the preset's plain REINFORCE++ (D7): with
    // 16 questions per step the group reward is a within-question comparison, which a per-question baseline exposes.
    // KL to the cold-start model as a k3 loss term (GRPO's form, OpenRLHF --use_kl_loss --kl_estimator k3) instead of
    // β = 1e-4 in the reward: without it the tiny model's search-or-recall choice flips for every question at once
    // within one or two steps (docs/quickstart.md, "What it took").
    rl: {
      steps: 8,
      prompts: 16,
      samples: 8,
      trainBatch: 32,
      microBatch: 32,
      lr: 1e-4,
      kl: 0.05,
      overrides: { algorithm: { advantageEstimator: "reinforce_baseline", useKlLoss: true, klEstimator: "k3" } },
    },
    memorizationCoef: 0.05,
  },
  eval: { limit: 0, probe: 100 },
};

/**
 * The previous default: fame drawn per entity (half of every type), no recall practice. Claim 2 held on the seeds'
 * means only (docs/quickstart.md, "Results").
 */
const SMALL_ENTITY: QuickstartConfigInput = {
  ...SMALL,
  preset: "small-entity",
  world: { preset: "small", overrides: { internalShare: 0.5 } },
  pretrain: { ...SMALL.pretrain, mainRecall: 0 },
};

/** A smaller world and shorter schedule (a few minutes). */
const TINY: QuickstartConfigInput = {
  ...SMALL,
  preset: "tiny",
  world: { preset: "tiny", overrides: { internalShare: 0.5, internalShareByType: FAME_BY_TYPE } },
  pretrain: { ...SMALL.pretrain, epochs: 16 },
  r1Stage1: { ...SMALL.r1Stage1, steps: 5, prompts: 12 },
  r1Stage2: { ...SMALL.r1Stage2, steps: 5, prompts: 12 },
  plus: {
    ...SMALL.plus,
    rsQuestions: 60,
    rl: { ...SMALL.plus.rl, steps: 5, prompts: 12 },
  },
  eval: { limit: 0, probe: 60 },
};

/**
 * The test preset: the tiny world, a 0.1 M-parameter model pre-trained for a few passes, every RL stage two steps
 * (proves the wiring, not the claims; it still samples well-formed answers, so the rewards vary).
 */
const MICRO: QuickstartConfigInput = {
  ...SMALL,
  preset: "micro",
  world: { preset: "tiny", overrides: { internalShare: 0.5, questions: { train: 60, dev: 4, test: 16 } } },
  tokenizer: { vocabSize: 512 },
  model: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, maxPositions: 320 },
  pretrain: {
    ...SMALL.pretrain,
    epochs: 30,
    batchSize: 32,
    microBatchSize: 32,
    lr: 4e-3,
    background: { preset: "tiny", facts: 10, qa: 20, chains: 5, priorSingle: 5, priorMulti: 5 },
    mainPriorSingle: 10,
    mainPriorMulti: 5,
    mainRecall: 10,
  },
  segmentTokens: 40,
  maxRetrievals: 2,
  r1Stage1: { steps: 2, prompts: 6, samples: 4, trainBatch: 12, microBatch: 12, lr: 1e-3 },
  r1Stage2: { steps: 2, prompts: 6, samples: 4, trainBatch: 12, microBatch: 12, lr: 1e-3 },
  plus: {
    ...SMALL.plus,
    rsQuestions: 60,
    rsSamples: 8,
    rsSingle: 60,
    rlSingle: 20,
    // the 30 k-parameter model recalls few facts right (memory probe ~0.25), so the grounding filter kept 0-2 of its
    // 3-17 passing samples on seeds 1-5 (none on seed 1, the default); micro proves the wiring, the filter is
    // unit-tested (src/quickstart/data.test.ts) and on in every other preset
    rsGroundedRecalls: false,
    sftEpochs: 1,
    sftBatch: 8,
    rl: { ...SMALL.plus.rl, steps: 2, prompts: 6, samples: 4, trainBatch: 12, microBatch: 12, lr: 1e-3 },
  },
  eval: { limit: 16, probe: 8 },
};

export const QUICKSTART_PRESETS: Record<string, QuickstartConfigInput> = {
  small: SMALL,
  "small-entity": SMALL_ENTITY,
  tiny: TINY,
  micro: MICRO,
};
export const QUICKSTART_PRESET_NAMES = Object.keys(QUICKSTART_PRESETS);

/** Deep merge (objects key by key; arrays and scalars replaced): the training configs' merge. */
export function mergeQuickstartConfig(base: unknown, override: unknown): unknown {
  return deepMerge(base, override);
}

/** Resolve a preset + seed + overrides into a validated config (errors name every bad field). */
export function quickstartConfig(
  preset = "small",
  seed = 1,
  overrides: Record<string, unknown> = {},
): QuickstartConfig {
  const p = QUICKSTART_PRESETS[preset];
  if (!p)
    throw new Error(
      `unknown quickstart preset ${JSON.stringify(preset)} (known: ${QUICKSTART_PRESET_NAMES.join(", ")})`,
    );
  return parseQuickstartConfig(mergeQuickstartConfig({ ...p, seed }, overrides));
}

export function parseQuickstartConfig(raw: unknown): QuickstartConfig {
  const r = QuickstartConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`invalid quickstart config:\n  ${issues.join("\n  ")}`);
  }
  return r.data;
}
