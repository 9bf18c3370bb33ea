/**
 * The native GEMM kernels of the built-in model: ONNX Runtime's CPU sgemm (MLAS, AVX2/AVX-512, intra-op threads),
 * called synchronously on views of the model's wasm heap — inputs and outputs are zero-copy, so a call costs ~8 µs
 * on top of the multiply itself.
 *
 * Why this engine (measured on the project's 2-core AMD EPYC box, docs/model.md "Compute engines"): XNNPACK inside
 * tfjs-wasm tops out near 30 GFLOP/s on one thread and has only the plain NN form; ONNX Runtime's MLAS reaches
 * 100–125 GFLOP/s on one thread for the model's shapes, has the transposed forms (NT, TN) and accumulation (Gemm with
 * β = 1) that the backward pass needs, ships inside the `onnxruntime-node` npm package (prebuilt, no compiler, nothing
 * downloaded) and is already a dependency of the dense retriever.
 *
 * onnxruntime-node's public `InferenceSession.run` is asynchronous (it defers the synchronous native call with
 * `setImmediate`); the model's passes are synchronous loops of hundreds of kernel calls, so this module drives the
 * package's own synchronous binding (`onnxruntime-node/dist/binding`, the object its public API wraps). Pre-allocated
 * outputs (a `fetches` map of tensors over the heap) make ONNX Runtime write straight into the model's buffers.
 */
import { createRequire } from "node:module";
import { buildOnnxModel } from "../util/onnx-writer.js";

/** One matrix product on a heap: `out[m,n] (+)= op(a)[m,k] · op(b)[k,n]` (row-major float32, byte pointers). */
export interface GemmKernels {
  /** Engine name shown in `model info` and progress lines. */
  readonly name: string;
  /** Intra-op threads of each product. */
  readonly threads: number;
  /**
   * `transA`: a is stored [k, m]; `transB`: b is stored [n, k]; `accumulate`: add to `out` instead of overwriting it.
   */
  gemm(
    heap: ArrayBufferLike,
    aPtr: number,
    bPtr: number,
    outPtr: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
    accumulate: boolean,
  ): void;
  /**
   * `batch` independent products over contiguous operands: a_i at a + i·m·k floats, b_i at b + i·k·n, out_i at
   * out + i·m·n; out_i = op(a_i) · op(b_i) (overwritten). One call instead of `batch` (optional: the runtime loops
   * {@link gemm} when an engine lacks it).
   */
  bgemm?(
    heap: ArrayBufferLike,
    aPtr: number,
    bPtr: number,
    outPtr: number,
    batch: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
  ): void;
}

interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): Record<string, unknown>;
  dispose(): void;
}
type TensorCtor = new (type: "float32", data: Float32Array, dims: number[]) => unknown;

interface OrtBinding {
  session: new () => BindingSession;
  Tensor: TensorCtor;
  version: string;
}

let bindingCache: OrtBinding | null | undefined;
let bindingError = "";

/** The synchronous ONNX Runtime binding, or null (with {@link nativeUnavailableReason}) where it does not load. */
export function loadOrtBinding(): OrtBinding | null {
  if (bindingCache !== undefined) return bindingCache;
  try {
    const require = createRequire(import.meta.url);
    const pkg = require("onnxruntime-node") as { Tensor: TensorCtor };
    const b = require("onnxruntime-node/dist/binding") as {
      binding: { InferenceSession: new () => BindingSession };
      initOrt: () => void;
    };
    const version = (require("onnxruntime-node/package.json") as { version: string }).version;
    b.initOrt();
    if (typeof b.binding?.InferenceSession !== "function") throw new Error("binding has no InferenceSession");
    bindingCache = { session: b.binding.InferenceSession, Tensor: pkg.Tensor, version };
  } catch (e) {
    bindingError = (e as Error).message.split("\n")[0];
    bindingCache = null;
  }
  return bindingCache;
}

/** Why the native engine is not available ("" when it is, or before the first attempt). */
export function nativeUnavailableReason(): string {
  return bindingError;
}

/**
 * ONNX Runtime (MLAS) sgemm over heap views. One session per (transA, transB, accumulate) form, built lazily; batched
 * products run ORT's `FusedMatMul` (com.microsoft contrib op: batched MatMul with transposed operands).
 */
export class OrtGemm implements GemmKernels {
  readonly name: string;
  private readonly sessions = new Map<number, BindingSession>();
  private readonly feeds: Record<string, unknown> = {};
  private readonly fetches: Record<string, unknown> = {};
  private readonly noOptions = {};
  /** Products issued and their FLOPs (profiling; reset freely). */
  calls = 0;
  flops = 0;

