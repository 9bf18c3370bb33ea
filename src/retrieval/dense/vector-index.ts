/**
 * Inner-product vector search over L2-normalized embeddings, in-process on CPU.
 *
 * Two index types:
 * - `flat`: exact search (every vector scored with a WebAssembly SIMD float32 kernel). Default up to 20 k vectors.
 * - `ivf-sq8`: an inverted file. Spherical k-means (trained with ONNX Runtime matrix products) splits the vectors into
 *   `nlist` lists; each vector is stored as 8-bit codes (per-dimension scalar quantization) in its list. A query scores
 *   the centroids, scans the codes of the `nprobe` best lists with an int16×int8 SIMD kernel, and re-ranks the best
 *   `rerank` candidates with the exact float32 vectors. Recall is tuned by `nprobe` (search time) and `nlist` (build).
 *
 * Files (in the index's `dense/` folder): `vectors.f32` (N × dim float32, row order) for both types, and for ivf-sq8
 * `ivf.centroids.f32` (nlist × dim), `ivf.offsets.i32` (nlist + 1), `ivf.rows.i32` (row ids in list order),
 * `ivf.codes.i8` (N × padded dim, list order), `ivf.sq.f32` (per-dimension offset then scale).
 */
import { closeSync, fstatSync, openSync, readSync, readFileSync, promises as fsp } from "node:fs";
import path from "node:path";
import { Rng } from "../../util/rng.js";
import { Progress } from "../../util/progress.js";
import { TopK, type ScoredRow } from "../bm25/memory.js";
import { KernelHost, padDim } from "./simd.js";
import { CentroidAssigner, MatrixKernels } from "./ort.js";

export const VECTORS_FILE = "vectors.f32";

export type VectorIndexType = "flat" | "ivf-sq8";

export interface VectorIndexMeta {
  type: VectorIndexType;
  dim: number;
  size: number;
  metric: "ip";
  /** ivf-sq8: number of lists. */
  nlist?: number;
  /** ivf-sq8: default lists probed per query. */
  nprobe?: number;
  /** ivf-sq8: default number of candidates re-ranked exactly. */
  rerank?: number;
  /** ivf-sq8: width of the PCA projection the codes and centroids live in (0 = none: full dimension). */
  pcaDims?: number;
  /** ivf-sq8: k-means sample size and iterations. */
  trainSample?: number;
  iterations?: number;
}

export interface BuildVectorIndexOptions {
  /** "auto" (default): flat up to `flatMax` vectors, else ivf-sq8. */
  type?: "auto" | "flat" | "ivf-sq8";
  flatMax?: number;
  /** Lists (default ≈ 4·√N, at least 8). */
  nlist?: number;
  /** Default lists probed per query (stored in the metadata; default nlist/8, at least 8). */
  nprobe?: number;
  rerank?: number;
  iterations?: number;
  /** PCA width of the codes (default {@link defaultPcaDims}; 0 = none). */
  pcaDims?: number;
  /** k-means training sample (default min(N, max(32·nlist, 20 000))). */
  trainSample?: number;
  seed?: number;
  /** ONNX Runtime threads for the k-means products (default 2). */
  threads?: number;
  progress?: boolean;
}

const BLOCK = 8192;

function readVectorsFile(dir: string, dim: number, size: number): Float32Array {
  const file = path.join(dir, VECTORS_FILE);
  const buf = readFileSync(file);
  if (buf.byteLength !== dim * size * 4)
    throw new Error(
      `${file}: expected ${size}×${dim} float32 (${dim * size * 4} bytes), found ${buf.byteLength} bytes`,
    );
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, dim * size);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

