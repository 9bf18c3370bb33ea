/**
 * A few hand-written WebAssembly SIMD kernels that work directly on the tfjs-wasm heap (they import the same
 * WebAssembly.Memory), for the hot loops XNNPACK has no kernel for: single-query attention over a KV cache (decoding)
 * and SwiGLU forward/backward (exp-heavy). The module is assembled here from opcodes (no toolchain, no binary in the
 * repository); `exp` is a vectorised range-reduction + degree-6 polynomial (relative error ~2e-7).
 *
 * All pointers are BYTE offsets into the heap; all float counts that are vectorised must be multiples of 4 (callers
 * check and fall back to the JS kernels otherwise).
 */
import { F32, Fn, I32, OP, SX, V128, assemble, emitExp, emitHsum } from "./simd-asm.js";

/**
 * The middle of single-query attention: pad the scores sc[0..len) to a multiple of 4 with a huge negative value, then
 * sc = exp(sc - m) in place; sets `sum` to their sum. Locals: j (i32), acc/tv/nv/w (v128), m/sum (f32).
 */
function emitExpScores(
  f: Fn,
  l: { sc: number; len: number; j: number; m: number; sum: number; acc: number; tv: number; nv: number; w: number },
): void {
  const { sc, len, j, m, sum, acc, tv, nv, w } = l;
  const lenPad = f.local(I32);
  f.get(len).i32(3).op(OP.i32add).i32(-4).op(0x71 /* i32.and */).set(lenPad);
  f.get(len).set(j);
  f.loop(() => {
    f.get(j).get(lenPad).op(OP.i32geu).brIf(1);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add).f32(-3.0e38).f32store();
    f.get(j).i32(1).op(OP.i32add).set(j);
    f.br(0);
  });
  f.f32(0).simd(SX.f32x4splat).set(acc);
  f.i32(0).set(j);
  f.loop(() => {
    f.get(j).get(len).op(OP.i32geu).brIf(1);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add).v128load();
    f.get(m).simd(SX.f32x4splat).simd(SX.f32x4sub);
    emitExp(f, tv, nv);
    f.tee(w).v128store();
    f.get(acc).get(w).simd(SX.f32x4add).set(acc);
    f.get(j).i32(4).op(OP.i32add).set(j);
    f.br(0);
  });
  emitHsum(f, acc);
  f.set(sum);
}

/**
 * attn1(q, k, v, len, dh, out, sc): single-query attention. q [dh] (already scaled), k/v rows [len, dh], scores
 * scratch sc [len + 3]; out [dh] = softmax(q . k_j) @ v.
 */
function buildAttn1(): Fn {
  const f = new Fn("attn1", [I32, I32, I32, I32, I32, I32, I32], []);
  const [q, k, v, len, dh, out, sc] = [0, 1, 2, 3, 4, 5, 6];
  const j = f.local(I32);
  const e = f.local(I32);
  const kp = f.local(I32);
  const acc = f.local(V128);
  const m = f.local(F32);
  const s = f.local(F32);
  const sum = f.local(F32);
  const tv = f.local(V128);
  const nv = f.local(V128);
  const w = f.local(V128);
  const rowBytes = f.local(I32);
  f.get(dh).i32(2).op(OP.i32shl).set(rowBytes);
  // scores + max
  f.f32(-3.0e38).set(m);
  f.i32(0).set(j).get(k).set(kp);
  f.loop(() => {
    f.get(j).get(len).op(OP.i32geu).brIf(1);
    f.f32(0).simd(SX.f32x4splat).set(acc);
    f.vecLoop(e, rowBytes, () => {
      f.get(acc);
      f.get(q).get(e).op(OP.i32add).v128load();
      f.get(kp).get(e).op(OP.i32add).v128load();
      f.simd(SX.f32x4mul).simd(SX.f32x4add).set(acc);
    });
    emitHsum(f, acc);
    f.set(s);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add).get(s).f32store();
    f.get(s).get(m).op(OP.f32max).set(m);
    f.get(kp).get(rowBytes).op(OP.i32add).set(kp);
    f.get(j).i32(1).op(OP.i32add).set(j);
    f.br(0);
  });
  // Pad the scores to a multiple of 4 with a huge negative value, then exp(sc - m) in place and sum.
  emitExpScores(f, { sc, len, j, m, sum, acc, tv, nv, w });
  // out = 0; out += (sc_j / sum) * v_j
  f.vecLoop(e, rowBytes, () => {
    f.get(out).get(e).op(OP.i32add).f32(0).simd(SX.f32x4splat).v128store();
  });
  f.f32(1).get(sum).op(OP.f32div).set(s);
  f.i32(0).set(j).get(v).set(kp);
  f.loop(() => {
    f.get(j).get(len).op(OP.i32geu).brIf(1);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add).f32load().get(s).op(OP.f32mul).simd(SX.f32x4splat).set(w);
    f.vecLoop(e, rowBytes, () => {
      f.get(out).get(e).op(OP.i32add);
      f.get(out).get(e).op(OP.i32add).v128load();
      f.get(kp).get(e).op(OP.i32add).v128load().get(w).simd(SX.f32x4mul);
      f.simd(SX.f32x4add).v128store();
    });
    f.get(kp).get(rowBytes).op(OP.i32add).set(kp);
    f.get(j).i32(1).op(OP.i32add).set(j);
    f.br(0);
  });
  return f;
}

