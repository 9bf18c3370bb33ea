/**
 * Causal self-attention of one sequence (all heads), forward and backward, as batched products on the compute
 * engine (`rt.bgemm`: one call per product for all kv groups of the sequence).
 *
 * Layouts (float32, row-major, byte pointers into the heap): q, o and their gradients [Hkv][rep·T][dh] (the rep query
 * heads that share kv head g are stacked, so row r of group g is position r mod T); k, v [Hkv][T][dh]; the kept
 * probabilities p [Hkv][rep·T][T] with exact zeros right of the diagonal. q is pre-scaled by 1/sqrt(dh).
 *
 * The full T × T square is computed and masked. Query blocks that skip the masked triangle were measured and lost
 * here: at head width 32 a product's cost is dominated by its fixed part (call, packing, output tiles), so four
 * smaller products cost more than one full one (docs/model.md, "Measurements").
 */
import { tick, tock } from "./profile.js";
import type { WasmRuntime } from "./runtime.js";

/** Shape of one sequence's attention. */
export interface AttentionShape {
  T: number;
  dh: number;
  /** kv heads and query heads per kv head. */
  Hkv: number;
  rep: number;
}

/** Floats of one sequence's probabilities. */
export function attentionProbFloats(s: AttentionShape): number {
  return s.Hkv * s.rep * s.T * s.T;
}

/** o = softmax(q kᵀ, causal) v for every head; keeps the probabilities at p. */
export function attentionForward(
  rt: WasmRuntime,
  q: number,
  k: number,
  v: number,
  o: number,
  p: number,
  s: AttentionShape,
): void {
  const { T, dh, Hkv, rep } = s;
  const rows = rep * T;
  let t0 = tick();
  rt.bgemm(q, k, p, Hkv, rows, dh, T, false, true);
  tock("mm.attn", t0);
  t0 = tick();
  const H = rt.f32();
  const p0 = p >> 2;
  for (let r = 0; r < Hkv * rows; r++) {
    const i = r % T;
    if (i + 1 < T) H.fill(-1e30, p0 + r * T + i + 1, p0 + (r + 1) * T);
  }
  rt.softmaxRows(p, p, Hkv * rows, T);
  tock("softmax", t0);
  t0 = tick();
  rt.bgemm(p, v, o, Hkv, rows, T, dh, false, false);
  tock("mm.attn", t0);
}

/** Softmax backward over full rows, in place on dp: dp = p * (dp - rowsum(dp * p)). */
function softmaxBackwardRows(H: Float32Array, p: number, dp: number, rows: number, w: number): void {
  for (let r = 0; r < rows; r++) {
    const po = p + r * w;
    const o = dp + r * w;
    let dot = 0;
    for (let j = 0; j < w; j++) dot += H[o + j] * H[po + j];
    for (let j = 0; j < w; j++) H[o + j] = H[po + j] * (H[o + j] - dot);
  }
}

/**
 * Backward of {@link attentionForward} given dO: writes dQ, dK and dV (overwritten; the query heads of a kv group
 * sum into its dK/dV through the stacked rows). `scratch` holds {@link attentionProbFloats} floats.
 */
export function attentionBackward(
  rt: WasmRuntime,
  q: number,
  k: number,
  v: number,
  p: number,
  dO: number,
  dQ: number,
  dK: number,
  dV: number,
  scratch: number,
  s: AttentionShape,
): void {
  const { T, dh, Hkv, rep } = s;
  const rows = rep * T;
  let t0 = tick();
  rt.bgemm(dO, v, scratch, Hkv, rows, dh, T, false, true); // dP = dO vᵀ
  rt.bgemm(p, dO, dV, Hkv, T, rows, dh, true, false); // dv = Pᵀ dO
  tock("mm.attn", t0);
  t0 = tick();
  if (T % 4 === 0 && rt.simd) rt.simd.softmax_bwd(p, scratch, Hkv * rows, T);
  else softmaxBackwardRows(rt.f32(), p >> 2, scratch >> 2, Hkv * rows, T);
  tock("bwd.softmax", t0);
  t0 = tick();
  rt.bgemm(scratch, k, dQ, Hkv, rows, T, dh, false, false); // dq = dS k
  rt.bgemm(scratch, q, dK, Hkv, T, rows, dh, true, false); // dk = dSᵀ q
  tock("mm.attn", t0);
}
