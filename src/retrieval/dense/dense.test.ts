import { describe, expect, it, beforeAll } from "vitest";
import { readFileSync, writeFileSync, rmSync } from "node:fs";
import path from "node:path";
import { Rng } from "../../util/rng.js";
import { buildOnnxModel } from "./onnx-writer.js";
import { createSession, loadOrt, MatrixTopK } from "./ort.js";
import {
  BGE_QUERY_INSTRUCTION,
  embeddingPreset,
  findModelFiles,
  OnnxEmbedder,
  passageEmbeddingText,
} from "./encoder.js";
import { tinyEmbeddingReference, writeTinyEmbeddingModel, type TinyEmbeddingWeights } from "./tiny-model.js";
import { KernelHost, padDim } from "./simd.js";
import { buildVectorIndex, exactTopK, VectorIndex, VECTORS_FILE } from "./vector-index.js";
import { tempDirs } from "../../../test/temp-dirs.js";

const tmpDir = tempDirs();

describe("ONNX writer", () => {
  it("writes a graph ONNX Runtime runs exactly (MatMul → Add → Relu, attributes, dynamic dims)", async () => {
    const W = Float32Array.from([1, -2, 0.5, 3, 0, -1]);
    const bytes = buildOnnxModel({
      inputs: [{ name: "x", dtype: "float32", shape: ["n", 2] }],
      outputs: [
        { name: "y", dtype: "float32", shape: ["n", 3] },
        { name: "am", dtype: "int64", shape: ["n"] },
      ],
      initializers: [
        { name: "W", dtype: "float32", dims: [2, 3], data: W },
        { name: "b", dtype: "float32", dims: [3], data: Float32Array.from([0.25, 0, -0.5]) },
      ],
      nodes: [
        { op: "MatMul", inputs: ["x", "W"], outputs: ["xw"] },
        { op: "Add", inputs: ["xw", "b"], outputs: ["z"] },
        { op: "Relu", inputs: ["z"], outputs: ["y"] },
        { op: "ArgMax", inputs: ["z"], outputs: ["am"], attrs: { axis: { i: -1 }, keepdims: { i: 0 } } },
      ],
    });
    const ort = await loadOrt();
    const s = await createSession(bytes);
    const x = Float32Array.from([1, 2, -1, 0.5]);
    const out = await s.run({ x: new ort.Tensor("float32", x, [2, 2]) });
    const want: number[] = [];
    const am: number[] = [];
    for (let r = 0; r < 2; r++) {
      const z = [0, 1, 2].map((j) => x[r * 2] * W[j] + x[r * 2 + 1] * W[3 + j] + [0.25, 0, -0.5][j]);
      want.push(...z.map((v) => Math.max(0, v)));
      am.push(z.indexOf(Math.max(...z)));
    }
    expect(Array.from(out.y.data as Float32Array)).toEqual(want.map((v) => Math.fround(v)));
    expect(Array.from(out.am.data as BigInt64Array, Number)).toEqual(am);
    await s.release();
  });

  it("MatrixTopK does exact batched inner-product search", async () => {
    const rng = new Rng(1);
    const X = Float32Array.from({ length: 500 * 16 }, () => rng.normal());
    const Q = Float32Array.from({ length: 3 * 16 }, () => rng.normal());
    const m = await MatrixTopK.create(X, 500, 16);
    const res = await m.search(Q, 3, 5);
    for (let i = 0; i < 3; i++)
      expect(res[i].map((r) => r.row)).toEqual(exactTopK(X, 16, Q.subarray(i * 16, i * 16 + 16), 5).map((r) => r.row));
    await m.release();
  });
});

describe("WebAssembly SIMD kernels", () => {
  it("f32dots and i8dots equal plain loops", () => {
    const h = new KernelHost();
    const rng = new Rng(2);
    const dim = padDim(40);
    expect(dim).toBe(48);
    const n = 37;
    const q = h.alloc(dim * 4);
    const base = h.alloc(n * dim * 4);
    const out = h.alloc(n * 4);
    const qv = h.f32View(q, dim);
    const bv = h.f32View(base, n * dim);
    for (let i = 0; i < dim; i++) qv[i] = rng.normal();
    for (let i = 0; i < n * dim; i++) bv[i] = rng.normal();
    h.f32dots(q, base, n, dim, out);
    const ov = h.f32View(out, n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += qv[j] * bv[r * dim + j];
      expect(ov[r]).toBeCloseTo(s, 4);
    }
    const q16 = h.alloc(dim * 2);
    const codes = h.alloc(n * dim);
    const out2 = h.alloc(n * 4);
    const q16v = h.i16View(q16, dim);
    const cv = h.i8View(codes, n * dim);
    for (let i = 0; i < dim; i++) q16v[i] = rng.int(65535) - 32767;
    for (let i = 0; i < n * dim; i++) cv[i] = rng.int(255) - 127;
    h.i8dots(q16, codes, n, dim, out2);
    const o2 = h.i32View(out2, n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += q16v[j] * cv[r * dim + j];
      expect(o2[r]).toBe(s);
    }
  });
});