/** swiglu(gu, act, rows, f): act[r, j] = silu(gu[r, j]) * gu[r, f + j]; f % 4 == 0. */
function buildSwiglu(): Fn {
  const f = new Fn("swiglu", [I32, I32, I32, I32], []);
  const [gu, act, rows, ff] = [0, 1, 2, 3];
  const r = f.local(I32);
  const e = f.local(I32);
  const fb = f.local(I32);
  const g = f.local(I32);
  const a = f.local(I32);
  const x = f.local(V128);
  const tv = f.local(V128);
  const nv = f.local(V128);
  f.get(ff).i32(2).op(OP.i32shl).set(fb);
  f.i32(0).set(r).get(gu).set(g).get(act).set(a);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.vecLoop(e, fb, () => {
      f.get(a).get(e).op(OP.i32add);
      f.get(g).get(e).op(OP.i32add).v128load().set(x);
      // silu(x) = x / (1 + exp(-x))
      f.get(x);
      f.f32(0).simd(SX.f32x4splat).get(x).simd(SX.f32x4sub);
      emitExp(f, tv, nv);
      f.f32(1).simd(SX.f32x4splat).simd(SX.f32x4add).simd(SX.f32x4div);
      f.get(g).get(e).op(OP.i32add).get(fb).op(OP.i32add).v128load().simd(SX.f32x4mul);
      f.v128store();
    });
    f.get(g).get(fb).op(OP.i32add).get(fb).op(OP.i32add).set(g);
    f.get(a).get(fb).op(OP.i32add).set(a);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/** swigluBack(gu, dact, dgu, rows, f): gradients of {@link buildSwiglu}; f % 4 == 0. */
function buildSwigluBack(): Fn {
  const f = new Fn("swiglu_back", [I32, I32, I32, I32, I32], []);
  const [gu, dact, dgu, rows, ff] = [0, 1, 2, 3, 4];
  const r = f.local(I32);
  const e = f.local(I32);
  const fb = f.local(I32);
  const g = f.local(I32);
  const da = f.local(I32);
  const dg = f.local(I32);
  const x = f.local(V128);
  const sg = f.local(V128);
  const up = f.local(V128);
  const d = f.local(V128);
  const tv = f.local(V128);
  const nv = f.local(V128);
  const one = f.local(V128);
  f.f32(1).simd(SX.f32x4splat).set(one);
  f.get(ff).i32(2).op(OP.i32shl).set(fb);
  f.i32(0).set(r).get(gu).set(g).get(dact).set(da).get(dgu).set(dg);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.vecLoop(e, fb, () => {
      f.get(g).get(e).op(OP.i32add).v128load().set(x);
      f.get(g).get(e).op(OP.i32add).get(fb).op(OP.i32add).v128load().set(up);
      f.get(da).get(e).op(OP.i32add).v128load().set(d);
      // sg = 1 / (1 + exp(-x))
      f.get(one);
      f.f32(0).simd(SX.f32x4splat).get(x).simd(SX.f32x4sub);
      emitExp(f, tv, nv);
      f.get(one).simd(SX.f32x4add).simd(SX.f32x4div).set(sg);
      // dgate = d * up * sg * (1 + x * (1 - sg))
      f.get(dg).get(e).op(OP.i32add);
      f.get(d).get(up).simd(SX.f32x4mul).get(sg).simd(SX.f32x4mul);
      f.get(one).get(x).get(one).get(sg).simd(SX.f32x4sub).simd(SX.f32x4mul).simd(SX.f32x4add);
      f.simd(SX.f32x4mul).v128store();
      // dup = d * x * sg
      f.get(dg).get(e).op(OP.i32add).get(fb).op(OP.i32add);
      f.get(d).get(x).simd(SX.f32x4mul).get(sg).simd(SX.f32x4mul).v128store();
    });
    f.get(g).get(fb).op(OP.i32add).get(fb).op(OP.i32add).set(g);
    f.get(dg).get(fb).op(OP.i32add).get(fb).op(OP.i32add).set(dg);
    f.get(da).get(fb).op(OP.i32add).set(da);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/**
 * transpose4(src, dst, rows, cols, r0, r1): dst[c, r] = src[r, c] for r in [r0, r1) (multiples of 4) and c < cols4
 * (cols rounded down to a multiple of 4), in 4x4 blocks (shuffles). `rows`/`cols` are the full matrix dims (strides).
 */
function buildTranspose(): Fn {
  const f = new Fn("transpose4", [I32, I32, I32, I32, I32, I32], []);
  const [src, dst, rows, cols, r0, r1] = [0, 1, 2, 3, 4, 5];
  const rt = f.local(I32);
  const rtEnd = f.local(I32);
  const r = f.local(I32);
  const c = f.local(I32);
  const cols4 = f.local(I32);
  const sp = f.local(I32);
  const dp = f.local(I32);
  const rowB = f.local(I32);
  const dstRowB = f.local(I32);
  const a0 = f.local(V128);
  const a1 = f.local(V128);
  const a2 = f.local(V128);
  const a3 = f.local(V128);
  const t0 = f.local(V128);
  const t1 = f.local(V128);
  const t2 = f.local(V128);
  const t3 = f.local(V128);
  const lo = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
  const hi = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
  const lo64 = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const hi64 = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
  f.get(cols).i32(-4).op(0x71).set(cols4);
  f.get(cols).i32(2).op(OP.i32shl).set(rowB);
  f.get(rows).i32(2).op(OP.i32shl).set(dstRowB);
  f.get(r0).set(rt);
  f.loop(() => {
    f.get(rt).get(r1).op(OP.i32geu).brIf(1);
    // rtEnd = min(rt + 16, r1)
    f.get(rt).i32(16).op(OP.i32add).tee(rtEnd).get(r1).get(rtEnd).get(r1).op(OP.i32ltu).op(OP.select).set(rtEnd);
    f.i32(0).set(c);
    f.loop(() => {
      f.get(c).get(cols4).op(OP.i32geu).brIf(1);
      f.get(rt).set(r);
      f.loop(() => {
        f.get(r).get(rtEnd).op(OP.i32geu).brIf(1);
        // sp = src + (r * cols + c) * 4 ; dp = dst + (c * rows + r) * 4
        f.get(src).get(r).get(rowB).op(OP.i32mul).op(OP.i32add).get(c).i32(2).op(OP.i32shl).op(OP.i32add).set(sp);
        f.get(dst).get(c).get(dstRowB).op(OP.i32mul).op(OP.i32add).get(r).i32(2).op(OP.i32shl).op(OP.i32add).set(dp);
        f.get(sp).v128load().set(a0);
        f.get(sp).get(rowB).op(OP.i32add).tee(sp).v128load().set(a1);
        f.get(sp).get(rowB).op(OP.i32add).tee(sp).v128load().set(a2);
        f.get(sp).get(rowB).op(OP.i32add).v128load().set(a3);
        f.get(a0)
          .get(a1)
          .simd(0x0d, ...lo)
          .set(t0);
        f.get(a0)
          .get(a1)
          .simd(0x0d, ...hi)
          .set(t1);
        f.get(a2)
          .get(a3)
          .simd(0x0d, ...lo)
          .set(t2);
        f.get(a2)
          .get(a3)
          .simd(0x0d, ...hi)
          .set(t3);
        f.get(dp)
          .get(t0)
          .get(t2)
          .simd(0x0d, ...lo64)
          .v128store();
        f.get(dp)
          .get(dstRowB)
          .op(OP.i32add)
          .tee(dp)
          .get(t0)
          .get(t2)
          .simd(0x0d, ...hi64)
          .v128store();
        f.get(dp)
          .get(dstRowB)
          .op(OP.i32add)
          .tee(dp)
          .get(t1)
          .get(t3)
          .simd(0x0d, ...lo64)
          .v128store();
        f.get(dp)
          .get(dstRowB)
          .op(OP.i32add)
          .get(t1)
          .get(t3)
          .simd(0x0d, ...hi64)
          .v128store();
        f.get(r).i32(4).op(OP.i32add).set(r);
        f.br(0);
      });
      f.get(c).i32(4).op(OP.i32add).set(c);
      f.br(0);
    });
    f.get(rtEnd).set(rt);
    f.br(0);
  });
  return f;
}

/** dot(a, b, n): sum a[i] * b[i] over n floats (n % 4 == 0). */
function buildDot(): Fn {
  const f = new Fn("dot", [I32, I32, I32], [F32]);
  const [a, b, n] = [0, 1, 2];
  const e = f.local(I32);
  const end = f.local(I32);
  const acc = f.local(V128);
  f.get(n).i32(2).op(OP.i32shl).set(end);
  f.f32(0).simd(SX.f32x4splat).set(acc);
  f.vecLoop(e, end, () => {
    f.get(acc).get(a).get(e).op(OP.i32add).v128load().get(b).get(e).op(OP.i32add).v128load();
    f.simd(SX.f32x4mul).simd(SX.f32x4add).set(acc);
  });
  emitHsum(f, acc);
  return f;
}

/** scale(a, n, s): a[i] *= s over n floats (n % 4 == 0). */
function buildScale(): Fn {
  const f = new Fn("scale", [I32, I32, F32], []);
  const [a, n, k] = [0, 1, 2];
  const e = f.local(I32);
  const end = f.local(I32);
  const kv = f.local(V128);
  f.get(n).i32(2).op(OP.i32shl).set(end);
  f.get(k).simd(SX.f32x4splat).set(kv);
  f.vecLoop(e, end, () => {
    f.get(a).get(e).op(OP.i32add);
    f.get(a).get(e).op(OP.i32add).v128load().get(kv).simd(SX.f32x4mul).v128store();
  });
  return f;
}

/**
 * adamw(w, g, m, v, n, b1, b2, stepSize, invSqrtBc2, eps, decay): one AdamW update over n floats (n % 4 == 0), in
 * float32: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; w = w·decay − stepSize·m / (√v·invSqrtBc2 + eps).
 */
function buildAdamw(): Fn {
  const f = new Fn("adamw", [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32], []);
  const [w, g, m, v, n, b1, b2, st, ibc, eps, dec] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const e = f.local(I32);
  const end = f.local(I32);
  const [vb1, vc1, vb2, vc2, vst, vibc, veps, vdec, gi, mi, vi] = Array.from({ length: 11 }, () => f.local(V128));
  f.get(n).i32(2).op(OP.i32shl).set(end);
  f.get(b1).simd(SX.f32x4splat).set(vb1);
  f.f32(1).get(b1).op(OP.f32sub).simd(SX.f32x4splat).set(vc1);
  f.get(b2).simd(SX.f32x4splat).set(vb2);
  f.f32(1).get(b2).op(OP.f32sub).simd(SX.f32x4splat).set(vc2);
  f.get(st).simd(SX.f32x4splat).set(vst);
  f.get(ibc).simd(SX.f32x4splat).set(vibc);
  f.get(eps).simd(SX.f32x4splat).set(veps);
  f.get(dec).simd(SX.f32x4splat).set(vdec);
  f.vecLoop(e, end, () => {
    f.get(g).get(e).op(OP.i32add).v128load().set(gi);
    // m
    f.get(vb1).get(m).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul);
    f.get(vc1).get(gi).simd(SX.f32x4mul).simd(SX.f32x4add).set(mi);
    f.get(m).get(e).op(OP.i32add).get(mi).v128store();
    // v
    f.get(vb2).get(v).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul);
    f.get(vc2).get(gi).simd(SX.f32x4mul).get(gi).simd(SX.f32x4mul).simd(SX.f32x4add).set(vi);
    f.get(v).get(e).op(OP.i32add).get(vi).v128store();
    // w
    f.get(w).get(e).op(OP.i32add);
    f.get(w).get(e).op(OP.i32add).v128load().get(vdec).simd(SX.f32x4mul);
    f.get(vst).get(mi).simd(SX.f32x4mul);
    f.get(vi).simd(SX.f32x4sqrt).get(vibc).simd(SX.f32x4mul).get(veps).simd(SX.f32x4add);
    f.simd(SX.f32x4div).simd(SX.f32x4sub).v128store();
  });
  return f;
}