async function writeTyped(file: string, a: Float32Array | Int32Array | Int8Array): Promise<void> {
  await fsp.writeFile(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function normalizeRow(a: Float32Array | Float64Array, off: number, dim: number): void {
  let s = 0;
  for (let d = 0; d < dim; d++) s += a[off + d] * a[off + d];
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let d = 0; d < dim; d++) a[off + d] *= inv;
}

/**
 * Orthonormal basis (dim × m, row-major) of the top-m eigen-subspace of a symmetric PSD matrix G (dim × dim), by block
 * power iteration with Gram-Schmidt re-orthonormalization; columns sorted by Rayleigh quotient, largest first.
 */
export async function topEigenSubspace(
  G: Float32Array,
  dim: number,
  m: number,
  rng: Rng,
  iterations = 30,
): Promise<{ basis: Float32Array; values: Float64Array }> {
  const kern = await MatrixKernels.create(G, dim, dim, 2);
  // Vt: m × dim (rows are the basis vectors).
  let Vt = new Float32Array(m * dim);
  for (let i = 0; i < Vt.length; i++) Vt[i] = rng.normal();
  const orth = (A: Float32Array) => {
    for (let i = 0; i < m; i++) {
      const oi = i * dim;
      for (let j = 0; j < i; j++) {
        const oj = j * dim;
        let d = 0;
        for (let t = 0; t < dim; t++) d += A[oi + t] * A[oj + t];
        for (let t = 0; t < dim; t++) A[oi + t] -= d * A[oj + t];
      }
      let n = 0;
      for (let t = 0; t < dim; t++) n += A[oi + t] * A[oi + t];
      n = Math.sqrt(n);
      if (n < 1e-20) {
        for (let t = 0; t < dim; t++) A[oi + t] = rng.normal() * 1e-3;
        i--;
        continue;
      }
      for (let t = 0; t < dim; t++) A[oi + t] /= n;
    }
  };
  orth(Vt);
  for (let it = 0; it < iterations; it++) {
    Vt = (await kern.project(Vt, m)).slice(); // (Vᵀ G) = (G V)ᵀ since G is symmetric
    orth(Vt);
  }
  const GV = await kern.project(Vt, m);
  await kern.release();
  const values = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let d = 0;
    for (let t = 0; t < dim; t++) d += Vt[i * dim + t] * GV[i * dim + t];
    values[i] = d;
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => values[b] - values[a]);
  const basis = new Float32Array(dim * m);
  const sorted = new Float64Array(m);
  order.forEach((src, j) => {
    sorted[j] = values[src];
    for (let t = 0; t < dim; t++) basis[t * m + j] = Vt[src * dim + t];
  });
  return { basis, values: sorted };
}

/** Default PCA width of the ivf-sq8 codes: none up to 128 dimensions, else dim/4 rounded to 16 (32..256). */
export function defaultPcaDims(dim: number): number {
  if (dim <= 128) return 0;
  return Math.max(32, Math.min(256, Math.round(dim / 4 / 16) * 16));
}

