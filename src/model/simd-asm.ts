/**
 * A tiny WebAssembly assembler for the hand-written SIMD kernels (simd.ts): a function body builder over opcodes,
 * the opcodes the kernels use, a vectorised exp and horizontal sum, and the module writer (one memory import,
 * one export per function). No toolchain, no binary in the repository.
 */

// ---- a tiny assembler ------------------------------------------------------------------------------------------

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}
function sleb(n: number, out: number[]): void {
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}
const f32buf = new Float32Array(1);
const f32bytes = new Uint8Array(f32buf.buffer);

/** Function body builder: locals are numbered after the params. */
export class Fn {
  readonly code: number[] = [];
  readonly locals: number[] = [];
  constructor(
    readonly name: string,
    readonly params: number[],
    readonly results: number[],
  ) {}
  local(type: number): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  get(i: number): this {
    this.code.push(0x20);
    uleb(i, this.code);
    return this;
  }
  set(i: number): this {
    this.code.push(0x21);
    uleb(i, this.code);
    return this;
  }
  tee(i: number): this {
    this.code.push(0x22);
    uleb(i, this.code);
    return this;
  }
  i32(n: number): this {
    this.code.push(0x41);
    sleb(n | 0, this.code);
    return this;
  }
  f32(x: number): this {
    f32buf[0] = x;
    this.code.push(0x43, ...f32bytes);
    return this;
  }
  /** SIMD instruction (0xfd prefix). */
  simd(opcode: number, ...imm: number[]): this {
    this.code.push(0xfd);
    uleb(opcode, this.code);
    this.code.push(...imm);
    return this;
  }
  v128load(offset = 0): this {
    return this.simd(0x00, 4, ...lebBytes(offset));
  }
  v128store(offset = 0): this {
    return this.simd(0x0b, 4, ...lebBytes(offset));
  }
  f32load(offset = 0): this {
    this.code.push(0x2a, 2);
    uleb(offset, this.code);
    return this;
  }
  f32store(offset = 0): this {
    this.code.push(0x38, 2);
    uleb(offset, this.code);
    return this;
  }
  /** Emit `block loop <body> end end` where `brIf` on the loop continues. Body gets (breakDepth=1, continueDepth=0). */
  loop(body: () => void): this {
    this.code.push(0x02, 0x40, 0x03, 0x40);
    body();
    this.code.push(0x0b, 0x0b);
    return this;
  }
  /** `for (v = 0; v < end; v += 16) body()`: the kernels' loop over a row's bytes, one v128 per step. */
  vecLoop(v: number, end: number, body: () => void): this {
    this.i32(0).set(v);
    return this.loop(() => {
      this.get(v).get(end).op(0x4f /* i32.ge_u */).brIf(1);
      body();
      this.get(v).i32(16).op(0x6a /* i32.add */).set(v);
      this.br(0);
    });
  }
  br(depth: number): this {
    this.code.push(0x0c);
    uleb(depth, this.code);
    return this;
  }
  brIf(depth: number): this {
    this.code.push(0x0d);
    uleb(depth, this.code);
    return this;
  }
}
function lebBytes(n: number): number[] {
  const o: number[] = [];
  uleb(n, o);
  return o;
}

// Opcodes used below.
export const OP = {
  i32add: 0x6a,
  i32sub: 0x6b,
  i32mul: 0x6c,
  i32shl: 0x74,
  i32ltu: 0x49,
  i32geu: 0x4f,
  i32eqz: 0x45,
  f32add: 0x92,
  f32sub: 0x93,
  f32mul: 0x94,
  f32div: 0x95,
  f32max: 0x97,
  f32sqrt: 0x91,
  f32convertI32s: 0xb2,
  f32gt: 0x5e,
  select: 0x1b,
  drop: 0x1a,
  end: 0x0b,
  if_: 0x04,
  else_: 0x05,
};
export const SX = {
  f32x4splat: 0x13,
  i32x4splat: 0x11,
  f32x4extract: 0x1f,
  f32x4add: 0xe4,
  f32x4sub: 0xe5,
  f32x4mul: 0xe6,
  f32x4div: 0xe7,
  f32x4sqrt: 0xe3,
  f32x4min: 0xe8,
  f32x4max: 0xe9,
  f32x4nearest: 0x6a,
  i32x4add: 0xae,
  i32x4shl: 0xab,
  i32x4truncsat: 0xf8,
};