/**
 * softmax_bwd(p, dp, rows, T): dp[r, :] = p[r, :] * (dp[r, :] - dot(dp[r, :], p[r, :])) over full rows of width
 * T (T % 4 == 0). Masked entries have p = 0 and become 0.
 */
function buildSoftmaxBwd(): Fn {
  const f = new Fn("softmax_bwd", [I32, I32, I32, I32], []);
  const [p, dp, rows, T] = [0, 1, 2, 3];
  const r = f.local(I32);
  const e = f.local(I32);
  const rowB = f.local(I32);
  const pp = f.local(I32);
  const dd = f.local(I32);
  const acc = f.local(V128);
  const dv = f.local(V128);
  f.get(T).i32(2).op(OP.i32shl).set(rowB);
  f.i32(0).set(r).get(p).set(pp).get(dp).set(dd);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.f32(0).simd(SX.f32x4splat).set(acc);
    f.vecLoop(e, rowB, () => {
      f.get(acc).get(pp).get(e).op(OP.i32add).v128load().get(dd).get(e).op(OP.i32add).v128load();
      f.simd(SX.f32x4mul).simd(SX.f32x4add).set(acc);
    });
    emitHsum(f, acc);
    f.simd(SX.f32x4splat).set(dv);
    f.vecLoop(e, rowB, () => {
      f.get(dd).get(e).op(OP.i32add);
      f.get(pp).get(e).op(OP.i32add).v128load();
      f.get(dd).get(e).op(OP.i32add).v128load().get(dv).simd(SX.f32x4sub);
      f.simd(SX.f32x4mul).v128store();
    });
    f.get(pp).get(rowB).op(OP.i32add).set(pp);
    f.get(dd).get(rowB).op(OP.i32add).set(dd);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/**
 * rope(src, srcStride, dst, dstStride, rows, dh, cosE, sinS, scale): for each of `rows` rows (strides in bytes),
 * dst = (x * cosE + pairswap(x) * sinS) * scale, where cosE/sinS point at the table rows of consecutive positions
 * (dh floats per position: cos duplicated per pair; sin as [-s, +s] per pair, or negated for the inverse rotation).
 */
function buildRope(): Fn {
  const f = new Fn("rope", [I32, I32, I32, I32, I32, I32, I32, I32, F32], []);
  const [src, srcStride, dst, dstStride, rows, dh, cosE, sinS, scale] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const r = f.local(I32);
  const e = f.local(I32);
  const rowB = f.local(I32);
  const sp = f.local(I32);
  const dp = f.local(I32);
  const cp = f.local(I32);
  const spn = f.local(I32);
  const x = f.local(V128);
  const sc = f.local(V128);
  const swap = [4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11];
  f.get(dh).i32(2).op(OP.i32shl).set(rowB);
  f.get(scale).simd(SX.f32x4splat).set(sc);
  f.get(src).set(sp).get(dst).set(dp).get(cosE).set(cp).get(sinS).set(spn);
  f.i32(0).set(r);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.vecLoop(e, rowB, () => {
      f.get(dp).get(e).op(OP.i32add);
      f.get(sp).get(e).op(OP.i32add).v128load().tee(x);
      f.get(cp).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul);
      f.get(x)
        .get(x)
        .simd(0x0d, ...swap);
      f.get(spn).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul);
      f.simd(SX.f32x4add).get(sc).simd(SX.f32x4mul).v128store();
    });
    f.get(sp).get(srcStride).op(OP.i32add).set(sp);
    f.get(dp).get(dstStride).op(OP.i32add).set(dp);
    f.get(cp).get(rowB).op(OP.i32add).set(cp);
    f.get(spn).get(rowB).op(OP.i32add).set(spn);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/**
 * attn1_<dh>(q, k, v, len, out, sc): {@link buildAttn1} for a fixed head width (32 or 64), fully unrolled over the
 * head: q and the output accumulator live in registers (dh / 4 vectors), no inner loops.
 */
