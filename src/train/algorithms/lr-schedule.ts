/**
 * Learning-rate schedules (as the HF/OpenRLHF schedulers define them). `step` is the number of optimizer steps
 * already taken, so the first update uses `lrAt(0)` — with warmup that is 0, as in the upstream scheduler.
 *   - `cosine_with_min_lr`: linear warmup over ceil(ratio·total) steps, then a half cosine from lr to minLrRatio·lr
 *     (upstream: min_lr = 0.1·lr); steps past `totalSteps` stay at the minimum.
 *   - `constant`: linear warmup, then lr.
 */
export type LrScheduleName = "cosine_with_min_lr" | "constant";

export const LR_SCHEDULES: readonly LrScheduleName[] = ["cosine_with_min_lr", "constant"];

export interface LrScheduleOptions {
  name: LrScheduleName;
  lr: number;
  totalSteps: number;
  warmupRatio?: number;
  /** Default 0.1. */
  minLrRatio?: number;
}

export function warmupSteps(totalSteps: number, warmupRatio = 0): number {
  return Math.ceil(Math.max(0, totalSteps) * Math.max(0, warmupRatio));
}

/** Multiplier of the peak learning rate at optimizer step `step` (0-based). */
export function lrFactor(step: number, opts: Omit<LrScheduleOptions, "lr">): number {
  const warm = warmupSteps(opts.totalSteps, opts.warmupRatio);
  if (step < warm) return step / Math.max(1, warm);
  if (opts.name === "constant") return 1;
  if (opts.name === "cosine_with_min_lr") {
    const minRate = opts.minLrRatio ?? 0.1;
    const progress = Math.min(1, (step - warm) / Math.max(1, opts.totalSteps - warm));
    const f = 0.5 * (1 + Math.cos(Math.PI * progress));
    return Math.max(0, f * (1 - minRate) + minRate);
  }
  throw new Error(`unknown lr schedule ${String(opts.name)}`);
}

export function lrAt(step: number, opts: LrScheduleOptions): number {
  return opts.lr * lrFactor(step, opts);
}
