/**
 * Micro-batching: calls from concurrent trajectories are collected for a short window and sent as one batch
 * (retrieval: one `Retriever.search` with many queries; generation: one `generateBatch`). A batch is sent when it is
 * full, when the caller's `ready` hint says nobody else can join soon, or when the window expires.
 */

export interface MicroBatcherOptions {
  /** Most items per batch. */
  maxBatch: number;
  /** Longest wait for more items, ms (0 = until the current event-loop turn ends). */
  maxWaitMs: number;
  /** Return true when `pending` items are all that can arrive soon (flush without waiting). */
  ready?: (pending: number) => boolean;
  /**
   * Batches in flight at once (default: unlimited). While the limit is reached, new items queue up and go out together
   * when a batch returns: the batch size adapts to the load.
   */
  maxInFlight?: number;
}

interface Pending<Q, R> {
  item: Q;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class MicroBatcher<Q, R> {
  private queue: Array<Pending<Q, R>> = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private timerIsImmediate = false;
  private inFlight = 0;
  /** Batches sent and items in them (for statistics). */
  batches = 0;
  items = 0;

  constructor(
    private readonly runBatch: (items: Q[]) => Promise<R[]>,
    private readonly opts: MicroBatcherOptions,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  submit(item: Q, signal?: AbortSignal): Promise<R> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
    return new Promise<R>((resolve, reject) => {
      const p: Pending<Q, R> = { item, resolve, reject, signal };
      if (signal) {
        p.onAbort = () => {
          const i = this.queue.indexOf(p);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(signal.reason ?? new Error("aborted"));
          }
        };
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.schedule();
    });
  }

  /** Re-check the flush condition (call when the `ready` hint may have changed). */
  poke(): void {
    if (this.queue.length > 0) this.schedule();
  }

  private schedule(): void {
    if (this.inFlight >= (this.opts.maxInFlight ?? Infinity)) return; // the returning batch reschedules
    const n = this.queue.length;
    if (n >= this.opts.maxBatch || (this.opts.ready?.(n) ?? false)) {
      // Flush at the end of this turn so calls made in the same turn still join.
      if (this.timer && !this.timerIsImmediate) {
        clearTimeout(this.timer as NodeJS.Timeout);
        this.timer = null;
      }
      if (!this.timer) {
        this.timerIsImmediate = true;
        this.timer = setImmediate(() => this.flush());
      }
      return;
    }
    if (this.timer) return;
    if (this.opts.maxWaitMs <= 0) {
      this.timerIsImmediate = true;
      this.timer = setImmediate(() => this.flush());
    } else {
      this.timerIsImmediate = false;
      this.timer = setTimeout(() => this.flush(), this.opts.maxWaitMs);
    }
  }

  private flush(): void {
    this.timer = null;
    while (this.queue.length > 0 && this.inFlight < (this.opts.maxInFlight ?? Infinity)) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      for (const p of batch) if (p.signal && p.onAbort) p.signal.removeEventListener("abort", p.onAbort);
      this.batches++;
      this.items += batch.length;
      this.inFlight++;
      let out: Promise<R[]>;
      try {
        out = this.runBatch(batch.map((p) => p.item));
      } catch (err) {
        out = Promise.reject(err);
      }
      const done = (): void => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
      };
      out.then(
        (results) => {
          done();
          if (results.length !== batch.length) {
            const err = new Error(`batch returned ${results.length} results for ${batch.length} items`);
            for (const p of batch) p.reject(err);
            return;
          }
          batch.forEach((p, i) => p.resolve(results[i]));
        },
        (err) => {
          done();
          for (const p of batch) p.reject(err);
        },
      );
    }
  }
}