function buildAttn1Unrolled(dh: number): Fn {
  const f = new Fn(`attn1_${dh}`, [I32, I32, I32, I32, I32, I32], []);
  const [q, k, v, len, out, sc] = [0, 1, 2, 3, 4, 5];
  const nv = dh / 4;
  const j = f.local(I32);
  const kp = f.local(I32);
  const m = f.local(F32);
  const s = f.local(F32);
  const sum = f.local(F32);
  const acc = f.local(V128);
  const tv = f.local(V128);
  const ev = f.local(V128);
  const w = f.local(V128);
  const qv = Array.from({ length: nv }, () => f.local(V128));
  const ov = Array.from({ length: nv }, () => f.local(V128));
  for (let i = 0; i < nv; i++)
    f.get(q)
      .v128load(16 * i)
      .set(qv[i]);
  // scores + max
  f.f32(-3.0e38).set(m);
  f.i32(0).set(j).get(k).set(kp);
  f.loop(() => {
    f.get(j).get(len).op(OP.i32geu).brIf(1);
    for (let i = 0; i < nv; i++) {
      f.get(kp)
        .v128load(16 * i)
        .get(qv[i])
        .simd(SX.f32x4mul);
      if (i > 0) f.simd(SX.f32x4add);
    }
    f.set(acc);
    emitHsum(f, acc);
    f.set(s);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add).get(s).f32store();
    f.get(s).get(m).op(OP.f32max).set(m);
    f.get(kp)
      .i32(dh * 4)
      .op(OP.i32add)
      .set(kp);
    f.get(j).i32(1).op(OP.i32add).set(j);
    f.br(0);
  });
  // Pad to a multiple of 4, exp(sc - m) in place, sum.
  emitExpScores(f, { sc, len, j, m, sum, acc, tv, nv: ev, w });
  // out = sum_j (sc_j / sum) v_j, accumulated in registers
  for (let i = 0; i < nv; i++) f.f32(0).simd(SX.f32x4splat).set(ov[i]);
  f.i32(0).set(j).get(v).set(kp);
  f.loop(() => {
    f.get(j).get(len).op(OP.i32geu).brIf(1);
    f.get(sc).get(j).i32(2).op(OP.i32shl).op(OP.i32add).f32load().simd(SX.f32x4splat).set(w);
    for (let i = 0; i < nv; i++)
      f.get(ov[i])
        .get(kp)
        .v128load(16 * i)
        .get(w)
        .simd(SX.f32x4mul)
        .simd(SX.f32x4add)
        .set(ov[i]);
    f.get(kp)
      .i32(dh * 4)
      .op(OP.i32add)
      .set(kp);
    f.get(j).i32(1).op(OP.i32add).set(j);
    f.br(0);
  });
  f.f32(1).get(sum).op(OP.f32div).simd(SX.f32x4splat).set(w);
  for (let i = 0; i < nv; i++)
    f.get(out)
      .get(ov[i])
      .get(w)
      .simd(SX.f32x4mul)
      .v128store(16 * i);
  return f;
}

