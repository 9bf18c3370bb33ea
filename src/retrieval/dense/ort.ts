/**
 * ONNX Runtime (onnxruntime-node, CPU) helpers: lazy loading, sessions, and two matrix kernels built with our own ONNX
 * writer: `MatMul → ArgMax/ReduceMax` (nearest-centroid assignment for k-means) and `MatMul → TopK` (exact batched
 * inner-product search).
 */
import type * as OrtTypes from "onnxruntime-node";
import { buildOnnxModel } from "./onnx-writer.js";

export type Ort = typeof OrtTypes;

let ortPromise: Promise<Ort> | null = null;

/** Load onnxruntime-node once (it is heavy; CLI commands that do not need it never load it). */
export function loadOrt(): Promise<Ort> {
  if (!ortPromise) {
    ortPromise = import("onnxruntime-node").then(
      (m) => (m as unknown as { default?: Ort }).default ?? (m as unknown as Ort),
    );
    ortPromise.catch(() => (ortPromise = null));
  }
  return ortPromise;
}

export interface SessionOptions {
  /** Intra-op threads (default 1: the machine's other core serves the event loop and LanceDB). */
  threads?: number;
}

export async function createSession(
  model: string | Uint8Array,
  opts: SessionOptions = {},
): Promise<OrtTypes.InferenceSession> {
  const ort = await loadOrt();
  const so: OrtTypes.InferenceSession.SessionOptions = {
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  };
  return typeof model === "string" ? ort.InferenceSession.create(model, so) : ort.InferenceSession.create(model, so);
}

/**
 * Nearest centroid by inner product for a block of rows: `assign(X[m×d]) → (argmax_j X·Cᵀ, max_j X·Cᵀ)`.
 * The centroid matrix is baked into the session as an initializer.
 */
