/**
 * A minimal GGUF (v3) writer for test models, plus a "bigram" llama model whose next-token logits depend only on the
 * current token. With zero attention and MLP weights the residual stream is the token embedding, so
 * `logits = output · rmsnorm(embedding[t])`; one-hot embeddings of norm sqrt(d) make `logits[v] = L[t][v]` for a table
 * `L` we choose. That gives a real llama.cpp model with exactly known log-probs and scripted (greedy) behaviour.
 *
 * Test fixture only: real checkpoints are exported by src/model.
 */
import { writeFileSync } from "node:fs";

type KvValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "str"; value: string }
  | { type: "arr_str"; value: string[] }
  | { type: "arr_f32"; value: number[] }
  | { type: "arr_i32"; value: number[] };

export interface GgufTensor {
  name: string;
  /** ggml dims, innermost first (ne0 = row length). */
  dims: number[];
  data: Float32Array;
}

const T_U32 = 4;
const T_I32 = 5;
const T_F32 = 6;
const T_BOOL = 7;
const T_STR = 8;
const T_ARR = 9;

class Buf {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v | 0);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  pad(align: number): void {
    const r = this.length % align;
    if (r) this.push(Buffer.alloc(align - r));
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Serialize metadata + F32 tensors into a GGUF v3 file. */
export function encodeGguf(kv: Record<string, KvValue>, tensors: GgufTensor[], alignment = 32): Buffer {
  const out = new Buf();
  out.push(Buffer.from("GGUF", "ascii"));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(Object.keys(kv).length);
  for (const [key, v] of Object.entries(kv)) {
    out.str(key);
    switch (v.type) {
      case "u32":
        out.u32(T_U32);
        out.u32(v.value);
        break;
      case "i32":
        out.u32(T_I32);
        out.i32(v.value);
        break;
      case "f32":
        out.u32(T_F32);
        out.f32(v.value);
        break;
      case "bool":
        out.u32(T_BOOL);
        out.push(Buffer.from([v.value ? 1 : 0]));
        break;
      case "str":
        out.u32(T_STR);
        out.str(v.value);
        break;
      case "arr_str":
        out.u32(T_ARR);
        out.u32(T_STR);
        out.u64(v.value.length);
        for (const s of v.value) out.str(s);
        break;
      case "arr_f32":
        out.u32(T_ARR);
        out.u32(T_F32);
        out.u64(v.value.length);
        for (const x of v.value) out.f32(x);
        break;
      case "arr_i32":
        out.u32(T_ARR);
        out.u32(T_I32);
        out.u64(v.value.length);
        for (const x of v.value) out.i32(x);
        break;
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${t.name}: dims ${t.dims} do not match ${t.data.length} values`);
    offsets.push(offset);
    offset += Math.ceil((n * 4) / alignment) * alignment;
  }
  tensors.forEach((t, i) => {
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(0); // GGML_TYPE_F32
    out.u64(offsets[i]);
  });
  out.pad(alignment);
  for (const t of tensors) {
    out.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    out.pad(alignment);
  }
  return out.concat();
}

/** Token types of llama.cpp's vocabulary. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, byte: 6 } as const;

export interface BigramVocab {
  /** Token strings: `<unk>`, `<s>`, `</s>`, 256 byte tokens, then pieces (SPM style, spaces as U+2581). */
  tokens: string[];
  types: number[];
  scores: number[];
}

/**
 * Build an SPM-style vocabulary: specials, byte fallback, every single character of `alphabet` (spaces as U+2581),
 * the given `words` with all their prefixes (so SPM merges can reach them), and `userDefined` pieces that the
 * tokenizer always matches whole (tags).
 */
export function buildSpmVocab(alphabet: string, words: string[], userDefined: string[]): BigramVocab {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_TYPE.byte);
    scores.push(0);
  }
  const seen = new Set(tokens);
  const add = (piece: string, type: number): void => {
    if (seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    types.push(type);
    scores.push(type === TOKEN_TYPE.userDefined ? 0 : piece.length);
  };
  for (const u of userDefined) add(u, TOKEN_TYPE.userDefined);
  for (const ch of new Set(Array.from(alphabet.replace(/ /g, "\u2581")))) add(ch, TOKEN_TYPE.normal);
  for (const w0 of words) {
    const w = w0.replace(/ /g, "\u2581");
    const chars = Array.from(w);
    for (let i = 1; i <= chars.length; i++) add(chars.slice(0, i).join(""), TOKEN_TYPE.normal);
  }
  return { tokens, types, scores };
}

export interface BigramModelOptions {
  vocab: BigramVocab;
  /** logits[t][v] for every current token t (rows may be omitted: default all zero). */
  logits: (t: number) => Float32Array | null;
  contextLength?: number;
  /** Embedding width; must be >= vocab size (one-hot embeddings). Rounded up to a multiple of 4 heads. */
  embd?: number;
  name?: string;
}

/** Write a llama-architecture GGUF whose logits follow a bigram table exactly (up to float rounding). */
export function writeBigramGguf(file: string, opts: BigramModelOptions): void {
  const V = opts.vocab.tokens.length;
  const heads = 4;
  let d = Math.max(opts.embd ?? V, V);
  d = Math.ceil(d / (heads * 2)) * heads * 2;
  const ff = 8;
  const scale = Math.sqrt(d);
  const embd = new Float32Array(V * d);
  for (let t = 0; t < V; t++) embd[t * d + t] = scale;
  // output.weight: ggml dims [d, V] = V rows of length d; logits[v] = sum_i out[v][i] * h[i], h = sqrt(d) e_t.
  const out = new Float32Array(V * d);
  for (let t = 0; t < V; t++) {
    const row = opts.logits(t);
    if (!row) continue;
    for (let v = 0; v < V; v++) out[v * d + t] = row[v] / scale;
  }
  const ones = new Float32Array(d).fill(1);
  const zeros = (n: number): Float32Array => new Float32Array(n);
  const tensors: GgufTensor[] = [
    { name: "token_embd.weight", dims: [d, V], data: embd },
    { name: "output_norm.weight", dims: [d], data: ones },
    { name: "output.weight", dims: [d, V], data: out },
    { name: "blk.0.attn_norm.weight", dims: [d], data: ones },
    { name: "blk.0.attn_q.weight", dims: [d, d], data: zeros(d * d) },
    { name: "blk.0.attn_k.weight", dims: [d, d], data: zeros(d * d) },
    { name: "blk.0.attn_v.weight", dims: [d, d], data: zeros(d * d) },
    { name: "blk.0.attn_output.weight", dims: [d, d], data: zeros(d * d) },
    { name: "blk.0.ffn_norm.weight", dims: [d], data: ones },
    { name: "blk.0.ffn_gate.weight", dims: [d, ff], data: zeros(d * ff) },
    { name: "blk.0.ffn_up.weight", dims: [d, ff], data: zeros(d * ff) },
    { name: "blk.0.ffn_down.weight", dims: [ff, d], data: zeros(ff * d) },
  ];
  const kv: Record<string, KvValue> = {
    "general.architecture": { type: "str", value: "llama" },
    "general.name": { type: "str", value: opts.name ?? "bigram-test" },
    "llama.context_length": { type: "u32", value: opts.contextLength ?? 2048 },
    "llama.embedding_length": { type: "u32", value: d },
    "llama.block_count": { type: "u32", value: 1 },
    "llama.feed_forward_length": { type: "u32", value: ff },
    "llama.attention.head_count": { type: "u32", value: heads },
    "llama.attention.head_count_kv": { type: "u32", value: heads },
    "llama.rope.dimension_count": { type: "u32", value: d / heads },
    "llama.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-6 },
    "tokenizer.ggml.model": { type: "str", value: "llama" },
    "tokenizer.ggml.tokens": { type: "arr_str", value: opts.vocab.tokens },
    "tokenizer.ggml.scores": { type: "arr_f32", value: opts.vocab.scores },
    "tokenizer.ggml.token_type": { type: "arr_i32", value: opts.vocab.types },
    "tokenizer.ggml.unknown_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: 2 },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
    "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
  };
  writeFileSync(file, encodeGguf(kv, tensors));
}
