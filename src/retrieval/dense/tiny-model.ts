/**
 * A tiny, locally generated text-embedding model in the standard export layout (`model.onnx` + `tokenizer.json`), for
 * tests, examples and the synthetic quickstart world. It is a real ONNX graph run by ONNX Runtime:
 *
 *   e_t = E[input_ids_t]                          (Gather; E[CLS] = E[SEP] = E[PAD] = 0)
 *   h_t = tanh(e_t · W + b) · mask_t
 *   m   = Σ_t h_t / Σ_t mask_t                    (masked mean over the sequence)
 *   last_hidden_state_t = h_t + m
 *
 * so CLS pooling returns m and mean pooling returns 2·m: a bag-of-words embedding in which passages sharing words with
 * the query score higher. `tinyEmbeddingReference` computes the same numbers in plain JavaScript.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { Rng } from "../../util/rng.js";
import { buildOnnxModel } from "./onnx-writer.js";

export interface TinyEmbeddingModelOptions {
  /** Words of the vocabulary (lower-case; the tokenizer lower-cases input). Unknown words map to [UNK]. */
  words: readonly string[];
  hidden?: number;
  seed?: number;
  /** Also declare a token_type_ids input (as BERT exports do). Default true. */
  tokenTypeIds?: boolean;
}

export interface TinyEmbeddingWeights {
  vocab: Map<string, number>;
  hidden: number;
  E: Float32Array;
  W: Float32Array;
  b: Float32Array;
}

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];

function makeWeights(opts: TinyEmbeddingModelOptions): TinyEmbeddingWeights {
  const hidden = opts.hidden ?? 32;
  const rng = new Rng(opts.seed ?? 7);
  const vocab = new Map<string, number>();
  for (const s of SPECIALS) vocab.set(s, vocab.size);
  for (const w of opts.words) if (!vocab.has(w)) vocab.set(w, vocab.size);
  const V = vocab.size;
  const E = new Float32Array(V * hidden);
  for (let i = 0; i < E.length; i++) E[i] = rng.normal() * 0.8;
  for (const s of ["[PAD]", "[CLS]", "[SEP]"]) E.fill(0, vocab.get(s)! * hidden, (vocab.get(s)! + 1) * hidden);
  const W = new Float32Array(hidden * hidden);
  for (let i = 0; i < hidden; i++)
    for (let j = 0; j < hidden; j++) W[i * hidden + j] = (i === j ? 1 : 0) + rng.normal() * 0.05;
  const b = new Float32Array(hidden);
  return { vocab, hidden, E, W, b };
}

function tokenizerJson(vocab: Map<string, number>): unknown {
  const special = (content: string) => ({
    id: vocab.get(content)!,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [vocab.get("[CLS]")], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [vocab.get("[SEP]")], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab),
    },
  };
}

/** Write `model.onnx`, `tokenizer.json`, `tokenizer_config.json` and `config.json` into `dir`; returns the weights. */
export async function writeTinyEmbeddingModel(
  dir: string,
  opts: TinyEmbeddingModelOptions,
): Promise<TinyEmbeddingWeights> {
  const w = makeWeights(opts);
  const H = w.hidden;
  const V = w.vocab.size;
  const inputs = [
    { name: "input_ids", dtype: "int64" as const, shape: ["batch", "tokens"] },
    { name: "attention_mask", dtype: "int64" as const, shape: ["batch", "tokens"] },
  ];
  if (opts.tokenTypeIds !== false)
    inputs.push({ name: "token_type_ids", dtype: "int64" as const, shape: ["batch", "tokens"] });
  const bytes = buildOnnxModel({
    inputs,
    outputs: [{ name: "last_hidden_state", dtype: "float32", shape: ["batch", "tokens", H] }],
    initializers: [
      { name: "E", dtype: "float32", dims: [V, H], data: w.E },
      { name: "W", dtype: "float32", dims: [H, H], data: w.W },
      { name: "b", dtype: "float32", dims: [H], data: w.b },
      { name: "axis_last", dtype: "int64", dims: [1], data: BigInt64Array.from([-1n]) },
      { name: "axis_seq", dtype: "int64", dims: [1], data: BigInt64Array.from([1n]) },
    ],
    nodes: [
      { op: "Gather", inputs: ["E", "input_ids"], outputs: ["e"], attrs: { axis: { i: 0 } } },
      { op: "MatMul", inputs: ["e", "W"], outputs: ["ew"] },
      { op: "Add", inputs: ["ew", "b"], outputs: ["ewb"] },
      { op: "Tanh", inputs: ["ewb"], outputs: ["t"] },
      { op: "Cast", inputs: ["attention_mask"], outputs: ["maskf"], attrs: { to: { i: 1 } } },
      { op: "Unsqueeze", inputs: ["maskf", "axis_last"], outputs: ["mask3"] },
      { op: "Mul", inputs: ["t", "mask3"], outputs: ["h"] },
      { op: "ReduceSum", inputs: ["h", "axis_seq"], outputs: ["hsum"], attrs: { keepdims: { i: 1 } } },
      { op: "ReduceSum", inputs: ["mask3", "axis_seq"], outputs: ["msum"], attrs: { keepdims: { i: 1 } } },
      { op: "Div", inputs: ["hsum", "msum"], outputs: ["mean"] },
      { op: "Add", inputs: ["h", "mean"], outputs: ["last_hidden_state"] },
    ],
  });
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, "model.onnx"), bytes);
  await fsp.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson(w.vocab)));
  await fsp.writeFile(
    path.join(dir, "tokenizer_config.json"),
    JSON.stringify({
      tokenizer_class: "BertTokenizer",
      do_lower_case: true,
      pad_token: "[PAD]",
      unk_token: "[UNK]",
      cls_token: "[CLS]",
      sep_token: "[SEP]",
    }),
  );
  await fsp.writeFile(
    path.join(dir, "config.json"),
    JSON.stringify({ model_type: "bert", hidden_size: H, vocab_size: V, searchrl_tiny: true }),
  );
  return w;
}

/**
 * The model's output for already-tokenized ids (with [CLS]/[SEP]), pooled and L2-normalized, computed in plain JS.
 */
export function tinyEmbeddingReference(
  w: TinyEmbeddingWeights,
  ids: readonly number[],
  pooling: "cls" | "mean",
): Float32Array {
  const H = w.hidden;
  const hs: Float32Array[] = ids.map((id) => {
    const h = new Float32Array(H);
    for (let j = 0; j < H; j++) {
      let s = w.b[j];
      for (let i = 0; i < H; i++) s += w.E[id * H + i] * w.W[i * H + j];
      h[j] = Math.tanh(s);
    }
    return h;
  });
  const m = new Float32Array(H);
  for (const h of hs) for (let j = 0; j < H; j++) m[j] += h[j] / hs.length;
  const out = new Float32Array(H);
  if (pooling === "cls") for (let j = 0; j < H; j++) out[j] = hs[0][j] + m[j];
  else {
    for (const h of hs) for (let j = 0; j < H; j++) out[j] += (h[j] + m[j]) / hs.length;
  }
  let n = 0;
  for (let j = 0; j < H; j++) n += out[j] * out[j];
  n = Math.sqrt(n);
  for (let j = 0; j < H; j++) out[j] /= n;
  return out;
}
