/**
 * GGUF export (llama.cpp / node-llama-cpp model files) for the built-in model: architecture `llama` (RMSNorm, RoPE on
 * adjacent pairs — the built-in model's own convention, so q/k weights are written unpermuted — SwiGLU, GQA, optional
 * q/k/v bias), float32 or float16 tensors, and the byte-level BPE tokenizer as `tokenizer.ggml.model = "gpt2"` with
 * merges and the GPT-2 pre-tokenizer (`tokenizer.ggml.pre = "gpt-2"`).
 *
 * Format (version 3): magic "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata key/values, tensor
 * infos (name, dims innermost-first, type, data offset), padding to `general.alignment` (32), tensor data.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteFile } from "../util/fsutil.js";
import { loadCheckpoint } from "./checkpoint.js";
import { f32ToF16 } from "./safetensors.js";
import { BpeTokenizer } from "./tokenizer/bpe.js";
import type { Transformer } from "./transformer.js";

const enum GType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

type GValue =
  | { t: "u32"; v: number }
  | { t: "i32"; v: number }
  | { t: "f32"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "str"; v: string }
  | { t: "strs"; v: string[] }
  | { t: "i32s"; v: number[] };

const ALIGN = 32;

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private dv = new DataView(this.cur.buffer);
  private pos = 0;
  length = 0;
  private need(n: number): void {
    if (this.pos + n > this.cur.length) {
      this.chunks.push(this.cur.subarray(0, this.pos));
      this.cur = new Uint8Array(Math.max(1 << 16, n));
      this.dv = new DataView(this.cur.buffer);
      this.pos = 0;
    }
  }
  u32(v: number): void {
    this.need(4);
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  i32(v: number): void {
    this.need(4);
    this.dv.setInt32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  u64(v: number): void {
    this.need(8);
    this.dv.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    this.length += 8;
  }
  f32(v: number): void {
    this.need(4);
    this.dv.setFloat32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  u8(v: number): void {
    this.need(1);
    this.cur[this.pos++] = v;
    this.length += 1;
  }
  bytes(b: Uint8Array): void {
    this.need(b.length);
    this.cur.set(b, this.pos);
    this.pos += b.length;
    this.length += b.length;
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(): void {
    while (this.length % ALIGN !== 0) this.u8(0);
  }
  finish(): Uint8Array {
    this.chunks.push(this.cur.subarray(0, this.pos));
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

interface GTensor {
  name: string;
  /** Row-major shape, outermost first (as in PyTorch); written reversed (ne0 = innermost). */
  shape: number[];
  data: Float32Array;
}

function writeValue(s: ByteSink, v: GValue): void {
  switch (v.t) {
    case "u32":
      s.u32(GType.U32);
      s.u32(v.v);
      break;
    case "i32":
      s.u32(GType.I32);
      s.i32(v.v);
      break;
    case "f32":
      s.u32(GType.F32);
      s.f32(v.v);
      break;
    case "bool":
      s.u32(GType.BOOL);
      s.u8(v.v ? 1 : 0);
      break;
    case "str":
      s.u32(GType.STRING);
      s.str(v.v);
      break;
    case "strs":
      s.u32(GType.ARRAY);
      s.u32(GType.STRING);
      s.u64(v.v.length);
      for (const x of v.v) s.str(x);
      break;
    case "i32s":
      s.u32(GType.ARRAY);
      s.u32(GType.I32);
      s.u64(v.v.length);
      for (const x of v.v) s.i32(x);
      break;
  }
}