/** Build the index files next to `vectors.f32` in `dir`; returns the metadata to store in the manifest. */
export async function buildVectorIndex(
  dir: string,
  dim: number,
  size: number,
  opts: BuildVectorIndexOptions = {},
): Promise<VectorIndexMeta> {
  const type = !opts.type || opts.type === "auto" ? (size <= (opts.flatMax ?? 20_000) ? "flat" : "ivf-sq8") : opts.type;
  if (type === "flat" || size === 0) return { type: "flat", dim, size, metric: "ip" };
  const X = readVectorsFile(dir, dim, size);
  const nlist = Math.max(1, Math.min(size, opts.nlist ?? Math.max(8, Math.round(4 * Math.sqrt(size)))));
  const iterations = opts.iterations ?? 10;
  const sampleN = Math.min(size, opts.trainSample ?? Math.max(32 * nlist, 20_000));
  const rng = new Rng(opts.seed ?? 1234);
  const threads = opts.threads ?? 2;
  const requested = opts.pcaDims ?? defaultPcaDims(dim);
  const pdim = requested > 0 && requested < dim ? requested : dim;
  const progress = new Progress({
    label: "ivf",
    unit: "steps",
    total: iterations + 3,
    silent: opts.progress === false,
  });

  // Training sample (distinct rows).
  const perm = new Int32Array(size);
  for (let i = 0; i < size; i++) perm[i] = i;
  for (let i = 0; i < sampleN; i++) {
    const j = i + rng.int(size - i);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  let sample = new Float32Array(sampleN * dim);
  for (let i = 0; i < sampleN; i++) sample.set(X.subarray(perm[i] * dim, perm[i] * dim + dim), i * dim);

  // Optional PCA (uncentered: the top eigen-subspace of the second-moment matrix preserves inner products best).
  let P: Float32Array | null = null;
  let proj: MatrixKernels | null = null;
  if (pdim < dim) {
    const gk = await MatrixKernels.create(null, dim, dim, threads);
    const G = new Float32Array(dim * dim);
    for (let s = 0; s < sampleN; s += BLOCK) {
      const g = await gk.gramOf(sample.subarray(s * dim), Math.min(BLOCK, sampleN - s));
      for (let i = 0; i < G.length; i++) G[i] += g[i];
    }
    await gk.release();
    P = (await topEigenSubspace(G, dim, pdim, rng)).basis;
    proj = await MatrixKernels.create(P, dim, pdim, threads);
    const Y = new Float32Array(sampleN * pdim);
    for (let s = 0; s < sampleN; s += BLOCK)
      Y.set(await proj.project(sample.subarray(s * dim), Math.min(BLOCK, sampleN - s)), s * pdim);
    sample = Y;
  }
  progress.tick();
  const projectBlock = async (s: number, m: number): Promise<Float32Array> =>
    proj ? proj.project(X.subarray(s * dim), m) : X.subarray(s * dim, (s + m) * dim);

  // Spherical k-means in the (projected) space.
  const C = new Float32Array(nlist * pdim);
  for (let j = 0; j < nlist; j++) C.set(sample.subarray(j * pdim, j * pdim + pdim), j * pdim);
  for (let j = 0; j < nlist; j++) normalizeRow(C, j * pdim, pdim);
  const sums = new Float64Array(nlist * pdim);
  const counts = new Int32Array(nlist);
  for (let it = 0; it < iterations; it++) {
    const assigner = await CentroidAssigner.create(C, nlist, pdim, threads);
    sums.fill(0);
    counts.fill(0);
    for (let s = 0; s < sampleN; s += BLOCK) {
      const m = Math.min(BLOCK, sampleN - s);
      const { idx } = await assigner.assign(sample.subarray(s * pdim), m);
      for (let i = 0; i < m; i++) {
        const c = idx[i];
        counts[c]++;
        const so = c * pdim;
        const xo = (s + i) * pdim;
        for (let d = 0; d < pdim; d++) sums[so + d] += sample[xo + d];
      }
    }
    await assigner.release();
    for (let j = 0; j < nlist; j++) {
      if (counts[j] === 0) {
        const r = rng.int(sampleN);
        C.set(sample.subarray(r * pdim, r * pdim + pdim), j * pdim);
      } else for (let d = 0; d < pdim; d++) C[j * pdim + d] = sums[j * pdim + d];
      normalizeRow(C, j * pdim, pdim);
    }
    progress.tick();
  }

  // Assign every vector; per-dimension ranges for the scalar quantizer.
  const assigner = await CentroidAssigner.create(C, nlist, pdim, threads);
  const listOf = new Int32Array(size);
  const Yall = new Float32Array(size * pdim);
  const lo = new Float32Array(pdim).fill(Infinity);
  const hi = new Float32Array(pdim).fill(-Infinity);
  for (let s = 0; s < size; s += BLOCK) {
    const m = Math.min(BLOCK, size - s);
    const Y = await projectBlock(s, m);
    Yall.set(Y.subarray(0, m * pdim), s * pdim);
    const { idx } = await assigner.assign(Y, m);
    listOf.set(idx, s);
    for (let i = 0; i < m; i++) {
      const yo = i * pdim;
      for (let d = 0; d < pdim; d++) {
        const v = Y[yo + d];
        if (v < lo[d]) lo[d] = v;
        if (v > hi[d]) hi[d] = v;
      }
    }
  }
  await assigner.release();
  await proj?.release();
  progress.tick();
  const sq = new Float32Array(2 * pdim);
  for (let d = 0; d < pdim; d++) {
    sq[d] = (hi[d] + lo[d]) / 2;
    sq[pdim + d] = Math.max((hi[d] - lo[d]) / 254, 1e-12);
  }
  const offsets = new Int32Array(nlist + 1);
  for (let i = 0; i < size; i++) offsets[listOf[i] + 1]++;
  for (let j = 0; j < nlist; j++) offsets[j + 1] += offsets[j];
  const fill = offsets.slice(0, nlist);
  const rows = new Int32Array(size);
  const dp = padDim(pdim);
  const codes = new Int8Array(size * dp);
  for (let i = 0; i < size; i++) {
    const pos = fill[listOf[i]]++;
    rows[pos] = i;
    const yo = i * pdim;
    const co = pos * dp;
    for (let d = 0; d < pdim; d++) {
      const c = Math.round((Yall[yo + d] - sq[d]) / sq[pdim + d]);
      codes[co + d] = c > 127 ? 127 : c < -127 ? -127 : c;
    }
  }
  await writeTyped(path.join(dir, "ivf.centroids.f32"), C);
  await writeTyped(path.join(dir, "ivf.offsets.i32"), offsets);
  await writeTyped(path.join(dir, "ivf.rows.i32"), rows);
  await writeTyped(path.join(dir, "ivf.codes.i8"), codes);
  await writeTyped(path.join(dir, "ivf.sq.f32"), sq);
  if (P) await writeTyped(path.join(dir, "ivf.pca.f32"), P);
  progress.tick();
  progress.finish();
  return {
    type: "ivf-sq8",
    dim,
    size,
    metric: "ip",
    nlist,
    pcaDims: P ? pdim : 0,
    nprobe: opts.nprobe ?? Math.min(nlist, Math.max(8, Math.round(nlist / 8))),
    rerank: opts.rerank ?? 64,
    trainSample: sampleN,
    iterations,
  };
}

export interface VectorSearchOptions {
  /** ivf-sq8: lists probed (default from the metadata). */
  nprobe?: number;
  /** ivf-sq8: candidates re-ranked with exact vectors (default from the metadata (64), at least k). */
  rerank?: number;
}

export interface OpenVectorIndexOptions extends VectorSearchOptions {
  /** Keep the float32 vectors in memory for re-ranking when the file is at most this size (default 2 GiB); else positioned reads. */
  vectorsMemoryLimitBytes?: number;
}

function readTyped<T extends Float32Array | Int32Array | Int8Array>(
  file: string,
  ctor: { new (b: ArrayBuffer): T },
): T {
  const b = readFileSync(file);
  return new ctor(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

/** A loaded vector index (flat or ivf-sq8). Search is synchronous and single-threaded (≈ milliseconds per query). */
export class VectorIndex {
  private readonly host = new KernelHost();
  /** Padded full dimension, code dimension and padded code dimension. */
  private readonly dp: number;
  private readonly cdim: number;
  private readonly cdp: number;
  private readonly qPtr: number;
  private readonly cqPtr: number;
  private readonly q16Ptr: number;
  private basePtr = 0;
  private pcaPtr = 0;
  private centPtr = 0;
  private codesPtr = 0;
  private outPtr = 0;
  private centOutPtr = 0;
  private offsets: Int32Array | null = null;
  private rows: Int32Array | null = null;
  private sq: Float32Array | null = null;
  private vectors: Float32Array | null = null;
  private fd: number | null = null;
  private readonly rowBuf: Float32Array;

  private constructor(
    readonly meta: VectorIndexMeta,
    private readonly defaults: VectorSearchOptions,
  ) {
    this.dp = padDim(meta.dim);
    this.cdim = meta.type === "ivf-sq8" && meta.pcaDims ? meta.pcaDims : meta.dim;
    this.cdp = padDim(this.cdim);
    this.qPtr = this.host.alloc(this.dp * 4);
    this.cqPtr = this.host.alloc(this.cdp * 4);
    this.q16Ptr = this.host.alloc(this.cdp * 2);
    this.rowBuf = new Float32Array(meta.dim);
  }

  static open(dir: string, meta: VectorIndexMeta, opts: OpenVectorIndexOptions = {}): VectorIndex {
    const ix = new VectorIndex(meta, opts);
    const { dim, size } = meta;
    const { dp, cdim, cdp } = ix;
    const file = path.join(dir, VECTORS_FILE);
    if (meta.type === "flat") {
      const X = size > 0 ? readVectorsFile(dir, dim, size) : new Float32Array(0);
      ix.basePtr = ix.host.alloc(size * dp * 4);
      const base = ix.host.f32View(ix.basePtr, size * dp);
      for (let i = 0; i < size; i++) base.set(X.subarray(i * dim, i * dim + dim), i * dp);
      ix.outPtr = ix.host.alloc(Math.max(1, size) * 4);
      return ix;
    }
    const nlist = meta.nlist ?? 0;
    const C = readTyped(path.join(dir, "ivf.centroids.f32"), Float32Array);
    ix.offsets = readTyped(path.join(dir, "ivf.offsets.i32"), Int32Array);
    ix.rows = readTyped(path.join(dir, "ivf.rows.i32"), Int32Array);
    ix.sq = readTyped(path.join(dir, "ivf.sq.f32"), Float32Array);
    if (
      C.length !== nlist * cdim ||
      ix.offsets.length !== nlist + 1 ||
      ix.rows.length !== size ||
      ix.sq.length !== 2 * cdim
    )
      throw new Error(`${dir}: ivf files do not match the manifest; rebuild the index`);
    if (cdim !== dim) {
      const P = readTyped(path.join(dir, "ivf.pca.f32"), Float32Array);
      if (P.length !== dim * cdim)
        throw new Error(`${dir}: ivf.pca.f32 does not match the manifest; rebuild the index`);
      // Stored transposed and padded: row j = basis vector j (dim floats, padded to dp).
      ix.pcaPtr = ix.host.alloc(cdim * dp * 4);
      const pv = ix.host.f32View(ix.pcaPtr, cdim * dp);
      for (let t = 0; t < dim; t++) for (let j = 0; j < cdim; j++) pv[j * dp + t] = P[t * cdim + j];
    }
    ix.centPtr = ix.host.alloc(nlist * cdp * 4);
    const cv = ix.host.f32View(ix.centPtr, nlist * cdp);
    for (let j = 0; j < nlist; j++) cv.set(C.subarray(j * cdim, j * cdim + cdim), j * cdp);
    ix.centOutPtr = ix.host.alloc(Math.max(nlist, cdim) * 4);
    let maxList = 1;
    for (let j = 0; j < nlist; j++) maxList = Math.max(maxList, ix.offsets[j + 1] - ix.offsets[j]);
    ix.outPtr = ix.host.alloc(maxList * 4);
    const codesFile = path.join(dir, "ivf.codes.i8");
    const cfd = openSync(codesFile, "r");
    try {
      const bytes = size * cdp;
      if (fstatSync(cfd).size !== bytes) throw new Error(`${codesFile}: expected ${bytes} bytes; rebuild the index`);
      ix.codesPtr = ix.host.alloc(bytes);
      const view = new Uint8Array(ix.host.memory.buffer, ix.codesPtr, bytes);
      let at = 0;
      while (at < bytes) at += readSync(cfd, view, at, Math.min(1 << 26, bytes - at), at);
    } finally {
      closeSync(cfd);
    }
    const vbytes = size * dim * 4;
    if (vbytes <= (opts.vectorsMemoryLimitBytes ?? 2 * 2 ** 30)) ix.vectors = readVectorsFile(dir, dim, size);
    else {
      ix.fd = openSync(file, "r");
      if (fstatSync(ix.fd).size !== vbytes) throw new Error(`${file}: expected ${vbytes} bytes; rebuild the index`);
    }
    return ix;
  }

  get size(): number {
    return this.meta.size;
  }

  /** Bytes held in memory (codes, centroids or flat vectors, plus re-ranking vectors when kept in memory). */
  get memoryBytes(): number {
    return this.host.usedBytes + (this.vectors ? this.vectors.byteLength : 0);
  }

  private exactDot(q: Float32Array, row: number): number {
    const dim = this.meta.dim;
    let v: Float32Array;
    if (this.vectors) v = this.vectors.subarray(row * dim, row * dim + dim);
    else {
      readSync(this.fd!, new Uint8Array(this.rowBuf.buffer), 0, dim * 4, row * dim * 4);
      v = this.rowBuf;
    }
    let s = 0;
    for (let d = 0; d < dim; d++) s += q[d] * v[d];
    return s;
  }

  /** Top-k rows by inner product for one query vector (length dim). */
  search(q: Float32Array, k: number, opts: VectorSearchOptions = {}): ScoredRow[] {
    const { dim, size } = this.meta;
    if (q.length !== dim) throw new Error(`query vector has ${q.length} dimensions, the index ${dim}`);
    if (k <= 0 || size === 0) return [];
    const { dp, cdim, cdp } = this;
    const qv = this.host.f32View(this.qPtr, dp);
    qv.fill(0);
    qv.set(q);
    if (this.meta.type === "flat") {
      this.host.f32dots(this.qPtr, this.basePtr, size, dp, this.outPtr);
      const scores = this.host.f32View(this.outPtr, size);
      const top = new TopK(k);
      for (let i = 0; i < size; i++) if (scores[i] >= top.threshold) top.push(i, scores[i]);
      return top.result();
    }
    const nlist = this.meta.nlist!;
    const nprobe = Math.min(nlist, Math.max(1, opts.nprobe ?? this.defaults.nprobe ?? this.meta.nprobe ?? 16));
    const R = Math.max(k, opts.rerank ?? this.defaults.rerank ?? this.meta.rerank ?? 64);
    // Query in code space (PCA projection when the index has one).
    const cq = this.host.f32View(this.cqPtr, cdp);
    if (cdim !== dim) {
      this.host.f32dots(this.qPtr, this.pcaPtr, cdim, dp, this.centOutPtr);
      const pq = this.host.f32View(this.centOutPtr, cdim);
      cq.fill(0);
      cq.set(pq);
    } else {
      cq.fill(0);
      cq.set(q);
    }
    const sq = this.sq!;
    const q16 = this.host.i16View(this.q16Ptr, cdp);
    q16.fill(0);
    let amax = 0;
    for (let d = 0; d < cdim; d++) amax = Math.max(amax, Math.abs(cq[d] * sq[cdim + d]));
    // Scale q'_d = q_d · scale_d into int16 so that |Σ q'·c| (|c| ≤ 127) stays below 2^31.
    const qmax = Math.min(32767, Math.floor(2 ** 31 / (127 * cdp)) - 1);
    const S = amax > 0 ? qmax / amax : 0;
    for (let d = 0; d < cdim; d++) q16[d] = Math.round(cq[d] * sq[cdim + d] * S);
    this.host.f32dots(this.cqPtr, this.centPtr, nlist, cdp, this.centOutPtr);
    const cs = this.host.f32View(this.centOutPtr, nlist);
    const lists = new TopK(nprobe);
    for (let j = 0; j < nlist; j++) if (cs[j] >= lists.threshold) lists.push(j, cs[j]);
    const cand = new TopK(R);
    const offsets = this.offsets!;
    for (const { row: list } of lists.result()) {
      const start = offsets[list];
      const n = offsets[list + 1] - start;
      if (n === 0) continue;
      this.host.i8dots(this.q16Ptr, this.codesPtr + start * cdp, n, cdp, this.outPtr);
      const out = this.host.i32View(this.outPtr, n);
      for (let i = 0; i < n; i++) if (out[i] >= cand.threshold) cand.push(start + i, out[i]);
    }
    const rows = this.rows!;
    const top = new TopK(k);
    for (const c of cand.result()) {
      const row = rows[c.row];
      top.push(row, this.exactDot(q, row));
    }
    return top.result();
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Exact top-k by inner product over a row-major matrix (reference for recall measurements). */
export function exactTopK(X: Float32Array, dim: number, q: Float32Array, k: number): ScoredRow[] {
  const n = X.length / dim;
  const top = new TopK(k);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * dim;
    for (let d = 0; d < dim; d++) s += q[d] * X[o + d];
    if (s >= top.threshold) top.push(i, s);
  }
  return top.result();
}
