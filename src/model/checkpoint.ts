/**
 * Checkpoints as Hugging Face model folders: `config.json` (LlamaForCausalLM / Qwen2ForCausalLM), `model.safetensors`
 * (or shards with `model.safetensors.index.json`) with HF Llama parameter names, `tokenizer.json` +
 * `tokenizer_config.json`, `generation_config.json`; optionally `optimizer.safetensors` and any extra files (trainer
 * state). A folder written here loads with transformers' `AutoModelForCausalLM` / `AutoTokenizer`, and any Llama or
 * Qwen2 folder (f32/bf16/f16, sharded or not) loads here.
 *
 * Layout conversion: HF stores projections as [out, in] and rotates q/k with the "rotate half" convention; the
 * built-in model stores [in, out] with q/k/v and gate/up fused, and rotates adjacent pairs (GGUF llama convention).
 * Export transposes, splits and permutes each head's q/k rows (adjacent pair (2i, 2i+1) -> (i, i + dh/2)); import does
 * the inverse. Both are exact permutations, so an F32 round trip is bit-exact.
 */
import { existsSync, promises as fsp, readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { atomicWriteDir } from "../util/fsutil.js";
import { type ModelConfig, fromHfConfig, toHfConfig } from "./config.js";
import type { AdamW } from "./optim.js";
import { SafetensorsFile, type SafetensorsWriteTensor, writeSafetensors } from "./safetensors.js";
import { Transformer, type TransformerOptions } from "./transformer.js";

/** One exported tensor: HF name, HF shape, float32 data. */
export interface HfTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Permute rows of a [heads*dh, cols] matrix from adjacent-pair to rotate-half order (or back with `inverse`). */
function permuteRope(src: Float32Array, heads: number, dh: number, cols: number, inverse: boolean): Float32Array {
  const out = new Float32Array(src.length);
  const half = dh / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const adjA = h * dh + 2 * i;
      const adjB = h * dh + 2 * i + 1;
      const hfA = h * dh + i;
      const hfB = h * dh + i + half;
      if (!inverse) {
        out.set(src.subarray(adjA * cols, adjA * cols + cols), hfA * cols);
        out.set(src.subarray(adjB * cols, adjB * cols + cols), hfB * cols);
      } else {
        out.set(src.subarray(hfA * cols, hfA * cols + cols), adjA * cols);
        out.set(src.subarray(hfB * cols, hfB * cols + cols), adjB * cols);
      }
    }
  }
  return out;
}

/** Columns [c0, c1) of a row-major [rows, cols] matrix, transposed: returns [(c1-c0), rows]. */
function sliceColsT(w: Float32Array, rows: number, cols: number, c0: number, c1: number): Float32Array {
  const n = c1 - c0;
  const out = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < n; c++) out[c * rows + r] = w[o + c0 + c];
  }
  return out;
}

/** Write t ([n, rows], HF layout) transposed into columns [c0, c0+n) of w ([rows, cols]). */
function putColsT(w: Float32Array, rows: number, cols: number, c0: number, t: Float32Array, n: number): void {
  for (let c = 0; c < n; c++) {
    const o = c * rows;
    for (let r = 0; r < rows; r++) w[r * cols + c0 + c] = t[o + r];
  }
}

