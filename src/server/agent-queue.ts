/**
 * A bounded admission queue for agent requests: at most `concurrency` run at once, at most `maxWaiting` wait;
 * a request that finds both full is refused at once (the server answers 429). A waiting request whose signal aborts
 * (client gone, timeout) leaves the queue without ever running.
 */

export class AgentQueueFullError extends Error {
  constructor(
    readonly active: number,
    readonly waiting: number,
  ) {
    super(`server busy: ${active} request(s) running and ${waiting} waiting; retry later`);
    this.name = "AgentQueueFullError";
  }
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

export class AgentRequestQueue {
  private running = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error(`concurrency must be an integer >= 1, got ${concurrency}`);
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0)
      throw new Error(`queue size must be an integer >= 0, got ${maxWaiting}`);
  }

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Take a slot. Resolves with a release function (call it exactly once; extra calls are ignored). Throws
   * `AgentQueueFullError` when no slot and no queue place is free, and rejects with the signal's reason when the
   * signal aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.maxWaiting)
      return Promise.reject(new AgentQueueFullError(this.running, this.waiters.length));
    return new Promise<() => void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason ?? new Error("aborted"));
      };
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) {
        // The slot passes straight to the next waiter; `running` is unchanged.
        next.cleanup();
        next.resolve(this.releaser());
      } else {
        this.running--;
      }
    };
  }
}
