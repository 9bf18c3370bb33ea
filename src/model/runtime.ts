/**
 * The compute runtime under the built-in model: the WebAssembly module of @tensorflow/tfjs-backend-wasm (XNNPACK
 * kernels compiled with SIMD), driven directly.
 *
 * Why not the tfjs tensor API: on this engine only the plain 2-D, non-transposed matmul reaches the XNNPACK fast path
 * (~30 GFLOP/s here); transposed/batched matmuls fall to a scalar loop (~2 GFLOP/s), `gather` has no gradient, and the
 * per-op cost of the tensor engine (tensor objects, kernel registry, tape, per-head slice/stack copies) dominates the
 * small models this project trains. So the model keeps its own buffers in the module's heap, calls the compiled
 * `BatchMatMul` kernel on views of them (zero-copy slices: a tensor id may point anywhere in the heap), and does the
 * elementwise work in plain loops over heap views. The tfjs backend is still initialised through tfjs-core
 * (`setBackend("wasm")`) for the single-threaded build; the multi-threaded SIMD build (which tfjs cannot start under
 * Node, see docs/model.md) is instantiated here directly when more than one thread is asked for.
 *
 * Internal API of tfjs-backend-wasm 4.22 used here: `register_tensor(id, size, ptr)`, `dispose_data(id)`,
 * `BatchMatMul(aId, aShapePtr, aRank, bId, bShapePtr, bRank, transA, transB, outId)`, `Softmax(xId, outId, channels,
 * batch)`, `_malloc`/`_free`. XNNPACK caches a packed copy of the right-hand matrix keyed by its tensor id; an id must
 * therefore be disposed (which drops that cache) before the memory behind it changes.
 */
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { addInto, transpose } from "./kernels.js";
import { type GemmKernels, OrtGemm, loadOrtBinding, nativeUnavailableReason } from "./native.js";
import { type SimdKernels, simdKernels } from "./simd.js";

/** The subset of the Emscripten module of tfjs-backend-wasm that the runtime calls. */
interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _register_tensor(id: number, size: number, ptr: number): void;
  _dispose_data(id: number): void;
  _BatchMatMul(
    aId: number,
    aShape: number,
    aRank: number,
    bId: number,
    bShape: number,
    bRank: number,
    transA: number,
    transB: number,
    outId: number,
  ): void;
  _Softmax(xId: number, outId: number, channels: number, batch: number): void;
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
}

export interface RuntimeOptions {
  /**
   * XNNPACK threads. 1 (default): the single-threaded SIMD build, started through tfjs-core. >1: the multi-threaded
   * SIMD build, started here (worker threads with shared memory); only large matmuls get faster. The environment
   * variable `SEARCHRL_WASM_THREADS` overrides the default.
   */
  threads?: number;
}

/** One line naming the engine this process runs (for `model info` and the trainers' first progress line). */
export function describeEngine(): string {
  const c = engineChoice();
  if (c.engine === "native") {
    const v = loadOrtBinding()?.version ?? "?";
    return `native (onnxruntime-mlas ${v}, ${c.threads} thread${c.threads === 1 ? "" : "s"} per product)`;
  }
  return `wasm (tfjs-wasm xnnpack; ${c.reason})`;
}

/** Which GEMM engine the runtime's matrix products use. */
export type EngineName = "native" | "wasm";

export interface EngineChoice {
  /** The engine that runs. */
  engine: EngineName;
  /** Intra-op threads of the native engine's products (1 unless asked for more). */
  threads: number;
  /** Why the native engine is not used (empty when it is). */
  reason: string;
}

/**
 * The engine this process uses: `SEARCHRL_ENGINE=native|wasm` overrides; otherwise native wherever ONNX Runtime's
 * binding loads. `SEARCHRL_NATIVE_THREADS` sets the native engine's intra-op threads (default 1: ParallelModel puts
 * one replica on each core, which measures faster than two threads on one product for the model's shapes).
 */
export function engineChoice(requested?: EngineName | "auto", threads?: number): EngineChoice {
  const env = process.env.SEARCHRL_ENGINE;
  const want = requested && requested !== "auto" ? requested : env === "wasm" || env === "native" ? env : "auto";
  const tEnv = process.env.SEARCHRL_NATIVE_THREADS;
  const t = Math.max(1, Math.floor(threads ?? (tEnv && /^\d+$/.test(tEnv) ? Number(tEnv) : 1)));
  if (want === "wasm") return { engine: "wasm", threads: 1, reason: "chosen (SEARCHRL_ENGINE=wasm or config)" };
  if (loadOrtBinding()) return { engine: "native", threads: t, reason: "" };
  const why = `onnxruntime-node binding did not load: ${nativeUnavailableReason()}`;
  if (want === "native") throw new Error(`native engine requested but ${why}`);
  return { engine: "wasm", threads: 1, reason: why };
}

