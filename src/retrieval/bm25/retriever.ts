/** The BM25 {@link Retriever}: analyzer + engine (LanceDB FTS on disk, or the exact in-memory scorer) + passage store. */
import type { Passage } from "../../util/types.js";
import { mapLimit } from "../../util/concurrency.js";
import type { Retriever, RetrieverInfo, SearchOptions } from "../types.js";
import type { PassageStore } from "../store.js";
import { Analyzer, type AnalyzerConfig } from "./analyzer.js";
import { Bm25MemoryBuilder, type Bm25MemoryIndex, type ScoredRow } from "./memory.js";
import { LanceFtsEngine } from "./lance.js";

export type Bm25EngineName = "lancedb" | "memory";

export interface Bm25Engine {
  readonly name: Bm25EngineName;
  readonly size: number;
  search(terms: readonly string[], k: number): Promise<ScoredRow[]>;
  close(): void;
}

class MemoryEngine implements Bm25Engine {
  readonly name = "memory" as const;
  constructor(readonly index: Bm25MemoryIndex) {}
  get size(): number {
    return this.index.size;
  }
  async search(terms: readonly string[], k: number): Promise<ScoredRow[]> {
    return this.index.search(terms, k);
  }
  close(): void {}
}

class LanceEngine implements Bm25Engine {
  readonly name = "lancedb" as const;
  constructor(readonly fts: LanceFtsEngine) {}
  get size(): number {
    return this.fts.size;
  }
  search(terms: readonly string[], k: number): Promise<ScoredRow[]> {
    return this.fts.search(terms, k);
  }
  close(): void {
    this.fts.close();
  }
}

export interface OpenBm25EngineOptions {
  /** "auto" (default): in memory up to `memoryMaxPassages`, else LanceDB. */
  engine?: "auto" | Bm25EngineName;
  /** Default 100 000 (the exact scorer is rebuilt from the stored terms at open: about 8 s per 100 k passages). */
  memoryMaxPassages?: number;
}

/** Open the BM25 engine of an index's `bm25/` folder. */
export async function openBm25Engine(dir: string, size: number, opts: OpenBm25EngineOptions = {}): Promise<Bm25Engine> {
  const want = opts.engine ?? "auto";
  const fts = await LanceFtsEngine.open(dir);
  const useMemory = want === "memory" || (want === "auto" && size <= (opts.memoryMaxPassages ?? 100_000));
  if (!useMemory) return new LanceEngine(fts);
  // Rebuild the exact scorer from the stored terms (rows arrive in storage order; place them by row number).
  const docs: string[] = new Array(fts.size);
  for await (const { row, tok } of fts.scanTerms()) docs[row] = tok;
  fts.close();
  const b = new Bm25MemoryBuilder();
  for (let i = 0; i < docs.length; i++) b.add(docs[i] ? docs[i].split(" ") : []);
  return new MemoryEngine(b.finish());
}

/** Build an in-memory BM25 engine directly from term lists (no files; used by tests and benchmarks). */
export function memoryBm25Engine(index: Bm25MemoryIndex): Bm25Engine {
  return new MemoryEngine(index);
}

export interface Bm25RetrieverOptions {
  name?: string;
  /** Concurrent LanceDB queries per batch (default 8). */
  concurrency?: number;
}

export class Bm25Retriever implements Retriever {
  readonly name: string;
  readonly analyzer: Analyzer;
  constructor(
    private readonly engine: Bm25Engine,
    private readonly store: PassageStore,
    analyzer: AnalyzerConfig,
    private readonly opts: Bm25RetrieverOptions = {},
  ) {
    this.analyzer = new Analyzer(analyzer);
    this.name = opts.name ?? `bm25:${engine.name}`;
  }

  async search(queries: readonly string[], k: number, opts: SearchOptions = {}): Promise<Passage[][]> {
    const toPassages = (rows: ScoredRow[]): Passage[] =>
      rows.map((r) => ({ ...this.store.get(r.row), score: r.score }));
    if (this.engine.name === "memory") {
      // Synchronous scoring; yield to the event loop every few milliseconds so a large batch does not block it.
      const out: Passage[][] = [];
      let t = performance.now();
      for (const q of queries) {
        opts.signal?.throwIfAborted();
        out.push(toPassages(await this.engine.search(this.analyzer.terms(q), k)));
        if (performance.now() - t > 4) {
          await new Promise((r) => setImmediate(r));
          t = performance.now();
        }
      }
      return out;
    }
    return mapLimit(queries, this.opts.concurrency ?? 8, async (q) => {
      opts.signal?.throwIfAborted();
      return toPassages(await this.engine.search(this.analyzer.terms(q), k));
    });
  }

  async info(): Promise<RetrieverInfo> {
    return { kind: "bm25", size: this.store.size, engine: this.engine.name, analyzer: this.analyzer.config };
  }

  async close(): Promise<void> {
    this.engine.close();
    this.store.close();
  }
}
