/**
 * Cooperative time-slicing for the rollout engine. When hundreds of trajectories become runnable at once (a retrieval
 * batch returns, a run starts), continuing all of them in one event-loop turn would stall timers and I/O for as long
 * as their combined synchronous work takes. `cooperativeYield()` queues the caller; a pump resumes queued callers one by
 * one and hands the event loop back (setImmediate) once a turn has used `sliceMs`, so no turn runs much longer than
 * that while throughput stays the same.
 */

const queue: Array<() => void> = [];
let pumping = false;
let sliceMs = 4;

/** Set the time slice per event-loop turn (ms). */
export function setCooperativeSlice(ms: number): void {
  sliceMs = Math.max(0.5, ms);
}

/** Resolve when it is this caller's turn to run (FIFO). */
export function cooperativeYield(): Promise<void> {
  return new Promise<void>((resolve) => {
    queue.push(resolve);
    if (!pumping) {
      pumping = true;
      setImmediate(pump);
    }
  });
}

function pump(): void {
  const start = performance.now();
  const step = (): void => {
    const next = queue.shift();
    if (!next) {
      pumping = false;
      return;
    }
    next();
    // The resumed caller runs in the microtasks queued ahead of this check; then decide whether to go on.
    queueMicrotask(() => {
      if (queue.length === 0) {
        pumping = false;
        return;
      }
      if (performance.now() - start >= sliceMs) setImmediate(pump);
      else step();
    });
  };
  step();
}