/** Ids handed to the kernel registry start far above the ids tfjs-core itself hands out (1, 2, 3, ...). */
const FIRST_ID = 1 << 30;

/**
 * A handle to the WebAssembly heap: allocation, typed views, and the kernels. Views returned by {@link f32} are
 * invalidated whenever the heap grows (any allocation may grow it): fetch them again after allocating.
 */
export class WasmRuntime {
  private nextId = FIRST_ID;
  private readonly shapePtr: number;
  private heapBuf: ArrayBufferLike | null = null;
  private heapF32: Float32Array = new Float32Array(0);
  private heapI32: Int32Array = new Int32Array(0);
  /** Milliseconds spent inside matmul kernels (profiling; reset freely). */
  matmulMs = 0;
  /** FLOPs issued to matmul kernels (profiling; reset freely). */
  matmulFlops = 0;
  /** Set to true to collect {@link matmulMs}. */
  profile = false;
  /** Native GEMM kernels (null: XNNPACK through tfjs-wasm). */
  private native: GemmKernels | null = null;
  /** Byte pointer behind each registered id (the native kernels address memory, not ids). */
  private readonly idPtr = new Map<number, number>();

  constructor(
    private readonly M: WasmModule,
    readonly threads: number,
  ) {
    this.shapePtr = this.malloc(64);
  }

  /** Route the matrix products through `kernels` (null: back to XNNPACK). */
  useNative(kernels: GemmKernels | null): void {
    this.native = kernels;
  }

  private readonly ortGemms = new Map<number, OrtGemm>();
  /**
   * Switch this runtime's products to an engine (tests and benchmarks compare engines on one model this way; a model's
   * weights and caches stay valid across the switch). Throws when the native engine cannot load.
   */
  useEngine(engine: EngineName, threads = 1): void {
    if (engine === "wasm") return this.useNative(null);
    const ort = loadOrtBinding();
    if (!ort) throw new Error(`native engine unavailable: ${nativeUnavailableReason()}`);
    let g = this.ortGemms.get(threads);
    if (!g) this.ortGemms.set(threads, (g = new OrtGemm(ort, threads)));
    this.useNative(g);
  }

  /** The engine behind the matrix products, e.g. "onnxruntime-mlas (1.30.0, 1 thread)" or "tfjs-wasm xnnpack". */
  get engineName(): string {
    return this.native
      ? this.native.name
      : `tfjs-wasm xnnpack (${this.threads} thread${this.threads === 1 ? "" : "s"})`;
  }

  /** True when the products run on the native engine (transposed and accumulating forms are then free). */
  get hasNative(): boolean {
    return this.native !== null;
  }

  /**
   * out[m,n] (+)= op(a) @ op(b) (`transA`: a stored [k,m]; `transB`: b stored [n,k]; `accumulate`: add to out). The
   * one product form the model is written against: the native engine runs every form directly; on XNNPACK the
   * transposed operands are copied transposed into scratch buffers and an accumulating product goes through a scratch
   * result.
   */
  gemm(
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
    if (this.native) {
      const t0 = this.profile ? performance.now() : 0;
      this.refresh();
      this.native.gemm(this.heapBuf as ArrayBufferLike, aPtr, bPtr, outPtr, m, k, n, transA, transB, accumulate);
      if (this.profile) {
        this.matmulMs += performance.now() - t0;
        this.matmulFlops += 2 * m * k * n;
      }
      return;
    }
    if (k === 0) {
      if (!accumulate) this.view(outPtr, m * n).fill(0);
      return;
    }
    const at = transA ? this.allocF32(m * k) : aPtr;
    const bt = transB ? this.allocF32(k * n) : bPtr;
    const dst = accumulate ? this.allocF32(m * n) : outPtr;
    const simd = this.simd;
    if (transA) transpose(this.f32(), aPtr >> 2, at >> 2, k, m, simd);
    if (transB) transpose(this.f32(), bPtr >> 2, bt >> 2, n, k, simd);
    const bId = this.register(bt, k * n);
    this.xnnMatmul(at, bId, dst, m, k, n);
    this.unregister(bId);
    if (accumulate) addInto(this.f32(), outPtr >> 2, dst >> 2, m * n);
    if (transA) this.free(at);
    if (transB) this.free(bt);
    if (accumulate) this.free(dst);
  }

