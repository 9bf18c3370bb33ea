/**
 * Elementwise and reshaping kernels on the WebAssembly heap, written as plain loops over one Float32Array view of the
 * whole heap. Every offset is an ELEMENT offset (byte pointer >> 2). Matmuls go to XNNPACK (runtime.ts); these cover
 * everything else.
 */

import type { SimdKernels } from "./simd.js";

/**
 * dst[c, r] = src[r, c] for a rows x cols matrix: SIMD 4x4 blocks when `simd` (the kernels of the heap `H` views)
 * is given, else tiled loops.
 */
export function transpose(
  H: Float32Array,
  src: number,
  dst: number,
  rows: number,
  cols: number,
  simd: SimdKernels | null = null,
): void {
  const rows4 = rows & ~3;
  const cols4 = cols & ~3;
  if (simd && rows4 > 0 && cols4 > 0) {
    simd.transpose4(src << 2, dst << 2, rows, cols, 0, rows4);
    // Remainders: columns >= cols4 for all rows, rows >= rows4 for columns < cols4.
    for (let r = 0; r < rows; r++) for (let c = cols4; c < cols; c++) H[dst + c * rows + r] = H[src + r * cols + c];
    for (let r = rows4; r < rows; r++) for (let c = 0; c < cols4; c++) H[dst + c * rows + r] = H[src + r * cols + c];
    return;
  }
  transposeJs(H, src, dst, rows, cols);
}

/** Plain-JS {@link transpose}. */
export function transposeJs(H: Float32Array, src: number, dst: number, rows: number, cols: number): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) {
        const s = src + r * cols;
        let d = dst + c0 * rows + r;
        for (let c = c0; c < c1; c++) {
          H[d] = H[s + c];
          d += rows;
        }
      }
    }
  }
}

/** dst[i] += src[i] for n elements. */
export function addInto(H: Float32Array, dst: number, src: number, n: number): void {
  for (let i = 0; i < n; i++) H[dst + i] += H[src + i];
}

/**
 * RMSNorm over rows: y = x * rstd * g with rstd = 1/sqrt(mean(x^2) + eps). Writes rstd per row when `rstd` is given.
 */
export function rmsnorm(
  H: Float32Array,
  x: number,
  g: number,
  y: number,
  rows: number,
  d: number,
  eps: number,
  rstd: Float32Array | null,
): void {
  for (let r = 0; r < rows; r++) {
    const xo = x + r * d;
    let ss = 0;
    for (let i = 0; i < d; i++) {
      const v = H[xo + i];
      ss += v * v;
    }
    const s = 1 / Math.sqrt(ss / d + eps);
    if (rstd) rstd[r] = s;
    const yo = y + r * d;
    for (let i = 0; i < d; i++) H[yo + i] = H[xo + i] * s * H[g + i];
  }
}

/**
 * RMSNorm backward. Given dy, x, rstd, g: dx (+)= rstd * (dy*g) - x * rstd^3 * sum(dy*g*x) / d; dg += sum_rows dy*x*rstd.
 * `accumulate`: add into dx instead of overwriting. `dg` is a heap offset.
 */
export function rmsnormBackward(
  H: Float32Array,
  dy: number,
  x: number,
  rstd: Float32Array,
  g: number,
  dx: number,
  dg: number,
  rows: number,
  d: number,
  accumulate: boolean,
): void {
  for (let r = 0; r < rows; r++) {
    const s = rstd[r];
    const o = r * d;
    let dot = 0;
    for (let i = 0; i < d; i++) {
      const dyi = H[dy + o + i];
      const xi = H[x + o + i];
      dot += dyi * H[g + i] * xi;
      H[dg + i] += dyi * xi * s;
    }
    const k = (s * s * s * dot) / d;
    if (accumulate) {
      for (let i = 0; i < d; i++) H[dx + o + i] += s * H[dy + o + i] * H[g + i] - H[x + o + i] * k;
    } else {
      for (let i = 0; i < d; i++) H[dx + o + i] = s * H[dy + o + i] * H[g + i] - H[x + o + i] * k;
    }
  }
}

/** act[r, j] = silu(gu[r, j]) * gu[r, f + j] for gu of shape [rows, 2f]. */
export function swiglu(H: Float32Array, gu: number, act: number, rows: number, f: number): void {
  for (let r = 0; r < rows; r++) {
    const go = gu + r * 2 * f;
    const ao = act + r * f;
    for (let j = 0; j < f; j++) {
      const a = H[go + j];
      H[ao + j] = (a / (1 + Math.exp(-a))) * H[go + f + j];
    }
  }
}

/** Backward of {@link swiglu}: writes dgu [rows, 2f] from dact [rows, f] and the saved gu. */
export function swigluBackward(H: Float32Array, gu: number, dact: number, dgu: number, rows: number, f: number): void {
  for (let r = 0; r < rows; r++) {
    const go = gu + r * 2 * f;
    const dgo = dgu + r * 2 * f;
    const dao = dact + r * f;
    for (let j = 0; j < f; j++) {
      const a = H[go + j];
      const u = H[go + f + j];
      const sg = 1 / (1 + Math.exp(-a));
      const silu = a * sg;
      const da = H[dao + j];
      H[dgo + j] = da * u * sg * (1 + a * (1 - sg));
      H[dgo + f + j] = da * silu;
    }
  }
}

/** Column sums of a [rows, cols] matrix added into dst [cols]. */
export function colSumInto(H: Float32Array, src: number, dst: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = src + r * cols;
    for (let c = 0; c < cols; c++) H[dst + c] += H[o + c];
  }
}
