/** One interface for every search engine: batch of queries in, top-k passages per query out (best first). */
import type { Passage } from "../util/types.js";

export interface RetrieverInfo {
  /** "bm25", "dense", "hybrid", "remote", "web:serper", ... */
  kind: string;
  /** Number of passages indexed (-1 when unknown, e.g. web search). */
  size: number;
  [key: string]: unknown;
}

export interface SearchOptions {
  signal?: AbortSignal;
}

export interface Retriever {
  readonly name: string;
  search(queries: readonly string[], k: number, opts?: SearchOptions): Promise<Passage[][]>;
  info(): Promise<RetrieverInfo>;
  close(): Promise<void>;
}