/**
 * rmsnorm(x, g, y, rstd, rows, d, eps): y[r] = x[r] * rstd[r] * g with rstd[r] = 1/sqrt(mean(x[r]^2) + eps), written
 * to rstd (one f32 per row); d % 4 == 0.
 */
function buildRmsnorm(): Fn {
  const f = new Fn("rmsnorm", [I32, I32, I32, I32, I32, I32, F32], []);
  const [x, g, y, rstd, rows, d, eps] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(I32);
  const e = f.local(I32);
  const rowB = f.local(I32);
  const xp = f.local(I32);
  const yp = f.local(I32);
  const rp = f.local(I32);
  const acc = f.local(V128);
  const v = f.local(V128);
  const s = f.local(F32);
  const sv = f.local(V128);
  f.get(d).i32(2).op(OP.i32shl).set(rowB);
  f.get(x).set(xp).get(y).set(yp).get(rstd).set(rp);
  f.i32(0).set(r);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.f32(0).simd(SX.f32x4splat).set(acc);
    f.vecLoop(e, rowB, () => {
      f.get(xp).get(e).op(OP.i32add).v128load().tee(v);
      f.get(v).simd(SX.f32x4mul).get(acc).simd(SX.f32x4add).set(acc);
    });
    f.f32(1);
    emitHsum(f, acc);
    f.get(d).op(OP.f32convertI32s).op(OP.f32div).get(eps).op(OP.f32add).op(OP.f32sqrt).op(OP.f32div).set(s);
    f.get(rp).get(s).f32store();
    f.get(s).simd(SX.f32x4splat).set(sv);
    f.vecLoop(e, rowB, () => {
      f.get(yp).get(e).op(OP.i32add);
      f.get(xp).get(e).op(OP.i32add).v128load().get(sv).simd(SX.f32x4mul);
      f.get(g).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul).v128store();
    });
    f.get(xp).get(rowB).op(OP.i32add).set(xp);
    f.get(yp).get(rowB).op(OP.i32add).set(yp);
    f.get(rp).i32(4).op(OP.i32add).set(rp);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/**
 * rmsnorm_back(dy, x, rstd, g, dx, dg, rows, d, accumulate): backward of {@link buildRmsnorm}. dx (+)= rstd * dy * g
 * - x * rstd^3 * sum(dy * g * x) / d (added when accumulate != 0); dg += sum over rows of dy * x * rstd. d % 4 == 0.
 */
