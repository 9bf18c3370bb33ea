/**
 * Library entry points: `runSft` and `runRl` take a config (object, preset applied) and any already-built objects
 * (model, tokenizer, retriever, protocol, backend, ...) — what is not given is built from the config's paths — so a
 * pipeline can chain pre-training → RL stage 1 → stage 2 → SFT → RL++ in one process without reloading.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { createBackend } from "../llm/factory.js";
import { createBuiltinBackend } from "../llm/builtin.js";
import type { LLMBackend } from "../llm/types.js";
import { coverExactMatch } from "../metrics/answer.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { type EngineName, getRuntime } from "../model/runtime.js";
import { Transformer } from "../model/transformer.js";
import { loadTokenizer } from "../model/tokenizer/hf.js";
import { getProtocol } from "../protocol/index.js";
import type { ResponseProtocol } from "../protocol/types.js";
import { openRetriever } from "../retrieval/factory.js";
import type { Retriever } from "../retrieval/types.js";
import type { Tokenizer } from "../util/types.js";
import { BuiltinPolicy, BuiltinScorer } from "./builtin-policy.js";
import { engineRollout, presetReward } from "./components.js";
import { resolveRlConfig, resolveSftConfig, type RlConfigLike, type SftConfigLike } from "./config.js";
import { loadQuestions, type QuestionRow, type SftExample } from "./data.js";
import type { ScoringModel, TrainablePolicy } from "./policy.js";
import { LlmRewriter, TemplateRewriter, type Rewriter } from "./rewriter.js";
import { runRlLoop, type RewardFn, type RolloutFn } from "./rl.js";
import type { TrainHooks, TrainResult } from "./run-common.js";
import { runSftLoop } from "./sft.js";

export interface ModelComponents {
  /** The built-in model to train (in place). */
  model?: Transformer;
  /** Any trainable policy (instead of `model`). */
  policy?: TrainablePolicy;
  /** Tokenizer of `model` (default: loaded from `config.model.init` / `config.model.tokenizer`). */
  tokenizer?: Tokenizer;
}

export interface SftComponentsInput extends ModelComponents {
  protocol?: ResponseProtocol | null;
  examples?: SftExample[];
}

export interface RlComponentsInput extends ModelComponents {
  /** Frozen KL reference (default: a frozen copy taken before training; on resume loaded from model.reference/init). */
  reference?: ScoringModel | Transformer | null;
  /** Sampling backend (default: the built-in backend over the live weights of `model`). */
  backend?: LLMBackend;
  retriever?: Retriever;
  protocol?: ResponseProtocol;
  questions?: QuestionRow[];
  reward?: RewardFn;
  rollout?: RolloutFn;
  rewriter?: Rewriter;
}