export class CentroidAssigner {
  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtTypes.InferenceSession,
    readonly dim: number,
    readonly k: number,
  ) {}

  static async create(centroids: Float32Array, k: number, dim: number, threads = 1): Promise<CentroidAssigner> {
    const ort = await loadOrt();
    const ct = new Float32Array(dim * k);
    for (let j = 0; j < k; j++) for (let d = 0; d < dim; d++) ct[d * k + j] = centroids[j * dim + d];
    const bytes = buildOnnxModel({
      inputs: [{ name: "x", dtype: "float32", shape: ["m", dim] }],
      outputs: [
        { name: "idx", dtype: "int64", shape: ["m"] },
        { name: "best", dtype: "float32", shape: ["m"] },
      ],
      initializers: [{ name: "ct", dtype: "float32", dims: [dim, k], data: ct }],
      nodes: [
        { op: "MatMul", inputs: ["x", "ct"], outputs: ["s"] },
        { op: "ArgMax", inputs: ["s"], outputs: ["idx"], attrs: { axis: { i: 1 }, keepdims: { i: 0 } } },
        { op: "ReduceMax", inputs: ["s"], outputs: ["best"], attrs: { axes: { ints: [1] }, keepdims: { i: 0 } } },
      ],
    });
    return new CentroidAssigner(ort, await createSession(bytes, { threads }), dim, k);
  }

  /** Assign `m` rows stored contiguously in `x`. */
  async assign(x: Float32Array, m: number): Promise<{ idx: Int32Array; best: Float32Array }> {
    const input = new this.ort.Tensor("float32", x.subarray(0, m * this.dim), [m, this.dim]);
    const out = await this.session.run({ x: input });
    const idx64 = out.idx.data as BigInt64Array;
    const idx = new Int32Array(m);
    for (let i = 0; i < m; i++) idx[i] = Number(idx64[i]);
    return { idx, best: (out.best.data as Float32Array).slice() };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** `Y = X · W` for blocks of rows, with W (k × out) baked in; plus the Gram matrix `Xᵀ·X` of a block. */
export class MatrixKernels {
  private constructor(
    private readonly ort: Ort,
    private readonly proj: OrtTypes.InferenceSession | null,
    private readonly gram: OrtTypes.InferenceSession,
    readonly inDim: number,
    readonly outDim: number,
  ) {}

  /** `w` row-major (inDim × outDim); null → only the Gram kernel. */
  static async create(w: Float32Array | null, inDim: number, outDim: number, threads = 1): Promise<MatrixKernels> {
    const ort = await loadOrt();
    const proj = w
      ? await createSession(
          buildOnnxModel({
            inputs: [{ name: "x", dtype: "float32", shape: ["m", inDim] }],
            outputs: [{ name: "y", dtype: "float32", shape: ["m", outDim] }],
            initializers: [{ name: "w", dtype: "float32", dims: [inDim, outDim], data: w }],
            nodes: [{ op: "MatMul", inputs: ["x", "w"], outputs: ["y"] }],
          }),
          { threads },
        )
      : null;
    const gram = await createSession(
      buildOnnxModel({
        inputs: [{ name: "x", dtype: "float32", shape: ["m", inDim] }],
        outputs: [{ name: "g", dtype: "float32", shape: [inDim, inDim] }],
        nodes: [
          { op: "Transpose", inputs: ["x"], outputs: ["xt"], attrs: { perm: { ints: [1, 0] } } },
          { op: "MatMul", inputs: ["xt", "x"], outputs: ["g"] },
        ],
      }),
      { threads },
    );
    return new MatrixKernels(ort, proj, gram, inDim, outDim);
  }

  async project(x: Float32Array, m: number): Promise<Float32Array> {
    if (!this.proj) throw new Error("no projection matrix");
    const out = await this.proj.run({
      x: new this.ort.Tensor("float32", x.subarray(0, m * this.inDim), [m, this.inDim]),
    });
    return out.y.data as Float32Array;
  }

  async gramOf(x: Float32Array, m: number): Promise<Float32Array> {
    const out = await this.gram.run({
      x: new this.ort.Tensor("float32", x.subarray(0, m * this.inDim), [m, this.inDim]),
    });
    return out.g.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.proj?.release();
    await this.gram.release();
  }
}

/** Exact batched inner-product top-k against a fixed matrix (baked in as an initializer). */
export class MatrixTopK {
  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtTypes.InferenceSession,
    readonly dim: number,
    readonly rows: number,
  ) {}

  static async create(matrix: Float32Array, rows: number, dim: number, threads = 1): Promise<MatrixTopK> {
    const ort = await loadOrt();
    const bt = new Float32Array(dim * rows);
    for (let r = 0; r < rows; r++) for (let d = 0; d < dim; d++) bt[d * rows + r] = matrix[r * dim + d];
    const bytes = buildOnnxModel({
      inputs: [
        { name: "q", dtype: "float32", shape: ["n", dim] },
        { name: "k", dtype: "int64", shape: [1] },
      ],
      outputs: [
        { name: "values", dtype: "float32", shape: ["n", "k"] },
        { name: "indices", dtype: "int64", shape: ["n", "k"] },
      ],
      initializers: [{ name: "bt", dtype: "float32", dims: [dim, rows], data: bt }],
      nodes: [
        { op: "MatMul", inputs: ["q", "bt"], outputs: ["s"] },
        {
          op: "TopK",
          inputs: ["s", "k"],
          outputs: ["values", "indices"],
          attrs: { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } },
        },
      ],
    });
    return new MatrixTopK(ort, await createSession(bytes, { threads }), dim, rows);
  }

  /** Top-k rows (by inner product) for each of `n` queries stored contiguously in `q`. */
  async search(q: Float32Array, n: number, k: number): Promise<Array<Array<{ row: number; score: number }>>> {
    const kk = Math.min(k, this.rows);
    if (kk <= 0 || n === 0) return Array.from({ length: n }, () => []);
    const out = await this.session.run({
      q: new this.ort.Tensor("float32", q.subarray(0, n * this.dim), [n, this.dim]),
      k: new this.ort.Tensor("int64", BigInt64Array.from([BigInt(kk)]), [1]),
    });
    const vals = out.values.data as Float32Array;
    const idx = out.indices.data as BigInt64Array;
    const res: Array<Array<{ row: number; score: number }>> = [];
    for (let i = 0; i < n; i++) {
      const row: Array<{ row: number; score: number }> = [];
      for (let j = 0; j < kk; j++) row.push({ row: Number(idx[i * kk + j]), score: vals[i * kk + j] });
      res.push(row);
    }
    return res;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