function buildRmsnormBack(): Fn {
  const f = new Fn("rmsnorm_back", [I32, I32, I32, I32, I32, I32, I32, I32, I32], []);
  const [dy, x, rstd, g, dx, dg, rows, d, accum] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const r = f.local(I32);
  const e = f.local(I32);
  const rowB = f.local(I32);
  const dyp = f.local(I32);
  const xp = f.local(I32);
  const dxp = f.local(I32);
  const rp = f.local(I32);
  const acc = f.local(V128);
  const dyv = f.local(V128);
  const xv = f.local(V128);
  const s = f.local(F32);
  const sv = f.local(V128);
  const kv = f.local(V128);
  f.get(d).i32(2).op(OP.i32shl).set(rowB);
  f.get(dy).set(dyp).get(x).set(xp).get(dx).set(dxp).get(rstd).set(rp);
  f.i32(0).set(r);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.get(rp).f32load().tee(s).simd(SX.f32x4splat).set(sv);
    f.f32(0).simd(SX.f32x4splat).set(acc);
    f.vecLoop(e, rowB, () => {
      f.get(dyp).get(e).op(OP.i32add).v128load().set(dyv);
      f.get(xp).get(e).op(OP.i32add).v128load().set(xv);
      f.get(dyv).get(g).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul).get(xv).simd(SX.f32x4mul);
      f.get(acc).simd(SX.f32x4add).set(acc);
      f.get(dg).get(e).op(OP.i32add);
      f.get(dg).get(e).op(OP.i32add).v128load();
      f.get(dyv).get(xv).simd(SX.f32x4mul).get(sv).simd(SX.f32x4mul).simd(SX.f32x4add).v128store();
    });
    // k = s^3 * dot / d
    f.get(s).get(s).op(OP.f32mul).get(s).op(OP.f32mul);
    emitHsum(f, acc);
    f.op(OP.f32mul).get(d).op(OP.f32convertI32s).op(OP.f32div).simd(SX.f32x4splat).set(kv);
    f.vecLoop(e, rowB, () => {
      f.get(sv).get(dyp).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul);
      f.get(g).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul);
      f.get(xp).get(e).op(OP.i32add).v128load().get(kv).simd(SX.f32x4mul).simd(SX.f32x4sub).set(dyv);
      f.get(accum).op(OP.if_, 0x40);
      f.get(dxp).get(e).op(OP.i32add).v128load().get(dyv).simd(SX.f32x4add).set(dyv);
      f.op(OP.end);
      f.get(dxp).get(e).op(OP.i32add).get(dyv).v128store();
    });
    f.get(dyp).get(rowB).op(OP.i32add).set(dyp);
    f.get(xp).get(rowB).op(OP.i32add).set(xp);
    f.get(dxp).get(rowB).op(OP.i32add).set(dxp);
    f.get(rp).i32(4).op(OP.i32add).set(rp);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/** copy_rows(src, srcStride, dst, dstStride, rows, bytes): copies `rows` rows of `bytes` (% 16 == 0); strides in bytes. */