/** The run's model as a built-in Transformer + tokenizer (given, loaded from `init`, or created from `create`). */
async function buildModel(
  cfg: {
    model: { init?: string; create?: Record<string, unknown>; tokenizer?: string; engine?: EngineName | "auto" };
    seed: number;
  },
  comp: ModelComponents,
): Promise<{ model: Transformer; tokenizer: Tokenizer }> {
  if (cfg.model.engine && cfg.model.engine !== "auto") {
    // Worker replicas read the choice from the environment they inherit.
    process.env.SEARCHRL_ENGINE = cfg.model.engine;
    (await getRuntime()).useEngine(cfg.model.engine);
  }
  let model = comp.model;
  let tokenizer = comp.tokenizer;
  if (!model) {
    if (cfg.model.init) {
      model = await loadCheckpoint(cfg.model.init);
    } else if (cfg.model.create) {
      model = await Transformer.create(cfg.model.create as Parameters<typeof Transformer.create>[0], {
        seed: cfg.seed,
      });
    } else {
      throw new Error("no model: pass one, or set model.init (a checkpoint folder) or model.create in the config");
    }
  }
  if (!tokenizer) {
    const from = cfg.model.tokenizer ?? cfg.model.init;
    if (!from) throw new Error("no tokenizer: pass one, or set model.tokenizer (tokenizer.json) in the config");
    tokenizer = await loadTokenizer(from);
  }
  if (tokenizer.vocabSize > model.config.vocabSize) {
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocabSize}`);
  }
  return { model, tokenizer };
}

function optimOpts(o: { betas: [number, number]; eps: number; weightDecay: number; maxGradNorm: number }) {
  return { betas: o.betas, eps: o.eps, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm };
}

/** SFT / pre-training (cold start). */
export async function runSft(
  config: SftConfigLike,
  comp: SftComponentsInput = {},
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const cfg = resolveSftConfig(config);
  let policy = comp.policy;
  if (!policy) {
    const { model, tokenizer } = await buildModel(cfg, comp);
    policy = new BuiltinPolicy(model, tokenizer, optimOpts(cfg.optim));
    // sequences longer than the model's context are cut to it
    if (cfg.data.maxSeqLen > model.config.maxPositions) cfg.data.maxSeqLen = model.config.maxPositions;
  }
  const protocol = comp.protocol !== undefined ? comp.protocol : getProtocol(cfg.protocol.name);
  return runSftLoop(cfg, { policy, protocol, examples: comp.examples }, hooks);
}

/** RL with retrieval (R1-Searcher stages, R1-Searcher++ with memorization). */
export async function runRl(
  config: RlConfigLike,
  comp: RlComponentsInput = {},
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const cfg = resolveRlConfig(config);
  const closers: Array<() => Promise<void> | void> = [];
  try {
    let policy = comp.policy;
    let model: Transformer | undefined = comp.model;
    let tokenizer = comp.tokenizer;
    if (!policy) {
      const built = await buildModel(cfg, comp);
      model = built.model;
      tokenizer = built.tokenizer;
      if (!comp.model) closers.push(() => built.model.dispose());
      policy = new BuiltinPolicy(model, tokenizer, optimOpts(cfg.optim));
    }
    tokenizer ??= policy.tokenizer;

    // KL reference: the initial policy. On resume it cannot be copied from the (resumed) weights: load it.
    const needRef = cfg.algorithm.initKlCoef > 0 || cfg.algorithm.useKlLoss;
    let reference: ScoringModel | null = null;
    if (comp.reference instanceof Transformer) reference = new BuiltinScorer(comp.reference, tokenizer);
    else if (comp.reference) reference = comp.reference;
    if (needRef && !reference && hooks.resume) {
      const refPath = cfg.model.reference ?? cfg.model.init;
      if (refPath && existsSync(path.join(refPath, "config.json"))) {
        const refModel = await loadCheckpoint(refPath, model ? { runtime: model.rt } : {});
        closers.push(() => refModel.dispose());
        reference = new BuiltinScorer(refModel, tokenizer);
      }
    } else if (needRef && !reference && cfg.model.reference) {
      const refModel = await loadCheckpoint(cfg.model.reference, model ? { runtime: model.rt } : {});
      closers.push(() => refModel.dispose());
      reference = new BuiltinScorer(refModel, tokenizer);
    }

    const protocol = comp.protocol ?? getProtocol(cfg.protocol.name);
    let rollout = comp.rollout;
    if (!rollout) {
      let retriever = comp.retriever;
      if (!retriever) {
        if (!cfg.retriever.spec) throw new Error("no retriever: pass one, or set retriever.spec in the config");
        retriever = await openRetriever(cfg.retriever.spec);
        const r = retriever;
        closers.push(() => r.close());
      }
      let backend = comp.backend;
      if (!backend) {
        if (!model) throw new Error("no sampling backend: pass `backend` when training a custom policy");
        backend = await createBuiltinBackend({ model, tokenizer });
        const b = backend;
        closers.push(() => b.close());
      }
      rollout = engineRollout({ config: cfg, protocol, backend, retriever });
    }
    const reward = comp.reward ?? presetReward(cfg);
    const questions =
      comp.questions ??
      (await loadQuestions(cfg.data.path, {
        questionKey: cfg.data.questionKey,
        answerKey: cfg.data.answerKey,
        idKey: cfg.data.idKey,
        limit: cfg.data.limit,
      }));

    let rewriter = comp.rewriter ?? null;
    if (cfg.memorization.enabled && !rewriter) {
      const rw = cfg.memorization.rewriter;
      if (rw.kind === "template") {
        rewriter = new TemplateRewriter({ select: rw.select });
      } else {
        const be = await createBackend(rw.llm);
        closers.push(() => be.close());
        rewriter = new LlmRewriter(be, {
          prompt: rw.prompt,
          temperature: rw.temperature,
          maxTokens: rw.maxTokens,
          seed: cfg.seed,
        });
      }
    }
    return await runRlLoop(
      cfg,
      {
        policy,
        reference,
        rollout,
        reward,
        questions,
        protocol,
        rewriter,
        answerCheck: (a, g) => coverExactMatch(a, g),
      },
      hooks,
    );
  } finally {
    for (const c of closers.reverse()) await c();
  }
}
