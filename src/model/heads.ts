/**
 * Head layouts of the attention block: the fused qkv rows [N, (H + 2 Hkv) dh] are split per sequence into head blocks
 * ([H][T][dh] for q, pre-scaled by 1/sqrt(dh) and rotated; [Hkv][T][dh] for k, rotated, and v), the attention output
 * is merged back to [N, H dh], and the backward pass does the inverse of both (inverse RoPE). SIMD kernels where the
 * head width is a multiple of 4 (RoPE and row copies), plain loops otherwise. Pointers are byte offsets into the heap.
 */
import type { WasmRuntime } from "./runtime.js";

/** What the head layouts of one packed batch depend on. */
export interface HeadLayout {
  rt: WasmRuntime;
  /** Token offset of each sequence; start[nSeq] = N. */
  start: Int32Array;
  nSeq: number;
  /** Query heads, kv heads, head width. */
  H: number;
  Hkv: number;
  dh: number;
  qDim: number;
  kvDim: number;
  qkvDim: number;
  /** 1/sqrt(dh), folded into q. */
  scale: number;
  /** RoPE tables [position][dh / 2] (plain loops). */
  cos: Float32Array;
  sin: Float32Array;
  /** RoPE tables on the heap for the SIMD kernel (null: plain loops). */
  rope: { cos: number; sin: number; sinInv: number } | null;
}

function dims(L: HeadLayout) {
  const { rt, start, nSeq, Hkv, dh, qDim, kvDim, qkvDim, scale } = L;
  return { rt, start, nSeq, H_: L.H, Hkv, dh, qDim, kvDim, qkvDim, scale, half: dh / 2 };
}

/** Fused qkv rows into the head blocks qh, kh, vh (q rotated and scaled, k rotated). */
export function splitQkv(L: HeadLayout, qkv: number, qh: number, kh: number, vh: number): void {
  const { rt, start, nSeq, H_, Hkv, dh, qDim, kvDim, qkvDim, scale, half } = dims(L);
  const H = rt.f32();

  {
    const qkv0 = qkv >> 2;
    const qh0 = qh >> 2;
    const kh0 = kh >> 2;
    const vh0 = vh >> 2;
    const cos = L.cos;
    const sin = L.sin;
    for (let b = 0; b < nSeq; b++) {
      const s0 = start[b];
      const T = start[b + 1] - s0;
      const qBase = qh0 + s0 * qDim;
      const kBase = s0 * kvDim;
      const rope = L.rope;
      if (rope) {
        // SIMD RoPE straight from the fused qkv rows into the head blocks.
        const simd = rt.simd!;
        const rowB = qkvDim * 4;
        for (let h = 0; h < H_; h++) {
          simd.rope(
            (qkv0 + s0 * qkvDim + h * dh) << 2,
            rowB,
            (qBase + h * T * dh) << 2,
            dh * 4,
            T,
            dh,
            rope.cos,
            rope.sin,
            scale,
          );
        }
        for (let g = 0; g < Hkv; g++) {
          simd.rope(
            (qkv0 + s0 * qkvDim + qDim + g * dh) << 2,
            rowB,
            (kh0 + kBase + g * T * dh) << 2,
            dh * 4,
            T,
            dh,
            rope.cos,
            rope.sin,
            1,
          );
          const vdst = vh0 + kBase + g * T * dh;
          const vsrc = qkv0 + s0 * qkvDim + qDim + kvDim + g * dh;
          if (dh % 4 === 0) simd.copy_rows(vsrc << 2, qkvDim * 4, vdst << 2, dh * 4, T, dh * 4);
          else for (let i = 0; i < T; i++) H.copyWithin(vdst + i * dh, vsrc + i * qkvDim, vsrc + i * qkvDim + dh);
        }
      }
      for (let i = 0; i < (rope ? 0 : T); i++) {
        const row = qkv0 + (s0 + i) * qkvDim;
        const ro = i * half;
        for (let h = 0; h < H_; h++) {
          const src = row + h * dh;
          const dst = qBase + (h * T + i) * dh;
          for (let e = 0; e < half; e++) {
            const a = H[src + 2 * e];
            const bb = H[src + 2 * e + 1];
            const cs = cos[ro + e];
            const sn = sin[ro + e];
            H[dst + 2 * e] = (a * cs - bb * sn) * scale;
            H[dst + 2 * e + 1] = (a * sn + bb * cs) * scale;
          }
        }
        for (let g = 0; g < Hkv; g++) {
          const src = row + qDim + g * dh;
          const dst = kh0 + kBase + (g * T + i) * dh;
          for (let e = 0; e < half; e++) {
            const a = H[src + 2 * e];
            const bb = H[src + 2 * e + 1];
            const cs = cos[ro + e];
            const sn = sin[ro + e];
            H[dst + 2 * e] = a * cs - bb * sn;
            H[dst + 2 * e + 1] = a * sn + bb * cs;
          }
          const vsrc = row + qDim + kvDim + g * dh;
          const vdst = vh0 + kBase + (g * T + i) * dh;
          for (let e = 0; e < dh; e++) H[vdst + e] = H[vsrc + e];
        }
      }
    }
  }
}