/** The model's weights as HF-named tensors (what `model.safetensors` holds). */
export function exportHfTensors(model: Transformer): HfTensor[] {
  const c = model.config;
  const W = model.getWeights();
  const get = (name: string): Float32Array => {
    const e = model.param(name);
    return W.subarray(e.offset, e.offset + e.size);
  };
  const d = c.hiddenSize;
  const dh = c.headDim;
  const qDim = c.numHeads * dh;
  const kvDim = c.numKvHeads * dh;
  const qkvDim = qDim + 2 * kvDim;
  const ffn = c.intermediateSize;
  const out: HfTensor[] = [{ name: "model.embed_tokens.weight", shape: [c.vocabSize, d], data: get("embed").slice() }];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `layers.${l}.`;
    const hp = `model.layers.${l}.`;
    const wqkv = get(p + "wqkv");
    out.push({ name: hp + "input_layernorm.weight", shape: [d], data: get(p + "attn_norm").slice() });
    out.push({
      name: hp + "self_attn.q_proj.weight",
      shape: [qDim, d],
      data: permuteRope(sliceColsT(wqkv, d, qkvDim, 0, qDim), c.numHeads, dh, d, false),
    });
    out.push({
      name: hp + "self_attn.k_proj.weight",
      shape: [kvDim, d],
      data: permuteRope(sliceColsT(wqkv, d, qkvDim, qDim, qDim + kvDim), c.numKvHeads, dh, d, false),
    });
    out.push({
      name: hp + "self_attn.v_proj.weight",
      shape: [kvDim, d],
      data: sliceColsT(wqkv, d, qkvDim, qDim + kvDim, qkvDim),
    });
    if (c.attentionBias) {
      const b = get(p + "bqkv");
      out.push({
        name: hp + "self_attn.q_proj.bias",
        shape: [qDim],
        data: permuteRope(b.slice(0, qDim), c.numHeads, dh, 1, false),
      });
      out.push({
        name: hp + "self_attn.k_proj.bias",
        shape: [kvDim],
        data: permuteRope(b.slice(qDim, qDim + kvDim), c.numKvHeads, dh, 1, false),
      });
      out.push({ name: hp + "self_attn.v_proj.bias", shape: [kvDim], data: b.slice(qDim + kvDim, qkvDim) });
    }
    out.push({
      name: hp + "self_attn.o_proj.weight",
      shape: [d, qDim],
      data: sliceColsT(get(p + "wo"), qDim, d, 0, d),
    });
    out.push({ name: hp + "post_attention_layernorm.weight", shape: [d], data: get(p + "mlp_norm").slice() });
    const wgu = get(p + "wgu");
    out.push({ name: hp + "mlp.gate_proj.weight", shape: [ffn, d], data: sliceColsT(wgu, d, 2 * ffn, 0, ffn) });
    out.push({ name: hp + "mlp.up_proj.weight", shape: [ffn, d], data: sliceColsT(wgu, d, 2 * ffn, ffn, 2 * ffn) });
    out.push({ name: hp + "mlp.down_proj.weight", shape: [d, ffn], data: sliceColsT(get(p + "wd"), ffn, d, 0, d) });
  }
  out.push({ name: "model.norm.weight", shape: [d], data: get("final_norm").slice() });
  if (!c.tieEmbeddings) out.push({ name: "lm_head.weight", shape: [c.vocabSize, d], data: get("lm_head").slice() });
  return out;
}

/** A source of HF-named float32 tensors (one file or a set of shards). */
export interface HfTensorSource {
  has(name: string): boolean;
  read(name: string): { shape: number[]; data: Float32Array };
}

