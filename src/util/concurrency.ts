/** Concurrency helpers: a counting semaphore and a bounded parallel map. */

export class Semaphore {
  private waiters: Array<() => void> = [];
  private active = 0;
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new Error(`Semaphore limit must be >= 1, got ${limit}`);
  }
  get inFlight(): number {
    return this.active;
  }
  get queued(): number {
    return this.waiters.length;
  }
  async acquire(): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
      return () => this.release();
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.active++;
    return () => this.release();
  }
  private release(): void {
    this.active--;
    const next = this.waiters.shift();
    if (next) next();
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Map over items with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}