function buildCopyRows(): Fn {
  const f = new Fn("copy_rows", [I32, I32, I32, I32, I32, I32], []);
  const [src, srcStride, dst, dstStride, rows, bytes] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32);
  const e = f.local(I32);
  const sp = f.local(I32);
  const dp = f.local(I32);
  f.get(src).set(sp).get(dst).set(dp);
  f.i32(0).set(r);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    f.vecLoop(e, bytes, () => {
      f.get(dp).get(e).op(OP.i32add).get(sp).get(e).op(OP.i32add).v128load().v128store();
    });
    f.get(sp).get(srcStride).op(OP.i32add).set(sp);
    f.get(dp).get(dstStride).op(OP.i32add).set(dp);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

/**
 * logsoftmax_rows(z, p, rows, V, stats): per row of logits z [rows, V] (V % 4 == 0) writes the softmax p and
 * stats[3r..3r+2] = (max, sum of exp(z - max), sum of p * z); the caller takes lse = max + log(sum).
 */
function buildLogsoftmaxRows(): Fn {
  const f = new Fn("logsoftmax_rows", [I32, I32, I32, I32, I32], []);
  const [z, p, rows, V, stats] = [0, 1, 2, 3, 4];
  const r = f.local(I32);
  const e = f.local(I32);
  const vb = f.local(I32);
  const zp = f.local(I32);
  const pp = f.local(I32);
  const sp = f.local(I32);
  const mx = f.local(V128);
  const acc = f.local(V128);
  const x = f.local(V128);
  const t = f.local(V128);
  const nn = f.local(V128);
  const m = f.local(F32);
  const sum = f.local(F32);
  f.get(V).i32(2).op(OP.i32shl).set(vb);
  f.get(z).set(zp).get(p).set(pp).get(stats).set(sp);
  f.i32(0).set(r);
  f.loop(() => {
    f.get(r).get(rows).op(OP.i32geu).brIf(1);
    // max
    f.f32(-3.4e38).simd(SX.f32x4splat).set(mx);
    f.vecLoop(e, vb, () => {
      f.get(mx).get(zp).get(e).op(OP.i32add).v128load().simd(SX.f32x4max).set(mx);
    });
    f.get(mx).simd(SX.f32x4extract, 0).get(mx).simd(SX.f32x4extract, 1).op(OP.f32max);
    f.get(mx).simd(SX.f32x4extract, 2).op(OP.f32max).get(mx).simd(SX.f32x4extract, 3).op(OP.f32max).set(m);
    f.get(m).simd(SX.f32x4splat).set(mx);
    // p = exp(z - max), sum
    f.f32(0).simd(SX.f32x4splat).set(acc);
    f.vecLoop(e, vb, () => {
      f.get(zp).get(e).op(OP.i32add).v128load().get(mx).simd(SX.f32x4sub);
      emitExp(f, t, nn);
      f.set(x);
      f.get(pp).get(e).op(OP.i32add).get(x).v128store();
      f.get(acc).get(x).simd(SX.f32x4add).set(acc);
    });
    emitHsum(f, acc);
    f.set(sum);
    // normalise, sum of p * z
    f.f32(1).get(sum).op(OP.f32div).simd(SX.f32x4splat).set(mx);
    f.f32(0).simd(SX.f32x4splat).set(acc);
    f.vecLoop(e, vb, () => {
      f.get(pp).get(e).op(OP.i32add).v128load().get(mx).simd(SX.f32x4mul).set(x);
      f.get(pp).get(e).op(OP.i32add).get(x).v128store();
      f.get(acc).get(x).get(zp).get(e).op(OP.i32add).v128load().simd(SX.f32x4mul).simd(SX.f32x4add).set(acc);
    });
    f.get(sp).get(m).f32store();
    f.get(sp).get(sum).f32store(4);
    f.get(sp);
    emitHsum(f, acc);
    f.f32store(8);
    f.get(zp).get(vb).op(OP.i32add).set(zp);
    f.get(pp).get(vb).op(OP.i32add).set(pp);
    f.get(sp).i32(12).op(OP.i32add).set(sp);
    f.get(r).i32(1).op(OP.i32add).set(r);
    f.br(0);
  });
  return f;
}

