/**
 * Model configuration of the built-in decoder (llama layout: RMSNorm, RoPE, SwiGLU, optional grouped-query attention,
 * optional q/k/v bias as in Qwen2, optional tied embeddings) and its mapping to/from Hugging Face `config.json`.
 */
import { z } from "zod";

export const ModelConfigSchema = z
  .object({
    /** "llama" (LlamaForCausalLM) or "qwen2" (Qwen2ForCausalLM: q/k/v bias). Both run the same code. */
    architecture: z.enum(["llama", "qwen2"]).default("llama"),
    vocabSize: z.number().int().positive(),
    /** d_model. */
    hiddenSize: z.number().int().positive(),
    /** SwiGLU inner width. */
    intermediateSize: z.number().int().positive(),
    numLayers: z.number().int().positive(),
    numHeads: z.number().int().positive(),
    /** Key/value heads (grouped-query attention); must divide numHeads. Defaults to numHeads. */
    numKvHeads: z.number().int().positive().optional(),
    /** Per-head width (even). Defaults to hiddenSize / numHeads. */
    headDim: z.number().int().positive().optional(),
    /** Longest sequence (prompt + generation) the model accepts. */
    maxPositions: z.number().int().positive().default(2048),
    ropeTheta: z.number().positive().default(10000),
    rmsNormEps: z.number().positive().default(1e-5),
    tieEmbeddings: z.boolean().default(true),
    /** Bias on the q/k/v projections (Qwen2). */
    attentionBias: z.boolean().default(false),
    bosTokenId: z.number().int().nonnegative().nullable().default(null),
    eosTokenIds: z.array(z.number().int().nonnegative()).default([]),
  })
  .strict();

export type ModelConfigInput = z.input<typeof ModelConfigSchema>;

/** A fully resolved model configuration (all defaults applied). */
export interface ModelConfig {
  architecture: "llama" | "qwen2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositions: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieEmbeddings: boolean;
  attentionBias: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

/** Validate and complete a configuration; throws a readable error naming the bad field. */
export function resolveModelConfig(input: ModelConfigInput): ModelConfig {
  const parsed = ModelConfigSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`invalid model config: ${msg}`);
  }
  const c = parsed.data;
  const numKvHeads = c.numKvHeads ?? c.numHeads;
  const headDim = c.headDim ?? c.hiddenSize / c.numHeads;
  if (!Number.isInteger(headDim))
    throw new Error("invalid model config: hiddenSize must be divisible by numHeads (or give headDim)");
  if (headDim % 2 !== 0) throw new Error("invalid model config: headDim must be even (RoPE rotates pairs)");
  if (c.numHeads % numKvHeads !== 0) throw new Error("invalid model config: numKvHeads must divide numHeads");
  for (const e of c.eosTokenIds) {
    if (e >= c.vocabSize) throw new Error(`invalid model config: eos token id ${e} >= vocabSize ${c.vocabSize}`);
  }
  if (c.bosTokenId !== null && c.bosTokenId >= c.vocabSize) {
    throw new Error(`invalid model config: bos token id ${c.bosTokenId} >= vocabSize ${c.vocabSize}`);
  }
  return { ...c, numKvHeads, headDim, eosTokenIds: [...c.eosTokenIds] };
}

/** Number of trainable parameters of a configuration. */
export function countParameters(c: ModelConfig): number {
  const d = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const perLayer =
    2 * d + d * (qDim + 2 * kvDim) + (c.attentionBias ? qDim + 2 * kvDim : 0) + qDim * d + 3 * d * c.intermediateSize;
  return c.vocabSize * d * (c.tieEmbeddings ? 1 : 2) + c.numLayers * perLayer + d;
}

/** Approximate training FLOPs per token (forward + backward) at a given context length. */
export function trainFlopsPerToken(c: ModelConfig, context: number): number {
  const d = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const linear = c.numLayers * (d * (qDim + 2 * kvDim) + qDim * d + 3 * d * c.intermediateSize) + d * c.vocabSize;
  // Attention: QK^T and PV over the full square (the kernels compute the masked half too), per layer.
  const attn = c.numLayers * 2 * context * qDim;
  return 6 * linear + 6 * attn;
}

