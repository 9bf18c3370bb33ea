/** The dense {@link Retriever}: query encoder (ONNX) + vector index (flat / ivf-sq8) + passage store. */
import type { Passage } from "../../util/types.js";
import type { Retriever, RetrieverInfo, SearchOptions } from "../types.js";
import type { PassageStore } from "../store.js";
import type { TextEmbedder } from "./encoder.js";
import type { VectorIndex, VectorSearchOptions } from "./vector-index.js";

export class DenseRetriever implements Retriever {
  readonly name: string;
  constructor(
    private readonly embedder: TextEmbedder,
    private readonly index: VectorIndex,
    private readonly store: PassageStore,
    private readonly searchOpts: VectorSearchOptions = {},
    name?: string,
  ) {
    this.name = name ?? `dense:${embedder.config.preset}`;
    if (embedder.dim !== index.meta.dim)
      throw new Error(
        `encoder output has ${embedder.dim} dimensions but the index was built with ${index.meta.dim}: use the model the index was built with`,
      );
  }

  async search(queries: readonly string[], k: number, opts: SearchOptions = {}): Promise<Passage[][]> {
    if (queries.length === 0) return [];
    // Encoding runs in ONNX Runtime's thread (async); the index scan is ~1 ms per query and yields between queries.
    const vecs = await this.embedder.embedQueries(queries, { signal: opts.signal });
    const dim = this.embedder.dim;
    const out: Passage[][] = [];
    let t = performance.now();
    for (let i = 0; i < queries.length; i++) {
      opts.signal?.throwIfAborted();
      const rows = this.index.search(vecs.subarray(i * dim, (i + 1) * dim), k, this.searchOpts);
      out.push(rows.map((r) => ({ ...this.store.get(r.row), score: r.score })));
      if (performance.now() - t > 4) {
        await new Promise((r) => setImmediate(r));
        t = performance.now();
      }
    }
    return out;
  }

  async info(): Promise<RetrieverInfo> {
    return {
      kind: "dense",
      size: this.store.size,
      encoder: this.embedder.config,
      dim: this.embedder.dim,
      index: this.index.meta,
    };
  }

  async close(): Promise<void> {
    await this.embedder.close();
    this.index.close();
    this.store.close();
  }
}