/** Serialize a GGUF file from metadata and tensors. `f16`: store 2-D tensors as float16 (norms stay float32). */
function buildGguf(meta: [string, GValue][], tensors: GTensor[], f16: boolean): Uint8Array {
  const s = new ByteSink();
  s.bytes(new TextEncoder().encode("GGUF"));
  s.u32(3);
  s.u64(tensors.length);
  s.u64(meta.length);
  for (const [k, v] of meta) {
    s.str(k);
    writeValue(s, v);
  }
  const types = tensors.map((t) => (f16 && t.shape.length === 2 ? 1 : 0));
  let off = 0;
  const offsets: number[] = [];
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    s.str(t.name);
    s.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) s.u64(t.shape[d]);
    s.u32(types[i]);
    s.u64(off);
    offsets.push(off);
    const bytes = t.data.length * (types[i] === 1 ? 2 : 4);
    off += Math.ceil(bytes / ALIGN) * ALIGN;
  }
  s.pad();
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    if (types[i] === 1) {
      const b = new Uint8Array(t.data.length * 2);
      const dv = new DataView(b.buffer);
      for (let j = 0; j < t.data.length; j++) dv.setUint16(j * 2, f32ToF16(t.data[j]), true);
      s.bytes(b);
    } else {
      const b = new Uint8Array(t.data.length * 4);
      const dv = new DataView(b.buffer);
      for (let j = 0; j < t.data.length; j++) dv.setFloat32(j * 4, t.data[j], true);
      s.bytes(b);
    }
    s.pad();
  }
  return s.finish();
}

export interface GgufExportOptions {
  /** Model name stored in general.name. */
  name?: string;
  /** Store matrices as float16 (half the size; logits then match to ~1e-2 instead of ~1e-4). Default false. */
  f16?: boolean;
}

/**
 * Build the GGUF bytes of a model and its byte-level BPE tokenizer (a {@link BpeTokenizer} or a tokenizer.json object
 * with a byte-level BPE model).
 */