/** Hugging Face `config.json` for this model (LlamaForCausalLM or Qwen2ForCausalLM). */
export function toHfConfig(
  c: ModelConfig,
  dtype: "float32" | "bfloat16" | "float16" = "float32",
): Record<string, unknown> {
  const eos = c.eosTokenIds.length === 0 ? null : c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds;
  const common: Record<string, unknown> = {
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositions,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    rms_norm_eps: c.rmsNormEps,
    hidden_act: "silu",
    initializer_range: 0.02,
    tie_word_embeddings: c.tieEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: eos,
    torch_dtype: dtype,
    use_cache: true,
  };
  if (c.architecture === "qwen2") {
    return {
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      ...common,
      use_sliding_window: false,
      sliding_window: c.maxPositions,
      max_window_layers: c.numLayers,
      attention_dropout: 0.0,
    };
  }
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...common,
    attention_bias: c.attentionBias,
    attention_dropout: 0.0,
    mlp_bias: false,
    pretraining_tp: 1,
  };
}

const HfConfigSchema = z
  .object({
    model_type: z.string().optional(),
    architectures: z.array(z.string()).optional(),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullish(),
    head_dim: z.number().int().positive().nullish(),
    max_position_embeddings: z.number().int().positive().nullish(),
    rope_theta: z.number().positive().nullish(),
    rope_scaling: z.unknown().optional(),
    rms_norm_eps: z.number().positive().nullish(),
    hidden_act: z.string().nullish(),
    tie_word_embeddings: z.boolean().nullish(),
    attention_bias: z.boolean().nullish(),
    mlp_bias: z.boolean().nullish(),
    bos_token_id: z.number().int().nullish(),
    eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullish(),
  })
  .passthrough();

/** Read a Hugging Face `config.json` object (Llama or Qwen2 family) into a {@link ModelConfig}. */
export function fromHfConfig(json: unknown): ModelConfig {
  const parsed = HfConfigSchema.safeParse(json);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`unsupported config.json: ${msg}`);
  }
  const h = parsed.data;
  const type = h.model_type ?? (h.architectures?.[0]?.toLowerCase().startsWith("qwen2") ? "qwen2" : "llama");
  if (type !== "llama" && type !== "qwen2") {
    throw new Error(`unsupported config.json: model_type "${type}" (only llama and qwen2 are supported)`);
  }
  if (h.hidden_act && h.hidden_act !== "silu") throw new Error(`unsupported config.json: hidden_act "${h.hidden_act}"`);
  if (h.mlp_bias) throw new Error("unsupported config.json: mlp_bias true");
  if (h.rope_scaling !== undefined && h.rope_scaling !== null) {
    throw new Error("unsupported config.json: rope_scaling is not supported by the built-in model");
  }
  const eos = h.eos_token_id == null ? [] : Array.isArray(h.eos_token_id) ? h.eos_token_id : [h.eos_token_id];
  return resolveModelConfig({
    architecture: type,
    vocabSize: h.vocab_size,
    hiddenSize: h.hidden_size,
    intermediateSize: h.intermediate_size,
    numLayers: h.num_hidden_layers,
    numHeads: h.num_attention_heads,
    numKvHeads: h.num_key_value_heads ?? h.num_attention_heads,
    headDim: h.head_dim ?? undefined,
    maxPositions: h.max_position_embeddings ?? 2048,
    ropeTheta: h.rope_theta ?? 10000,
    rmsNormEps: h.rms_norm_eps ?? 1e-6,
    tieEmbeddings: h.tie_word_embeddings ?? false,
    attentionBias: type === "qwen2" ? true : (h.attention_bias ?? false),
    bosTokenId: h.bos_token_id ?? null,
    eosTokenIds: eos.filter((e) => e >= 0 && e < h.vocab_size),
  });
}
