/**
 * On-disk cache for web search: search responses, fetched pages' summaries and final results, keyed by everything
 * that determines them (provider, endpoint, query, count, summarizer model, ...). Repeated evaluation costs nothing.
 *
 * Layout of the cache directory:
 * - `web-cache.jsonl`: one `{"k": key, "v": value}` per line, appended (one write per line); the last line of a key wins.
 * - `usage.json`: cumulative call counters (paid search calls, summary calls, page fetches, cache hits), rewritten
 *   atomically after every change. No API key is ever written.
 */
import { createHash } from "node:crypto";
import { existsSync, promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteJson } from "../../util/fsutil.js";
import { readLines } from "../../util/jsonl.js";

export interface WebUsage {
  /** Search API calls made (cache misses). */
  searchCalls: number;
  /** Of those, calls to paid providers. */
  paidSearchCalls: number;
  /** LLM summarization calls made. */
  summaryCalls: number;
  /** Pages fetched. */
  pageFetches: number;
  /** Lookups answered from the cache. */
  cacheHits: number;
}

export function emptyUsage(): WebUsage {
  return { searchCalls: 0, paidSearchCalls: 0, summaryCalls: 0, pageFetches: 0, cacheHits: 0 };
}

export function cacheKey(parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

export class WebCache {
  private readonly map = new Map<string, unknown>();
  private fh: fsp.FileHandle | null = null;
  /** Counters of this process. */
  readonly session: WebUsage = emptyUsage();
  /** Counters over every run that used this cache directory (null without a directory). */
  readonly total: WebUsage | null;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string | null,
    total: WebUsage | null,
  ) {
    this.total = total;
  }

  /** Open (or create) a cache directory; `null` = in-memory only. */
  static async open(dir: string | null): Promise<WebCache> {
    if (dir === null) return new WebCache(null, null);
    await fsp.mkdir(dir, { recursive: true });
    let total = emptyUsage();
    const usageFile = path.join(dir, "usage.json");
    if (existsSync(usageFile)) {
      try {
        total = { ...total, ...(JSON.parse(await fsp.readFile(usageFile, "utf8")) as Partial<WebUsage>) };
      } catch {
        // a damaged counter file restarts the counts; the cache itself is unaffected
      }
    }
    const c = new WebCache(dir, total);
    const file = path.join(dir, "web-cache.jsonl");
    if (existsSync(file)) {
      for await (const line of readLines(file)) {
        if (!line.trim()) continue;
        try {
          const row = JSON.parse(line) as { k?: unknown; v?: unknown };
          if (typeof row.k === "string") c.map.set(row.k, row.v);
        } catch {
          // a torn last line (crash mid-write) is skipped
        }
      }
    }
    return c;
  }

  get size(): number {
    return this.map.size;
  }

  get<T>(key: string): T | undefined {
    if (!this.map.has(key)) return undefined;
    this.count("cacheHits");
    return this.map.get(key) as T;
  }

  async set(key: string, value: unknown): Promise<void> {
    this.map.set(key, value);
    if (this.dir === null) return;
    const line = JSON.stringify({ k: key, v: value }) + "\n";
    this.writing = this.writing.then(async () => {
      if (!this.fh) this.fh = await fsp.open(path.join(this.dir!, "web-cache.jsonl"), "a");
      await this.fh.write(line);
    });
    await this.writing;
  }

  /** Count an event in the session and cumulative counters. */
  count(what: keyof WebUsage, n = 1): void {
    this.session[what] += n;
    if (this.total) {
      this.total[what] += n;
      if (what !== "cacheHits") this.saveUsageSoon();
    }
  }

  private usageTimer: NodeJS.Timeout | null = null;
  private saveUsageSoon(): void {
    if (this.usageTimer || this.dir === null) return;
    this.usageTimer = setTimeout(() => {
      this.usageTimer = null;
      void this.saveUsage();
    }, 50);
    this.usageTimer.unref?.();
  }

  async saveUsage(): Promise<void> {
    if (this.dir === null || !this.total) return;
    await atomicWriteJson(path.join(this.dir, "usage.json"), this.total);
  }

  async close(): Promise<void> {
    if (this.usageTimer) {
      clearTimeout(this.usageTimer);
      this.usageTimer = null;
    }
    await this.writing;
    await this.saveUsage();
    if (this.fh) await this.fh.close();
    this.fh = null;
  }
}