export function ggufBytes(
  model: Transformer,
  tokenizer: BpeTokenizer | Record<string, unknown>,
  opts: GgufExportOptions = {},
): Uint8Array {
  const c = model.config;
  const tok = tokenizer instanceof BpeTokenizer ? tokenizer : BpeTokenizer.fromJson(tokenizer, { eos: [], bos: null });
  if (tok.vocabSize > c.vocabSize) {
    throw new Error(`tokenizer has ${tok.vocabSize} tokens but the model only ${c.vocabSize}`);
  }
  const tokens: string[] = [];
  const types: number[] = [];
  const addedSpecial = new Map(tok.added.map((a) => [a.content, a.special]));
  for (let i = 0; i < c.vocabSize; i++) {
    const s = tok.vocab[i];
    if (s === undefined) {
      tokens.push(`[PAD${i}]`);
      types.push(5); // unused
      continue;
    }
    tokens.push(s);
    const sp = addedSpecial.get(s);
    types.push(sp === undefined ? 1 : sp ? 3 : 4);
  }
  const eos = c.eosTokenIds[0] ?? tok.eosTokenIds[0] ?? null;
  const bos = c.bosTokenId ?? tok.bosTokenId ?? eos ?? 0;
  const meta: [string, GValue][] = [
    ["general.architecture", { t: "str", v: "llama" }],
    ["general.name", { t: "str", v: opts.name ?? "searchrl-builtin" }],
    ["general.alignment", { t: "u32", v: ALIGN }],
    ["general.file_type", { t: "u32", v: opts.f16 ? 1 : 0 }],
    ["llama.context_length", { t: "u32", v: c.maxPositions }],
    ["llama.embedding_length", { t: "u32", v: c.hiddenSize }],
    ["llama.block_count", { t: "u32", v: c.numLayers }],
    ["llama.feed_forward_length", { t: "u32", v: c.intermediateSize }],
    ["llama.attention.head_count", { t: "u32", v: c.numHeads }],
    ["llama.attention.head_count_kv", { t: "u32", v: c.numKvHeads }],
    ["llama.attention.key_length", { t: "u32", v: c.headDim }],
    ["llama.attention.value_length", { t: "u32", v: c.headDim }],
    ["llama.rope.dimension_count", { t: "u32", v: c.headDim }],
    ["llama.rope.freq_base", { t: "f32", v: c.ropeTheta }],
    ["llama.attention.layer_norm_rms_epsilon", { t: "f32", v: c.rmsNormEps }],
    ["llama.vocab_size", { t: "u32", v: c.vocabSize }],
    ["tokenizer.ggml.model", { t: "str", v: "gpt2" }],
    ["tokenizer.ggml.pre", { t: "str", v: "gpt-2" }],
    ["tokenizer.ggml.tokens", { t: "strs", v: tokens }],
    ["tokenizer.ggml.token_type", { t: "i32s", v: types }],
    ["tokenizer.ggml.merges", { t: "strs", v: tok.merges.map(([a, b]) => `${a} ${b}`) }],
    ["tokenizer.ggml.bos_token_id", { t: "u32", v: bos }],
    ["tokenizer.ggml.add_bos_token", { t: "bool", v: false }],
    ["tokenizer.ggml.add_eos_token", { t: "bool", v: false }],
  ];
  if (eos !== null) meta.push(["tokenizer.ggml.eos_token_id", { t: "u32", v: eos }]);

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
  // Columns [c0, c1) of a row-major [rows, cols] matrix, transposed to [(c1-c0), rows].
  const colsT = (w: Float32Array, rows: number, cols: number, c0: number, c1: number): Float32Array => {
    const n = c1 - c0;
    const out = new Float32Array(n * rows);
    for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) out[k * rows + r] = w[r * cols + c0 + k];
    return out;
  };
  const tensors: GTensor[] = [{ name: "token_embd.weight", shape: [c.vocabSize, d], data: get("embed") }];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `layers.${l}.`;
    const b = `blk.${l}.`;
    const wqkv = get(p + "wqkv");
    tensors.push({ name: b + "attn_norm.weight", shape: [d], data: get(p + "attn_norm") });
    tensors.push({ name: b + "attn_q.weight", shape: [qDim, d], data: colsT(wqkv, d, qkvDim, 0, qDim) });
    tensors.push({ name: b + "attn_k.weight", shape: [kvDim, d], data: colsT(wqkv, d, qkvDim, qDim, qDim + kvDim) });
    tensors.push({ name: b + "attn_v.weight", shape: [kvDim, d], data: colsT(wqkv, d, qkvDim, qDim + kvDim, qkvDim) });
    if (c.attentionBias) {
      const bq = get(p + "bqkv");
      tensors.push({ name: b + "attn_q.bias", shape: [qDim], data: bq.slice(0, qDim) });
      tensors.push({ name: b + "attn_k.bias", shape: [kvDim], data: bq.slice(qDim, qDim + kvDim) });
      tensors.push({ name: b + "attn_v.bias", shape: [kvDim], data: bq.slice(qDim + kvDim) });
    }
    tensors.push({ name: b + "attn_output.weight", shape: [d, qDim], data: colsT(get(p + "wo"), qDim, d, 0, d) });
    tensors.push({ name: b + "ffn_norm.weight", shape: [d], data: get(p + "mlp_norm") });
    const wgu = get(p + "wgu");
    tensors.push({ name: b + "ffn_gate.weight", shape: [ffn, d], data: colsT(wgu, d, 2 * ffn, 0, ffn) });
    tensors.push({ name: b + "ffn_up.weight", shape: [ffn, d], data: colsT(wgu, d, 2 * ffn, ffn, 2 * ffn) });
    tensors.push({ name: b + "ffn_down.weight", shape: [d, ffn], data: colsT(get(p + "wd"), ffn, d, 0, d) });
  }
  tensors.push({ name: "output_norm.weight", shape: [d], data: get("final_norm") });
  tensors.push({ name: "output.weight", shape: [c.vocabSize, d], data: get(c.tieEmbeddings ? "embed" : "lm_head") });
  return buildGguf(meta, tensors, opts.f16 ?? false);
}

/** Write a model + tokenizer as a GGUF file (atomically). */
export async function exportGguf(
  model: Transformer,
  tokenizer: BpeTokenizer | Record<string, unknown>,
  outFile: string,
  opts: GgufExportOptions = {},
): Promise<void> {
  await atomicWriteFile(outFile, ggufBytes(model, tokenizer, opts));
}

/** Export a checkpoint folder (config.json + safetensors + byte-level BPE tokenizer.json) to GGUF. */
export async function exportGgufFromCheckpoint(
  dir: string,
  outFile: string,
  opts: GgufExportOptions = {},
): Promise<void> {
  const tokFile = path.join(dir, "tokenizer.json");
  let tokJson: Record<string, unknown>;
  try {
    tokJson = JSON.parse(await fsp.readFile(tokFile, "utf8"));
  } catch {
    throw new Error(`${tokFile}: missing or not JSON (GGUF export needs the tokenizer)`);
  }
  const model = await loadCheckpoint(dir);
  try {
    await exportGguf(model, tokJson, outFile, { name: opts.name ?? path.basename(path.resolve(dir)), ...opts });
  } finally {
    model.dispose();
  }
}
