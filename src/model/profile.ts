/** Section timings of the model passes (off by default; see {@link modelProfile}). */

const prof: Record<string, number> = {};
let profOn = false;
let profCpu = false;

/**
 * Enable/disable section timings of the model passes; returns and resets the collected milliseconds. `clock: "cpu"`
 * measures this process's CPU time instead of wall time (steadier on a shared machine, slightly more overhead).
 */
export function modelProfile(enable?: boolean, clock: "wall" | "cpu" = "wall"): Record<string, number> {
  if (enable !== undefined) {
    profOn = enable;
    profCpu = clock === "cpu";
  }
  const out = { ...prof };
  for (const k of Object.keys(prof)) delete prof[k];
  return out;
}

/** Start of a timed section (0 when profiling is off). */
export function tick(): number {
  if (!profOn) return 0;
  if (profCpu) {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  }
  return performance.now();
}

/** End of a timed section started with {@link tick}. */
export function tock(name: string, t0: number): void {
  if (profOn) prof[name] = (prof[name] ?? 0) + tick() - t0;
}
