/**
 * WebAssembly SIMD kernels for vector scoring, assembled in-process (a few hundred bytes of bytecode; no toolchain, no
 * download). V8 runs them with SSE/AVX; measured about 5–10× faster than the equivalent plain JavaScript loops.
 *
 * - `f32dots(q, base, n, dim, out)`: out[i] = Σ_j q[j]·base[i·dim + j] (float32; dim a multiple of 16)
 * - `i8dots(q, codes, n, dim, out)`: out[i] = Σ_j q[j]·codes[i·dim + j] (int16 query × int8 codes → int32; dim a multiple of 16)
 *
 * All pointers are byte offsets into one shared `WebAssembly.Memory`. A plain-JS fallback with the same results is used
 * where WebAssembly SIMD is unavailable.
 */

// ---- a minimal WebAssembly assembler -------------------------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function str(s: string): number[] {
  const b = [...Buffer.from(s, "utf8")];
  return [...uleb(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

const I32 = 0x7f;
const V128 = 0x7b;

/** Instruction helpers (only what the kernels need). */
const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  ltU: [0x49],
  eqz: [0x45],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  i32Store: [0x36, 0x02, 0x00],
  f32Store: [0x38, 0x02, 0x00],
  f32Add: [0x92],
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};
const v128Load = (offset: number) => op.simd(0x00, 0x00, ...uleb(offset));
const v128Zero = op.simd(0x0c, ...new Array(16).fill(0));
const f32x4Add = op.simd(0xe4);
const f32x4Mul = op.simd(0xe6);
const f32x4Lane = (l: number) => op.simd(0x1f, l);
const i32x4Add = op.simd(0xae);
const i32x4Lane = (l: number) => op.simd(0x1b, l);
const i16x8ExtLowS = op.simd(0x87);
const i16x8ExtHighS = op.simd(0x88);
const i32x4DotI16 = op.simd(0xba);

// Parameters: 0 q, 1 base, 2 n, 3 dim, 4 out. Locals: 5 j (i32), 6 rowBytes (i32), 7 acc (v128), 8 acc2 (v128).
function f32dotsBody(): number[] {
  const [Q, B, N, D, OUT, J, RB, ACC, ACC2] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  // prettier-ignore
  const code = [
    ...op.get(D), ...op.i32(4), ...op.mul, ...op.set(RB),
    ...op.block,
    ...op.loop,
    ...op.get(N), ...op.eqz, ...op.brIf(1),
    ...v128Zero, ...op.set(ACC),
    ...v128Zero, ...op.set(ACC2),
    ...op.i32(0), ...op.set(J),
    ...op.loop,
    // acc += q[j..j+4] * b[j..j+4]; acc2 += q[j+4..] * b[j+4..]; ... (64 bytes per iteration, two accumulators)
    ...op.get(ACC),
    ...op.get(Q), ...op.get(J), ...op.add, ...v128Load(0),
    ...op.get(B), ...op.get(J), ...op.add, ...v128Load(0),
    ...f32x4Mul, ...f32x4Add, ...op.set(ACC),
    ...op.get(ACC2),
    ...op.get(Q), ...op.get(J), ...op.add, ...v128Load(16),
    ...op.get(B), ...op.get(J), ...op.add, ...v128Load(16),
    ...f32x4Mul, ...f32x4Add, ...op.set(ACC2),
    ...op.get(ACC),
    ...op.get(Q), ...op.get(J), ...op.add, ...v128Load(32),
    ...op.get(B), ...op.get(J), ...op.add, ...v128Load(32),
    ...f32x4Mul, ...f32x4Add, ...op.set(ACC),
    ...op.get(ACC2),
    ...op.get(Q), ...op.get(J), ...op.add, ...v128Load(48),
    ...op.get(B), ...op.get(J), ...op.add, ...v128Load(48),
    ...f32x4Mul, ...f32x4Add, ...op.set(ACC2),
    ...op.get(J), ...op.i32(64), ...op.add, ...op.tee(J), ...op.get(RB), ...op.ltU, ...op.brIf(0),
    ...op.end,
    ...op.get(ACC), ...op.get(ACC2), ...f32x4Add, ...op.set(ACC),
    ...op.get(OUT),
    ...op.get(ACC), ...f32x4Lane(0), ...op.get(ACC), ...f32x4Lane(1), ...op.f32Add,
    ...op.get(ACC), ...f32x4Lane(2), ...op.get(ACC), ...f32x4Lane(3), ...op.f32Add,
    ...op.f32Add,
    ...op.f32Store,
    ...op.get(OUT), ...op.i32(4), ...op.add, ...op.set(OUT),
    ...op.get(B), ...op.get(RB), ...op.add, ...op.set(B),
    ...op.get(N), ...op.i32(1), ...op.sub, ...op.set(N),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
  // locals: 2 × i32, 2 × v128
  return [...uleb(2), ...uleb(2), I32, ...uleb(2), V128, ...code];
}

// Parameters: 0 q (int16), 1 codes (int8), 2 n, 3 dim, 4 out. Locals: 5 j, 6 dim, (unused), 7 acc, 8 v.
function i8dotsBody(): number[] {
  const [Q, C, N, D, OUT, J, QJ, ACC, V] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  // prettier-ignore
  const code = [
    ...op.block,
    ...op.loop,
    ...op.get(N), ...op.eqz, ...op.brIf(1),
    ...v128Zero, ...op.set(ACC),
    ...op.i32(0), ...op.set(J),
    ...op.get(Q), ...op.set(QJ),
    ...op.loop,
    ...op.get(C), ...op.get(J), ...op.add, ...v128Load(0), ...op.set(V),
    ...op.get(ACC),
    ...op.get(V), ...i16x8ExtLowS, ...op.get(QJ), ...v128Load(0), ...i32x4DotI16,
    ...i32x4Add,
    ...op.get(V), ...i16x8ExtHighS, ...op.get(QJ), ...v128Load(16), ...i32x4DotI16,
    ...i32x4Add,
    ...op.set(ACC),
    ...op.get(QJ), ...op.i32(32), ...op.add, ...op.set(QJ),
    ...op.get(J), ...op.i32(16), ...op.add, ...op.tee(J), ...op.get(D), ...op.ltU, ...op.brIf(0),
    ...op.end,
    ...op.get(OUT),
    ...op.get(ACC), ...i32x4Lane(0), ...op.get(ACC), ...i32x4Lane(1), ...op.add,
    ...op.get(ACC), ...i32x4Lane(2), ...op.get(ACC), ...i32x4Lane(3), ...op.add,
    ...op.add,
    ...op.i32Store,
    ...op.get(OUT), ...op.i32(4), ...op.add, ...op.set(OUT),
    ...op.get(C), ...op.get(D), ...op.add, ...op.set(C),
    ...op.get(N), ...op.i32(1), ...op.sub, ...op.set(N),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
  return [...uleb(2), ...uleb(2), I32, ...uleb(2), V128, ...code];
}

function assemble(): Uint8Array<ArrayBuffer> {
  const typeSec = section(1, [...uleb(1), 0x60, ...uleb(5), I32, I32, I32, I32, I32, ...uleb(0)]);
  const importSec = section(2, [...uleb(1), ...str("env"), ...str("mem"), 0x02, 0x00, ...uleb(1)]);
  const funcSec = section(3, [...uleb(2), ...uleb(0), ...uleb(0)]);
  const exportSec = section(7, [...uleb(2), ...str("f32dots"), 0x00, ...uleb(0), ...str("i8dots"), 0x00, ...uleb(1)]);
  const bodies = [f32dotsBody(), i8dotsBody()];
  const codeSec = section(10, [...uleb(bodies.length), ...bodies.flatMap((b) => [...uleb(b.length), ...b])]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...typeSec,
    ...importSec,
    ...funcSec,
    ...exportSec,
    ...codeSec,
  ]);
}

// ---- the kernel host ------------------------------------------------------------------------------------------------

type KernelFn = (q: number, base: number, n: number, dim: number, out: number) => void;

const PAGE = 65536;

/** Round a dimension up to the kernels' granularity (16 lanes). */
export function padDim(dim: number): number {
  return Math.ceil(dim / 16) * 16;
}

let cachedModule: WebAssembly.Module | null | undefined;

function simdModule(): WebAssembly.Module | null {
  if (cachedModule !== undefined) return cachedModule;
  try {
    const bytes = assemble();
    cachedModule = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    cachedModule = null;
  }
  return cachedModule;
}

/** True when the WebAssembly SIMD kernels are in use (false → plain-JS fallback). */
export function simdAvailable(): boolean {
  return process.env.SEARCHRL_NO_SIMD !== "1" && simdModule() !== null;
}

/**
 * A linear memory with a bump allocator and the two kernels. Regions are allocated once (index data) or reused
 * (per-query scratch); `view*` accessors must be re-read after an allocation (memory growth detaches old views).
 */
export class KernelHost {
  readonly memory: WebAssembly.Memory;
  private top = 16;
  private readonly f32: KernelFn;
  private readonly i8: KernelFn;
  readonly simd: boolean;

  constructor(initialBytes = PAGE) {
    this.memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(initialBytes / PAGE)), maximum: 65536 });
    const mod = process.env.SEARCHRL_NO_SIMD === "1" ? null : simdModule();
    if (mod) {
      const inst = new WebAssembly.Instance(mod, { env: { mem: this.memory } });
      this.f32 = inst.exports.f32dots as KernelFn;
      this.i8 = inst.exports.i8dots as KernelFn;
      this.simd = true;
    } else {
      this.f32 = (q, base, n, dim, out) => {
        const m = new Float32Array(this.memory.buffer);
        const qi = q >> 2;
        let bi = base >> 2;
        const oi = out >> 2;
        for (let r = 0; r < n; r++, bi += dim) {
          let s = 0;
          for (let j = 0; j < dim; j++) s += m[qi + j] * m[bi + j];
          m[oi + r] = s;
        }
      };
      this.i8 = (q, codes, n, dim, out) => {
        const q16 = new Int16Array(this.memory.buffer, q, dim);
        const c8 = new Int8Array(this.memory.buffer);
        const o = new Int32Array(this.memory.buffer, out, n);
        let ci = codes;
        for (let r = 0; r < n; r++, ci += dim) {
          let s = 0;
          for (let j = 0; j < dim; j++) s += q16[j] * c8[ci + j];
          o[r] = s;
        }
      };
      this.simd = false;
    }
  }

  /** Allocate `bytes` (16-byte aligned); returns the byte offset. */
  alloc(bytes: number): number {
    const at = this.top;
    const end = at + Math.ceil(bytes / 16) * 16;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > 65536)
        throw new RangeError(`vector index needs ${(end / 2 ** 30).toFixed(2)} GiB, above the 4 GiB WebAssembly limit`);
      this.memory.grow(pages);
    }
    this.top = end;
    return at;
  }

  get usedBytes(): number {
    return this.top;
  }

  f32View(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }
  i32View(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }
  i16View(ptr: number, length: number): Int16Array {
    return new Int16Array(this.memory.buffer, ptr, length);
  }
  i8View(ptr: number, length: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, length);
  }

  /** out[i] = q · base[i] for n float32 rows of `dim` (a multiple of 16) floats. */
  f32dots(q: number, base: number, n: number, dim: number, out: number): void {
    if (n > 0) this.f32(q, base, n, dim, out);
  }

  /** out[i] = q16 · codes[i] for n int8 rows of `dim` (a multiple of 16) bytes. */
  i8dots(q: number, codes: number, n: number, dim: number, out: number): void {
    if (n > 0) this.i8(q, codes, n, dim, out);
  }
}