/** Fill a model's weights from HF-named tensors (inverse of {@link exportHfTensors}). */
export function importHfTensors(model: Transformer, src: HfTensorSource): void {
  const c = model.config;
  const d = c.hiddenSize;
  const dh = c.headDim;
  const qDim = c.numHeads * dh;
  const kvDim = c.numKvHeads * dh;
  const qkvDim = qDim + 2 * kvDim;
  const ffn = c.intermediateSize;
  const read = (name: string, shape: number[]): Float32Array => {
    if (!src.has(name)) throw new Error(`checkpoint has no tensor ${name}`);
    const t = src.read(name);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new Error(`tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    }
    return t.data;
  };
  // Build the flat buffer in JS memory, then copy once into the heap.
  const W = new Float32Array(model.numParams);
  const put = (name: string, data: Float32Array): void => {
    const e = model.param(name);
    if (data.length !== e.size) throw new Error(`internal: size mismatch for ${name}`);
    W.set(data, e.offset);
  };
  put("embed", read("model.embed_tokens.weight", [c.vocabSize, d]));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `layers.${l}.`;
    const hp = `model.layers.${l}.`;
    put(p + "attn_norm", read(hp + "input_layernorm.weight", [d]));
    const wqkv = new Float32Array(d * qkvDim);
    putColsT(
      wqkv,
      d,
      qkvDim,
      0,
      permuteRope(read(hp + "self_attn.q_proj.weight", [qDim, d]), c.numHeads, dh, d, true),
      qDim,
    );
    putColsT(
      wqkv,
      d,
      qkvDim,
      qDim,
      permuteRope(read(hp + "self_attn.k_proj.weight", [kvDim, d]), c.numKvHeads, dh, d, true),
      kvDim,
    );
    putColsT(wqkv, d, qkvDim, qDim + kvDim, read(hp + "self_attn.v_proj.weight", [kvDim, d]), kvDim);
    put(p + "wqkv", wqkv);
    if (c.attentionBias) {
      const b = new Float32Array(qkvDim);
      b.set(permuteRope(read(hp + "self_attn.q_proj.bias", [qDim]), c.numHeads, dh, 1, true), 0);
      b.set(permuteRope(read(hp + "self_attn.k_proj.bias", [kvDim]), c.numKvHeads, dh, 1, true), qDim);
      b.set(read(hp + "self_attn.v_proj.bias", [kvDim]), qDim + kvDim);
      put(p + "bqkv", b);
    }
    const wo = new Float32Array(qDim * d);
    putColsT(wo, qDim, d, 0, read(hp + "self_attn.o_proj.weight", [d, qDim]), d);
    put(p + "wo", wo);
    put(p + "mlp_norm", read(hp + "post_attention_layernorm.weight", [d]));
    const wgu = new Float32Array(d * 2 * ffn);
    putColsT(wgu, d, 2 * ffn, 0, read(hp + "mlp.gate_proj.weight", [ffn, d]), ffn);
    putColsT(wgu, d, 2 * ffn, ffn, read(hp + "mlp.up_proj.weight", [ffn, d]), ffn);
    put(p + "wgu", wgu);
    const wd = new Float32Array(ffn * d);
    putColsT(wd, ffn, d, 0, read(hp + "mlp.down_proj.weight", [d, ffn]), d);
    put(p + "wd", wd);
  }
  put("final_norm", read("model.norm.weight", [d]));
  if (!c.tieEmbeddings) put("lm_head", read("lm_head.weight", [c.vocabSize, d]));
  model.setWeights(W);
}

/** Open the safetensors file(s) of a model folder (single file or sharded index). */
export function openHfTensors(dir: string): HfTensorSource & { close(): void } {
  const index = path.join(dir, "model.safetensors.index.json");
  const single = path.join(dir, "model.safetensors");
  const files = new Map<string, SafetensorsFile>();
  const where = new Map<string, SafetensorsFile>();
  const open = (f: string): SafetensorsFile => {
    let sf = files.get(f);
    if (!sf) {
      sf = new SafetensorsFile(f);
      files.set(f, sf);
    }
    return sf;
  };
  try {
    if (existsSync(single)) {
      const sf = open(single);
      for (const n of sf.names) where.set(n, sf);
    } else if (existsSync(index)) {
      const parsed = z
        .object({ weight_map: z.record(z.string(), z.string()) })
        .passthrough()
        .safeParse(JSON.parse(readFileSync(index, "utf8")));
      if (!parsed.success) throw new Error(`${index}: expected {"weight_map": {tensor: file}}`);
      for (const [name, file] of Object.entries(parsed.data.weight_map)) {
        if (file.includes("/") || file.includes("\\"))
          throw new Error(`${index}: shard name ${file} must be a plain file name`);
        where.set(name, open(path.join(dir, file)));
      }
    } else {
      throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
    }
  } catch (err) {
    for (const f of files.values()) f.close();
    throw err;
  }
  return {
    has: (name) => where.has(name),
    read: (name) => {
      const sf = where.get(name);
      if (!sf) throw new Error(`checkpoint has no tensor ${name}`);
      return { shape: sf.info(name).shape, data: sf.readFloat32(name) };
    },
    close: () => {
      for (const f of files.values()) f.close();
    },
  };
}

export interface SaveCheckpointOptions {
  /** Tokenizer to store as tokenizer.json: the JSON object or its text. */
  tokenizerJson?: unknown;
  /** dtype of the stored weights (default float32; bfloat16/float16 halve the size but are lossy). */
  dtype?: "float32" | "bfloat16" | "float16";
  /** Also store optimizer state (optimizer.safetensors) for resuming. */
  optimizer?: AdamW;
  /** Extra files written into the folder (e.g. `trainer_state.json`). Names must be plain file names. */
  extraFiles?: Record<string, string | Uint8Array>;
  /** Shard the weights into files of at most this many bytes (default: one file). */
  maxShardBytes?: number;
}

/** Special token strings of a tokenizer.json (for tokenizer_config.json). */
function tokenString(tokJson: unknown, id: number | null): string | null {
  if (id === null || typeof tokJson !== "object" || tokJson === null) return null;
  const t = tokJson as { added_tokens?: { id: number; content: string }[]; model?: { vocab?: Record<string, number> } };
  const added = t.added_tokens?.find((a) => a.id === id);
  if (added) return added.content;
  const vocab = t.model?.vocab;
  if (vocab) for (const [k, v] of Object.entries(vocab)) if (v === id) return k;
  return null;
}

/**
 * Save a model as a Hugging Face folder, atomically (the folder is built next to `dir` and renamed into place).
 */
export async function saveCheckpoint(model: Transformer, dir: string, opts: SaveCheckpointOptions = {}): Promise<void> {
  const c = model.config;
  const dtype = opts.dtype ?? "float32";
  const stDtype = dtype === "float32" ? "F32" : dtype === "bfloat16" ? "BF16" : "F16";
  const tensors = exportHfTensors(model);
  const tokJson = typeof opts.tokenizerJson === "string" ? JSON.parse(opts.tokenizerJson) : opts.tokenizerJson;
  await atomicWriteDir(dir, async (tmp) => {
    await fsp.writeFile(path.join(tmp, "config.json"), JSON.stringify(toHfConfig(c, dtype), null, 2) + "\n");
    const gen: Record<string, unknown> = { _from_model_config: true };
    if (c.bosTokenId !== null) gen.bos_token_id = c.bosTokenId;
    if (c.eosTokenIds.length > 0) gen.eos_token_id = c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds;
    await fsp.writeFile(path.join(tmp, "generation_config.json"), JSON.stringify(gen, null, 2) + "\n");
    const list: SafetensorsWriteTensor[] = tensors.map((t) => ({
      name: t.name,
      dtype: stDtype,
      shape: t.shape,
      data: t.data,
    }));
    const bytesPer = stDtype === "F32" ? 4 : 2;
    const maxShard = opts.maxShardBytes ?? Infinity;
    const shards: SafetensorsWriteTensor[][] = [[]];
    let cur = 0;
    for (const t of list) {
      const b = (t.data as Float32Array).length * bytesPer;
      if (cur > 0 && cur + b > maxShard) {
        shards.push([]);
        cur = 0;
      }
      shards[shards.length - 1].push(t);
      cur += b;
    }
    if (shards.length === 1) {
      await fsp.writeFile(path.join(tmp, "model.safetensors"), writeSafetensors(shards[0], { format: "pt" }));
    } else {
      const weightMap: Record<string, string> = {};
      let total = 0;
      for (let i = 0; i < shards.length; i++) {
        const name = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
        for (const t of shards[i]) {
          weightMap[t.name] = name;
          total += (t.data as Float32Array).length * bytesPer;
        }
        await fsp.writeFile(path.join(tmp, name), writeSafetensors(shards[i], { format: "pt" }));
      }
      await fsp.writeFile(
        path.join(tmp, "model.safetensors.index.json"),
        JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n",
      );
    }
    if (tokJson !== undefined) {
      await fsp.writeFile(path.join(tmp, "tokenizer.json"), JSON.stringify(tokJson) + "\n");
      const tc: Record<string, unknown> = {
        tokenizer_class: "PreTrainedTokenizerFast",
        model_max_length: c.maxPositions,
        clean_up_tokenization_spaces: false,
      };
      const bos = tokenString(tokJson, c.bosTokenId);
      const eos = tokenString(tokJson, c.eosTokenIds[0] ?? null);
      if (bos !== null) tc.bos_token = bos;
      if (eos !== null) tc.eos_token = eos;
      await fsp.writeFile(path.join(tmp, "tokenizer_config.json"), JSON.stringify(tc, null, 2) + "\n");
    }
    if (opts.optimizer) await opts.optimizer.save(path.join(tmp, "optimizer.safetensors"));
    for (const [name, content] of Object.entries(opts.extraFiles ?? {})) {
      if (name.includes("/") || name.includes("\\") || name.startsWith("."))
        throw new Error(`extra file name ${name} must be a plain file name`);
      await fsp.writeFile(path.join(tmp, name), content);
    }
  });
}

/** Read `config.json` of a model folder. */
export async function readCheckpointConfig(dir: string): Promise<ModelConfig> {
  const file = path.join(dir, "config.json");
  if (!existsSync(file)) throw new Error(`${dir}: no config.json (not a model folder)`);
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(file, "utf8"));
  } catch {
    throw new Error(`${file} is not valid JSON`);
  }
  return fromHfConfig(json);
}

/**
 * Load a model folder (ours or any HF Llama/Qwen2 folder with safetensors weights). `maxPositions` can be lowered to
 * save RoPE-table memory for large-context checkpoints.
 */
export async function loadCheckpoint(
  dir: string,
  opts: TransformerOptions & { maxPositions?: number } = {},
): Promise<Transformer> {
  const cfg = await readCheckpointConfig(dir);
  if (opts.maxPositions) cfg.maxPositions = Math.min(cfg.maxPositions, opts.maxPositions);
  const model = await Transformer.empty(cfg, opts);
  const src = openHfTensors(dir);
  try {
    if (cfg.tieEmbeddings === false && !src.has("lm_head.weight")) {
      throw new Error(`${dir}: config says tie_word_embeddings=false but there is no lm_head.weight`);
    }
    importHfTensors(model, src);
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    src.close();
  }
  return model;
}