/**
 * Emit a vectorised exp of the v128 on the stack (leaves the result on the stack). Uses locals t (v128), n (v128).
 * exp(x) = 2^n * p(r), n = round(x / ln2), r = x - n ln2 (two-step), p = degree-6 Taylor polynomial.
 */
export function emitExp(f: Fn, t: number, n: number): void {
  f.f32(88.0).simd(SX.f32x4splat).simd(SX.f32x4min);
  f.f32(-87.0).simd(SX.f32x4splat).simd(SX.f32x4max);
  f.tee(t);
  f.f32(1.4426950408889634).simd(SX.f32x4splat).simd(SX.f32x4mul).simd(SX.f32x4nearest).set(n);
  // r = x - n*ln2_hi - n*ln2_lo
  f.get(t).get(n).f32(0.693145751953125).simd(SX.f32x4splat).simd(SX.f32x4mul).simd(SX.f32x4sub);
  f.get(n).f32(1.428606765330187e-6).simd(SX.f32x4splat).simd(SX.f32x4mul).simd(SX.f32x4sub).set(t);
  // Horner: ((((((1/720 r + 1/120) r + 1/24) r + 1/6) r + 1/2) r + 1) r + 1
  f.f32(1 / 720).simd(SX.f32x4splat);
  for (const c of [1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1]) {
    f.get(t).simd(SX.f32x4mul).f32(c).simd(SX.f32x4splat).simd(SX.f32x4add);
  }
  // * 2^n  (bits (n + 127) << 23)
  f.get(n).simd(SX.i32x4truncsat).i32(127).simd(SX.i32x4splat).simd(SX.i32x4add).i32(23).simd(SX.i32x4shl);
  f.simd(SX.f32x4mul);
}

/** Horizontal sum of the v128 in local `v` (pushes an f32). */
export function emitHsum(f: Fn, v: number): void {
  f.get(v).simd(SX.f32x4extract, 0);
  f.get(v).simd(SX.f32x4extract, 1).op(OP.f32add);
  f.get(v).simd(SX.f32x4extract, 2).op(OP.f32add);
  f.get(v).simd(SX.f32x4extract, 3).op(OP.f32add);
}

/** Assemble a module importing env.memory (non-shared) and exporting the given functions. */
export function assemble(fns: Fn[], shared: boolean): Uint8Array {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const section = (id: number, body: number[]): void => {
    out.push(id);
    uleb(body.length, out);
    out.push(...body);
  };
  const str = (s: string, o: number[]): void => {
    const b = new TextEncoder().encode(s);
    uleb(b.length, o);
    o.push(...b);
  };
  // types: one per function
  const types: number[] = [];
  uleb(fns.length, types);
  for (const f of fns) {
    types.push(0x60);
    uleb(f.params.length, types);
    types.push(...f.params);
    uleb(f.results.length, types);
    types.push(...f.results);
  }
  section(1, types);
  // import env.memory
  const imp: number[] = [];
  uleb(1, imp);
  str("env", imp);
  str("memory", imp);
  imp.push(0x02);
  if (shared) {
    imp.push(0x03);
    uleb(1, imp);
    uleb(65536, imp);
  } else {
    imp.push(0x00);
    uleb(1, imp);
  }
  section(2, imp);
  const funcs: number[] = [];
  uleb(fns.length, funcs);
  fns.forEach((_, i) => uleb(i, funcs));
  section(3, funcs);
  const exps: number[] = [];
  uleb(fns.length, exps);
  fns.forEach((f, i) => {
    str(f.name, exps);
    exps.push(0x00);
    uleb(i, exps);
  });
  section(7, exps);
  const code: number[] = [];
  uleb(fns.length, code);
  for (const f of fns) {
    const body: number[] = [];
    uleb(f.locals.length, body);
    for (const t of f.locals) {
      uleb(1, body);
      body.push(t);
    }
    body.push(...f.code, OP.end);
    uleb(body.length, code);
    code.push(...body);
  }
  section(10, code);
  return Uint8Array.from(out);
}