/** Layer `layer`'s k and v head blocks into each sequence's cache slot (K [maxLen, dh] then V per layer and kv head). */
export function writeKvCache(
  L: HeadLayout,
  kh: number,
  vh: number,
  cache: { slotPtr: Int32Array | number[]; maxLen: number },
  layer: number,
): void {
  const { rt, start, nSeq, Hkv, dh, kvDim } = dims(L);
  const H = rt.f32();
  const kh0 = kh >> 2;
  const vh0 = vh >> 2;
  for (let b = 0; b < nSeq; b++) {
    const s0 = start[b];
    const T = start[b + 1] - s0;
    // Slot layout: for each layer and kv head, K [maxLen, dh] then V [maxLen, dh].
    const slot = cache.slotPtr[b] >> 2;
    for (let g = 0; g < Hkv; g++) {
      const kdst = slot + (layer * Hkv + g) * 2 * cache.maxLen * dh;
      const vdst = kdst + cache.maxLen * dh;
      const ks = kh0 + s0 * kvDim + g * T * dh;
      const vs = vh0 + s0 * kvDim + g * T * dh;
      H.copyWithin(kdst, ks, ks + T * dh);
      H.copyWithin(vdst, vs, vs + T * dh);
    }
  }
}

/** Head blocks oh [H][T][dh] per sequence back to rows ao [N, H dh]. */
export function mergeHeads(L: HeadLayout, oh: number, ao: number): void {
  const { rt, start, nSeq, H_, dh, qDim } = dims(L);
  const H = rt.f32();
  const rowCopy = dh % 4 === 0 ? rt.simd : null;

  {
    const oh0 = oh >> 2;
    const ao0 = ao >> 2;
    for (let b = 0; b < nSeq; b++) {
      const s0 = start[b];
      const T = start[b + 1] - s0;
      for (let h = 0; h < H_; h++) {
        const src0 = oh0 + s0 * qDim + h * T * dh;
        const dst0 = ao0 + s0 * qDim + h * dh;
        if (rowCopy) rowCopy.copy_rows(src0 << 2, dh * 4, dst0 << 2, qDim * 4, T, dh * 4);
        else for (let i = 0; i < T; i++) H.copyWithin(dst0 + i * qDim, src0 + i * dh, src0 + (i + 1) * dh);
      }
    }
  }
}

/** Rows dao [N, H dh] into head blocks doh (the layout of qh): the backward of {@link mergeHeads}. */
export function splitHeadGrads(L: HeadLayout, dao: number, doh: number): void {
  const { rt, start, nSeq, H_, dh, qDim } = dims(L);
  const H = rt.f32();
  const rowCopy = dh % 4 === 0 ? rt.simd : null;

  {
    const src0 = dao >> 2;
    const dst0 = doh >> 2;
    for (let b = 0; b < nSeq; b++) {
      const s0 = start[b];
      const T = start[b + 1] - s0;
      for (let h = 0; h < H_; h++) {
        const base = dst0 + s0 * qDim + h * T * dh;
        const src = src0 + s0 * qDim + h * dh;
        if (rowCopy) rowCopy.copy_rows(src << 2, qDim * 4, base << 2, dh * 4, T, dh * 4);
        else for (let i = 0; i < T; i++) H.copyWithin(base + i * dh, src + i * qDim, src + i * qDim + dh);
      }
    }
  }
}