const WORDS = [
  "citibank",
  "bank",
  "founded",
  "river",
  "thames",
  "london",
  "python",
  "snake",
  "language",
  "programming",
  "music",
  "guitar",
  "ahmose",
  "pharaoh",
  "egypt",
  "who",
];

describe("ONNX text embedder (test-built tiny model, real ONNX Runtime)", () => {
  let dir: string;
  let weights: TinyEmbeddingWeights;
  beforeAll(async () => {
    dir = tmpDir("tiny-");
    weights = await writeTinyEmbeddingModel(dir, { words: WORDS, hidden: 24, seed: 3 });
  });

  function ids(text: string): number[] {
    const tok = (s: string) => (weights.vocab.has(s) ? weights.vocab.get(s)! : weights.vocab.get("[UNK]")!);
    // BertPreTokenizer: words and punctuation; lower-cased.
    const pieces = text.toLowerCase().match(/[a-z0-9]+|[^\sa-z0-9]/g) ?? [];
    return [weights.vocab.get("[CLS]")!, ...pieces.map(tok), weights.vocab.get("[SEP]")!];
  }

  it("bge preset: instruction without a space, CLS pooling, L2-normalized — equals the JS reference", async () => {
    const cfg = embeddingPreset("bge");
    expect(cfg.queryPrefix).toBe("Represent this sentence for searching relevant passages:");
    expect(cfg.queryPrefix).toBe(BGE_QUERY_INSTRUCTION);
    expect(embeddingPreset("bge", { instructionSpace: true }).queryPrefix).toBe(BGE_QUERY_INSTRUCTION + " ");
    const emb = await OnnxEmbedder.open(dir, cfg);
    expect(emb.dim).toBe(24);
    const v = await emb.embedQueries(["Who founded Citibank", "python snake"]);
    const ref = tinyEmbeddingReference(weights, ids(BGE_QUERY_INSTRUCTION + "Who founded Citibank"), "cls");
    for (let j = 0; j < 24; j++) expect(v[j]).toBeCloseTo(ref[j], 5);
    let norm = 0;
    for (let j = 24; j < 48; j++) norm += v[j] ** 2;
    expect(norm).toBeCloseTo(1, 5);
    await emb.close();
  });

  it("e5 preset: query:/passage: prefixes and mean pooling; passages embedded as contents", async () => {
    const cfg = embeddingPreset("e5");
    expect([cfg.queryPrefix, cfg.passagePrefix, cfg.pooling]).toEqual(["query: ", "passage: ", "mean"]);
    const emb = await OnnxEmbedder.open(dir, cfg);
    const p = { id: "1", title: "Thames", text: "river in London" };
    expect(passageEmbeddingText(p, "contents")).toBe('"Thames"\nriver in London');
    const v = await emb.embedPassages([p]);
    const ref = tinyEmbeddingReference(weights, ids('passage: "Thames"\nriver in London'), "mean");
    for (let j = 0; j < 24; j++) expect(v[j]).toBeCloseTo(ref[j], 5);
    await emb.close();
  });

  it("R1-Searcher passage text is the TSV text field; long inputs are truncated keeping [CLS]/[SEP]", async () => {
    expect(passageEmbeddingText({ id: "3", title: "T", text: "a b", raw: "3\tT   a b" }, "tsv-field")).toBe("T   a b");
    expect(passageEmbeddingText({ id: "3", title: "T", text: "a b" }, "tsv-field")).toBe("T   a b");
    const cfg = { ...embeddingPreset("bge"), passageMaxLength: 6 };
    const emb = await OnnxEmbedder.open(dir, cfg);
    const long = "river thames london python snake music guitar egypt";
    const v = await emb.embedPassages([{ id: "9", title: "", text: long }]);
    const full = ids(long);
    const ref = tinyEmbeddingReference(weights, [...full.slice(0, 5), full[full.length - 1]], "cls");
    for (let j = 0; j < 24; j++) expect(v[j]).toBeCloseTo(ref[j], 5);
    await emb.close();
  });

  it("a model folder without the files names what is missing", async () => {
    const empty = tmpDir("nomodel-");
    expect(() => findModelFiles(empty)).toThrow(/missing model\.onnx \(or onnx\/model\.onnx\) and tokenizer\.json/);
    writeFileSync(path.join(empty, "model.onnx"), readFileSync(path.join(dir, "model.onnx")));
    await expect(OnnxEmbedder.open(empty, embeddingPreset("bge"))).rejects.toThrow(
      /missing tokenizer\.json.*never downloads/,
    );
    rmSync(empty, { recursive: true });
  });
});

