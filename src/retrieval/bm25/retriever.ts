/**
 * The BM25 {@link Retriever}: analyzer + engine + passage store. Engines: "postings" (exact, document-at-a-time over
 * the postings persisted at build time), "lancedb" (LanceDB FTS on disk, for indexes built with `--engine lance`; the
 * optional LanceDB package is loaded only then), "memory" (the exact term-at-a-time scorer, rebuilt at open from the
 * postings, or from LanceDB's stored terms in indexes that only have those).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Passage } from "../../util/types.js";
import { mapLimit } from "../../util/concurrency.js";
import type { Retriever, RetrieverInfo, SearchOptions } from "../types.js";
import type { PassageStore } from "../store.js";
import { Analyzer, type AnalyzerConfig } from "./analyzer.js";
import { Bm25MemoryBuilder, type Bm25MemoryIndex, type ScoredRow } from "./memory.js";
import { hasLanceTable, LanceFtsEngine } from "./lance.js";
import { PostingsIndex } from "./postings.js";
import { POSTINGS_DIR, POSTINGS_HEADER } from "./postings-format.js";

export type Bm25EngineName = "lancedb" | "memory" | "postings";

export interface Bm25Engine {
  readonly name: Bm25EngineName;
  readonly size: number;
  search(terms: readonly string[], k: number): Promise<ScoredRow[]>;
  /** In-process engines answer synchronously (no promise per query). */
  searchSync?(terms: readonly string[], k: number): ScoredRow[];
  close(): void;
}

/** An index held in this process that answers synchronously: the exact scorers ("memory", "postings"). */
export interface InProcessBm25Index {
  readonly size: number;
  search(terms: readonly string[], k: number): ScoredRow[];
}

export class InProcessEngine<I extends InProcessBm25Index = InProcessBm25Index> implements Bm25Engine {
  constructor(
    readonly name: "memory" | "postings",
    readonly index: I,
  ) {}
  get size(): number {
    return this.index.size;
  }
  async search(terms: readonly string[], k: number): Promise<ScoredRow[]> {
    return this.index.search(terms, k);
  }
  searchSync(terms: readonly string[], k: number): ScoredRow[] {
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
  /**
   * "auto" (default): "postings" when the index has persisted postings (any size); otherwise, for indexes built before
   * them, the in-memory scorer up to `memoryMaxPassages` and LanceDB above.
   */
  engine?: "auto" | Bm25EngineName;
  /** Default 100 000 (the exact scorer is rebuilt from the stored terms at open: about 8 s per 100 k passages). */
  memoryMaxPassages?: number;
  /** Whether the index has postings (from its manifest); default: whether `postings/postings.json` exists. */
  hasPostings?: boolean;
}

/** Open the BM25 engine of an index's `bm25/` folder. */
export async function openBm25Engine(dir: string, size: number, opts: OpenBm25EngineOptions = {}): Promise<Bm25Engine> {
  const want = opts.engine ?? "auto";
  const postingsDir = path.join(dir, POSTINGS_DIR);
  const hasPostings = opts.hasPostings ?? existsSync(path.join(postingsDir, POSTINGS_HEADER));
  if (want === "postings" || (want === "auto" && hasPostings)) {
    if (!hasPostings)
      throw new Error(
        `${dir}: this index has no BM25 postings (built before the "postings" engine existed, or without them); rebuild it with \`searchrl index build\` or choose the engine auto, memory or lancedb`,
      );
    return new InProcessEngine("postings", PostingsIndex.open(postingsDir));
  }
  // The exact term-at-a-time scorer: from the postings when the index has them (no LanceDB needed).
  if (want === "memory" && hasPostings)
    return new InProcessEngine("memory", PostingsIndex.open(postingsDir).toMemoryIndex());
  if (!hasLanceTable(dir))
    throw new Error(
      `${dir}: this index has no LanceDB table (built with the default "postings" engine); use the engine auto or postings, or rebuild it with \`searchrl index build --bm25 --engine lance\``,
    );
  const fts = await LanceFtsEngine.open(dir);
  const useMemory = want === "memory" || (want === "auto" && size <= (opts.memoryMaxPassages ?? 100_000));
  if (!useMemory) return new LanceEngine(fts);
  // Rebuild the exact scorer from the stored terms (rows arrive in storage order; place them by row number).
  const docs: string[] = new Array(fts.size);
  for await (const { row, tok } of fts.scanTerms()) docs[row] = tok;
  fts.close();
  const b = new Bm25MemoryBuilder();
  for (let i = 0; i < docs.length; i++) b.add(docs[i] ? docs[i].split(" ") : []);
  return new InProcessEngine("memory", b.finish());
}

/** Build an in-memory BM25 engine directly from term lists (no files; used by tests and benchmarks). */
export function memoryBm25Engine(index: Bm25MemoryIndex): Bm25Engine {
  return new InProcessEngine("memory", index);
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
    readonly engine: Bm25Engine,
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
    const engine = this.engine;
    if (engine.searchSync) {
      // Synchronous scoring; yield to the event loop every few milliseconds so a large batch does not block it.
      const out: Passage[][] = [];
      let t = performance.now();
      for (const q of queries) {
        opts.signal?.throwIfAborted();
        out.push(toPassages(engine.searchSync(this.analyzer.terms(q), k)));
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