  constructor(
    private readonly ort: OrtBinding,
    readonly threads: number,
  ) {
    this.name = `onnxruntime-mlas (${ort.version}, ${threads} thread${threads === 1 ? "" : "s"})`;
  }

  private session(transA: boolean, transB: boolean, acc: boolean): BindingSession {
    const key = (transA ? 1 : 0) | (transB ? 2 : 0) | (acc ? 4 : 0);
    const s = this.sessions.get(key);
    if (s) return s;
    const bytes = buildOnnxModel({
      inputs: [
        { name: "a", dtype: "float32", shape: transA ? ["k", "m"] : ["m", "k"] },
        { name: "b", dtype: "float32", shape: transB ? ["n", "k"] : ["k", "n"] },
        ...(acc ? [{ name: "c", dtype: "float32" as const, shape: ["m", "n"] }] : []),
      ],
      outputs: [{ name: "y", dtype: "float32", shape: ["m", "n"] }],
      nodes: [
        {
          op: "Gemm",
          inputs: acc ? ["a", "b", "c"] : ["a", "b"],
          outputs: ["y"],
          attrs: { transA: { i: transA ? 1 : 0 }, transB: { i: transB ? 1 : 0 }, beta: { f: 1 } },
        },
      ],
    });
    return this.load(key, bytes);
  }

  private load(key: number, bytes: Uint8Array): BindingSession {
    const s = new this.ort.session();
    s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      // Several sessions share the cores: idle pools must not spin while another session computes.
      extra: { session: { intra_op: { allow_spinning: this.threads > 1 ? "0" : "1" } } },
    });
    this.sessions.set(key, s);
    return s;
  }

  private batchedSession(transA: boolean, transB: boolean): BindingSession {
    const key = 8 | (transA ? 1 : 0) | (transB ? 2 : 0);
    const s = this.sessions.get(key);
    if (s) return s;
    const bytes = buildOnnxModel({
      inputs: [
        { name: "a", dtype: "float32", shape: transA ? ["b", "k", "m"] : ["b", "m", "k"] },
        { name: "b", dtype: "float32", shape: transB ? ["b", "n", "k"] : ["b", "k", "n"] },
      ],
      outputs: [{ name: "y", dtype: "float32", shape: ["b", "m", "n"] }],
      nodes: [
        {
          op: "FusedMatMul",
          domain: "com.microsoft",
          inputs: ["a", "b"],
          outputs: ["y"],
          attrs: { transA: { i: transA ? 1 : 0 }, transB: { i: transB ? 1 : 0 }, alpha: { f: 1 } },
        },
      ],
      domains: [{ domain: "com.microsoft", version: 1 }],
    });
    return this.load(key, bytes);
  }

  bgemm(
    heap: ArrayBufferLike,
    aPtr: number,
    bPtr: number,
    outPtr: number,
    batch: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
  ): void {
    if (batch === 0 || m === 0 || n === 0) return;
    if (k === 0) {
      new Float32Array(heap as ArrayBuffer, outPtr, batch * m * n).fill(0);
      return;
    }
    const T = this.ort.Tensor;
    const buf = heap as ArrayBuffer;
    const feeds = {
      a: new T("float32", new Float32Array(buf, aPtr, batch * m * k), transA ? [batch, k, m] : [batch, m, k]),
      b: new T("float32", new Float32Array(buf, bPtr, batch * k * n), transB ? [batch, n, k] : [batch, k, n]),
    };
    const fetches = { y: new T("float32", new Float32Array(buf, outPtr, batch * m * n), [batch, m, n]) };
    this.batchedSession(transA, transB).run(feeds, fetches, this.noOptions);
    this.calls++;
    this.flops += 2 * batch * m * k * n;
  }

  gemm(
    heap: ArrayBufferLike,
    aPtr: number,
    bPtr: number,
    outPtr: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
    accumulate: boolean,
  ): void {
    if (m === 0 || n === 0) return;
    const out = new Float32Array(heap as ArrayBuffer, outPtr, m * n);
    if (k === 0) {
      if (!accumulate) out.fill(0);
      return;
    }
    const T = this.ort.Tensor;
    const a = new T("float32", new Float32Array(heap as ArrayBuffer, aPtr, m * k), transA ? [k, m] : [m, k]);
    const b = new T("float32", new Float32Array(heap as ArrayBuffer, bPtr, k * n), transB ? [n, k] : [k, n]);
    const y = new T("float32", out, [m, n]);
    const feeds = this.feeds;
    feeds.a = a;
    feeds.b = b;
    if (accumulate) feeds.c = y;
    else delete feeds.c;
    this.fetches.y = y;
    this.session(transA, transB, accumulate).run(feeds, this.fetches, this.noOptions);
    this.calls++;
    this.flops += 2 * m * k * n;
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
  }
}