/** Low-rank synthetic embeddings: normalize(A·z + noise), z ~ N(0, I_r). */
function lowRank(n: number, dim: number, r: number, rng: Rng, A: Float32Array, sigma = 0.3): Float32Array {
  const X = new Float32Array(n * dim);
  const z = new Float64Array(r);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < r; j++) z[j] = rng.normal();
    let ss = 0;
    for (let d = 0; d < dim; d++) {
      let s = sigma * rng.normal();
      for (let j = 0; j < r; j++) s += A[d * r + j] * z[j];
      X[i * dim + d] = s;
      ss += s * s;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let d = 0; d < dim; d++) X[i * dim + d] *= inv;
  }
  return X;
}

describe("vector index", () => {
  const dim = 160;
  const n = 12_000;
  const rng = new Rng(4);
  const A = Float32Array.from({ length: dim * 12 }, () => rng.normal() / Math.sqrt(12));
  const X = lowRank(n, dim, 12, rng, A);
  const Q = lowRank(50, dim, 12, new Rng(99), A);

  it("flat search is exact", () => {
    const d = tmpDir("vflat-");
    writeFileSync(path.join(d, VECTORS_FILE), new Uint8Array(X.buffer, 0, 2000 * dim * 4));
    const ix = VectorIndex.open(d, { type: "flat", dim, size: 2000, metric: "ip" });
    for (let i = 0; i < 10; i++) {
      const q = Q.subarray(i * dim, (i + 1) * dim);
      const got = ix.search(q, 7);
      const want = exactTopK(X.subarray(0, 2000 * dim), dim, q, 7);
      expect(got.map((g) => g.row)).toEqual(want.map((w) => w.row));
      got.forEach((g, j) => expect(g.score).toBeCloseTo(want[j].score, 4));
    }
    expect(() => ix.search(new Float32Array(3), 2)).toThrow(/3 dimensions, the index 160/);
  });

  it("ivf-sq8 (PCA codes, k-means through ONNX Runtime) reaches high recall and re-ranks with exact scores", async () => {
    const d = tmpDir("vivf-");
    writeFileSync(path.join(d, VECTORS_FILE), new Uint8Array(X.buffer));
    const meta = await buildVectorIndex(d, dim, n, {
      type: "ivf-sq8",
      nlist: 64,
      pcaDims: 32,
      iterations: 6,
      progress: false,
    });
    expect(meta).toMatchObject({ type: "ivf-sq8", nlist: 64, pcaDims: 32, size: n });
    const ix = VectorIndex.open(d, meta);
    let hits = 0;
    for (let i = 0; i < 50; i++) {
      const q = Q.subarray(i * dim, (i + 1) * dim);
      const got = ix.search(q, 10, { nprobe: 16 });
      const want = exactTopK(X, dim, q, 10);
      const ws = new Set(want.map((w) => w.row));
      for (const g of got) if (ws.has(g.row)) hits++;
      // scores are exact inner products of the returned rows
      for (const g of got) {
        let s = 0;
        for (let t = 0; t < dim; t++) s += q[t] * X[g.row * dim + t];
        expect(g.score).toBeCloseTo(s, 4);
      }
    }
    expect(hits / 500).toBeGreaterThan(0.9);
    // Probing every list finds the exact top-1 always.
    for (let i = 0; i < 10; i++) {
      const q = Q.subarray(i * dim, (i + 1) * dim);
      expect(ix.search(q, 1, { nprobe: 64, rerank: 200 })[0].row).toBe(exactTopK(X, dim, q, 1)[0].row);
    }
  });
});