/** Head-block gradients dqh, dkh, dvh into fused rows dqkv with inverse RoPE (and the q scale): backward of {@link splitQkv}. */
export function mergeQkvGrads(L: HeadLayout, dqh: number, dkh: number, dvh: number, dqkv: number): void {
  const { rt, start, nSeq, H_, Hkv, dh, qDim, kvDim, qkvDim, scale, half } = dims(L);
  const H = rt.f32();

  {
    const out0 = dqkv >> 2;
    const dq0 = dqh >> 2;
    const dk0 = dkh >> 2;
    const dv0 = dvh >> 2;
    const cos = L.cos;
    const sin = L.sin;
    const rope = L.rope;
    for (let b = 0; b < nSeq; b++) {
      const s0 = start[b];
      const T = start[b + 1] - s0;
      if (rope) {
        const simd = rt.simd!;
        const rowB = qkvDim * 4;
        for (let h = 0; h < H_; h++) {
          simd.rope(
            (dq0 + s0 * qDim + h * T * dh) << 2,
            dh * 4,
            (out0 + s0 * qkvDim + h * dh) << 2,
            rowB,
            T,
            dh,
            rope.cos,
            rope.sinInv,
            scale,
          );
        }
        for (let gg = 0; gg < Hkv; gg++) {
          simd.rope(
            (dk0 + s0 * kvDim + gg * T * dh) << 2,
            dh * 4,
            (out0 + s0 * qkvDim + qDim + gg * dh) << 2,
            rowB,
            T,
            dh,
            rope.cos,
            rope.sinInv,
            1,
          );
          const vsrc0 = dv0 + s0 * kvDim + gg * T * dh;
          const vdst0 = out0 + s0 * qkvDim + qDim + kvDim + gg * dh;
          if (dh % 4 === 0) simd.copy_rows(vsrc0 << 2, dh * 4, vdst0 << 2, qkvDim * 4, T, dh * 4);
          else for (let i = 0; i < T; i++) H.copyWithin(vdst0 + i * qkvDim, vsrc0 + i * dh, vsrc0 + (i + 1) * dh);
        }
        continue;
      }
      for (let i = 0; i < T; i++) {
        const row = out0 + (s0 + i) * qkvDim;
        const ro = i * half;
        for (let h = 0; h < H_; h++) {
          const src = dq0 + s0 * qDim + (h * T + i) * dh;
          const dst = row + h * dh;
          for (let e = 0; e < half; e++) {
            const a = H[src + 2 * e];
            const bb = H[src + 2 * e + 1];
            const cs = cos[ro + e];
            const sn = sin[ro + e];
            H[dst + 2 * e] = (a * cs + bb * sn) * scale;
            H[dst + 2 * e + 1] = (-a * sn + bb * cs) * scale;
          }
        }
        for (let gg = 0; gg < Hkv; gg++) {
          const src = dk0 + s0 * kvDim + (gg * T + i) * dh;
          const dst = row + qDim + gg * dh;
          for (let e = 0; e < half; e++) {
            const a = H[src + 2 * e];
            const bb = H[src + 2 * e + 1];
            const cs = cos[ro + e];
            const sn = sin[ro + e];
            H[dst + 2 * e] = a * cs + bb * sn;
            H[dst + 2 * e + 1] = -a * sn + bb * cs;
          }
          const vsrc = dv0 + s0 * kvDim + (gg * T + i) * dh;
          const vdst = row + qDim + kvDim + gg * dh;
          for (let e = 0; e < dh; e++) H[vdst + e] = H[vsrc + e];
        }
      }
    }
  }
}