  /**
   * `batch` products over contiguous operands (a_i at a + i·m·k floats, b_i at b + i·k·n, out_i at out + i·m·n),
   * overwriting out: one engine call where the engine has a batched form, else a loop of {@link gemm}.
   */
  bgemm(
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
    if (batch > 1 && m > 0 && n > 0 && k > 0 && this.native?.bgemm) {
      const t0 = this.profile ? performance.now() : 0;
      this.refresh();
      this.native.bgemm(this.heapBuf as ArrayBufferLike, aPtr, bPtr, outPtr, batch, m, k, n, transA, transB);
      if (this.profile) {
        this.matmulMs += performance.now() - t0;
        this.matmulFlops += 2 * batch * m * k * n;
      }
      return;
    }
    for (let i = 0; i < batch; i++)
      this.gemm(aPtr + 4 * i * m * k, bPtr + 4 * i * k * n, outPtr + 4 * i * m * n, m, k, n, transA, transB, false);
  }

  private simdCache: SimdKernels | null | undefined;
  /** Hand-written SIMD kernels on this heap (simd.ts), or null when unavailable. */
  get simd(): SimdKernels | null {
    if (this.simdCache === undefined) this.simdCache = simdKernels(this.memory());
    return this.simdCache;
  }

  private memory(): WebAssembly.Memory {
    const mem = this.M.wasmMemory ?? this.M.asm?.memory;
    if (!mem) throw new Error("tfjs-backend-wasm module exposes no memory");
    return mem;
  }

  private refresh(): void {
    const buf = this.memory().buffer;
    if (buf !== this.heapBuf) {
      this.heapBuf = buf;
      this.heapF32 = new Float32Array(buf);
      this.heapI32 = new Int32Array(buf);
    }
  }

  /** The whole heap as float32 (index = byte pointer >> 2). Re-fetch after any allocation. */
  f32(): Float32Array {
    this.refresh();
    return this.heapF32;
  }

  /** The whole heap as int32 (index = byte pointer >> 2). Re-fetch after any allocation. */
  i32(): Int32Array {
    this.refresh();
    return this.heapI32;
  }

  /** A float32 view of `n` elements at byte pointer `ptr` (invalidated by heap growth). */
  view(ptr: number, n: number): Float32Array {
    this.refresh();
    return new Float32Array(this.heapBuf as ArrayBuffer, ptr, n);
  }

  /** Allocate `bytes` bytes (16-byte aligned); returns the byte pointer. */
  malloc(bytes: number): number {
    const p = this.M._malloc(Math.max(16, bytes)) >>> 0;
    if (p === 0) throw new Error(`wasm heap exhausted allocating ${(bytes / 2 ** 20).toFixed(1)} MiB`);
    return p;
  }

  /** Allocate `n` float32 elements (uninitialised). */
  allocF32(n: number): number {
    return this.malloc(n * 4);
  }

  free(ptr: number): void {
    if (ptr) this.M._free(ptr);
  }

  /** Register `size` float32 elements at `ptr` under a fresh kernel id. */
  register(ptr: number, size: number): number {
    const id = this.nextId++;
    if (this.nextId > 0x7ffffff0) this.nextId = FIRST_ID;
    this.M._register_tensor(id, size, ptr);
    this.idPtr.set(id, ptr);
    return id;
  }

  /** Drop a kernel id (and any packed-weights cache XNNPACK keeps for it). */
  unregister(id: number): void {
    this.idPtr.delete(id);
    this.M._dispose_data(id);
  }

  /**
   * out[m,n] = a[m,k] @ b[k,n] (row-major, all float32) through XNNPACK. `bId` is a registered id for b (the matrix
   * XNNPACK packs and caches under that id; pass a stable id for weights, or use {@link matmulPtr} for temporaries).
   */
  matmulId(aPtr: number, bId: number, outPtr: number, m: number, k: number, n: number): void {
    if (m === 0 || n === 0) return;
    if (this.native) {
      const bPtr = this.idPtr.get(bId);
      if (bPtr === undefined) throw new Error(`matmulId: unknown id ${bId}`);
      this.gemm(aPtr, bPtr, outPtr, m, k, n, false, false, false);
      return;
    }
    this.xnnMatmul(aPtr, bId, outPtr, m, k, n);
  }

  /** The XNNPACK product itself (b registered under `bId`). */
  private xnnMatmul(aPtr: number, bId: number, outPtr: number, m: number, k: number, n: number): void {
    const t0 = this.profile ? performance.now() : 0;
    const aId = this.register(aPtr, m * k);
    const oId = this.register(outPtr, m * n);
    const s = this.i32();
    const sp = this.shapePtr >> 2;
    s[sp] = 1;
    s[sp + 1] = m;
    s[sp + 2] = k;
    s[sp + 3] = 1;
    s[sp + 4] = k;
    s[sp + 5] = n;
    this.M._BatchMatMul(aId, this.shapePtr, 3, bId, this.shapePtr + 12, 3, 0, 0, oId);
    this.unregister(aId);
    this.unregister(oId);
    if (this.profile) {
      this.matmulMs += performance.now() - t0;
      this.matmulFlops += 2 * m * k * n;
    }
  }