export interface SimdKernels {
  attn1(q: number, k: number, v: number, len: number, dh: number, out: number, sc: number): void;
  attn1_32(q: number, k: number, v: number, len: number, out: number, sc: number): void;
  attn1_64(q: number, k: number, v: number, len: number, out: number, sc: number): void;
  swiglu(gu: number, act: number, rows: number, f: number): void;
  swiglu_back(gu: number, dact: number, dgu: number, rows: number, f: number): void;
  transpose4(src: number, dst: number, rows: number, cols: number, r0: number, r1: number): void;
  dot(a: number, b: number, n: number): number;
  scale(a: number, n: number, s: number): void;
  adamw(
    w: number,
    g: number,
    m: number,
    v: number,
    n: number,
    b1: number,
    b2: number,
    stepSize: number,
    invSqrtBc2: number,
    eps: number,
    decay: number,
  ): void;
  softmax_bwd(p: number, dp: number, rows: number, T: number): void;
  rmsnorm(x: number, g: number, y: number, rstd: number, rows: number, d: number, eps: number): void;
  rmsnorm_back(
    dy: number,
    x: number,
    rstd: number,
    g: number,
    dx: number,
    dg: number,
    rows: number,
    d: number,
    accumulate: number,
  ): void;
  copy_rows(src: number, srcStride: number, dst: number, dstStride: number, rows: number, bytes: number): void;
  logsoftmax_rows(z: number, p: number, rows: number, V: number, stats: number): void;
  rope(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    rows: number,
    dh: number,
    cosE: number,
    sinS: number,
    scale: number,
  ): void;
}

const cache = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/** The SIMD kernels bound to a heap, or null when the engine lacks WebAssembly SIMD or disabled by env. */
export function simdKernels(memory: WebAssembly.Memory): SimdKernels | null {
  if (cache.has(memory)) return cache.get(memory)!;
  let k: SimdKernels | null = null;
  if (process.env.SEARCHRL_NO_SIMD !== "1") {
    try {
      const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
      const bytes = assemble(
        [
          buildAttn1(),
          buildAttn1Unrolled(32),
          buildAttn1Unrolled(64),
          buildSwiglu(),
          buildSwigluBack(),
          buildTranspose(),
          buildDot(),
          buildScale(),
          buildAdamw(),
          buildSoftmaxBwd(),
          buildRope(),
          buildRmsnorm(),
          buildRmsnormBack(),
          buildCopyRows(),
          buildLogsoftmaxRows(),
        ],
        shared,
      );
      const mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
      const inst = new WebAssembly.Instance(mod, { env: { memory } });
      k = inst.exports as unknown as SimdKernels;
    } catch {
      k = null;
    }
  }
  cache.set(memory, k);
  return k;
}