  /** out[m,n] = a[m,k] @ b[k,n] where b is a temporary (registered for this call only). */
  matmulPtr(aPtr: number, bPtr: number, outPtr: number, m: number, k: number, n: number): void {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      this.view(outPtr, m * n).fill(0);
      return;
    }
    if (this.native) {
      this.gemm(aPtr, bPtr, outPtr, m, k, n, false, false, false);
      return;
    }
    const bId = this.register(bPtr, k * n);
    this.matmulId(aPtr, bId, outPtr, m, k, n);
    this.unregister(bId);
  }

  /** Row softmax through XNNPACK: out[r, :] = softmax(x[r, :]) for `rows` rows of `cols` columns. */
  softmaxRows(xPtr: number, outPtr: number, rows: number, cols: number): void {
    if (rows === 0) return;
    const xId = this.register(xPtr, rows * cols);
    const oId = this.register(outPtr, rows * cols);
    this.M._Softmax(xId, oId, cols, rows);
    this.unregister(xId);
    this.unregister(oId);
  }
}

let single: Promise<WasmRuntime> | null = null;
let threaded: Promise<WasmRuntime> | null = null;

function defaultThreads(): number {
  const env = process.env.SEARCHRL_WASM_THREADS;
  if (env && /^\d+$/.test(env)) return Math.max(1, Number(env));
  return 1;
}

/**
 * The shared runtime of this thread (created on first call). `threads` > 1 selects the multi-threaded build; the
 * single- and multi-threaded runtimes are separate heaps, so a model lives in exactly one of them.
 */
export function getRuntime(opts: RuntimeOptions = {}): Promise<WasmRuntime> {
  const threads = Math.max(1, Math.floor(opts.threads ?? defaultThreads()));
  if (threads === 1) {
    single ??= initSingle();
    return single;
  }
  threaded ??= initThreaded(threads);
  return threaded;
}

async function initSingle(): Promise<WasmRuntime> {
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-wasm");
  // Quiet the "platform node has already been set" style warnings of repeated imports.
  if (tf.getBackend() !== "wasm") {
    const ok = await tf.setBackend("wasm");
    if (!ok) throw new Error("tfjs wasm backend failed to initialise");
  }
  await tf.ready();
  const backend = tf.backend() as unknown as { wasm?: WasmModule };
  if (!backend.wasm) throw new Error("tfjs backend is not the wasm backend");
  const rt = new WasmRuntime(backend.wasm, 1);
  const choice = engineChoice();
  if (choice.engine === "native") rt.useEngine("native", choice.threads);
  return rt;
}

async function initThreaded(threads: number): Promise<WasmRuntime> {
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
  const factory = require(path.join(dir, "tfjs-backend-wasm-threaded-simd.js")) as (cfg: object) => Promise<WasmModule>;
  const { wasmWorkerContents } = require(path.join(dir, "tfjs-backend-wasm-threaded-simd.worker.js")) as {
    wasmWorkerContents: string;
  };
  // tfjs hands Emscripten a blob: URL for the pthread worker, which Node's Worker cannot load; write the same script
  // to a real file instead (newlines inside its string literals must stay escaped, as tfjs does for the blob).
  // Named by content hash: written once per machine and tfjs version, reused afterwards (no per-process leftovers).
  const script = wasmWorkerContents.replace(/\n/g, "\\n");
  const hash = createHash("sha256").update(script).digest("hex").slice(0, 16);
  const workerFile = path.join(os.tmpdir(), `searchrl-tfjs-wasm-worker-${hash}.cjs`);
  if (!existsSync(workerFile)) {
    const tmp = `${workerFile}.${process.pid}.tmp`;
    writeFileSync(tmp, script);
    renameSync(tmp, workerFile);
  }
  // The module sizes its thread pool as min(requested, logicalCores / 2) at start-up; report enough cores.
  const osMod = require("node:os") as { cpus: () => os.CpuInfo[] };
  const origCpus = osMod.cpus;
  osMod.cpus = () => {
    const c = origCpus();
    const out: os.CpuInfo[] = [];
    while (out.length < 2 * threads) out.push(...c);
    return out.slice(0, Math.max(2 * threads, c.length));
  };
  let M: WasmModule;
  try {
    M = await factory({
      locateFile: (p: string, prefix: string) =>
        p.endsWith(".worker.js")
          ? workerFile
          : p.endsWith(".wasm")
            ? path.join(dir, "tfjs-backend-wasm-threaded-simd.wasm")
            : prefix + p,
      mainScriptUrlOrBlob: path.join(dir, "tfjs-backend-wasm-threaded-simd.js"),
    });
  } finally {
    osMod.cpus = origCpus;
  }
  const init = (M as unknown as { cwrap: (n: string, r: null, a: string[]) => (x: number) => void }).cwrap(
    "init_with_threads_count",
    null,
    ["number"],
  );
  init(threads);
  return new WasmRuntime(M, threads);
}
