/** Hybrid retrieval: reciprocal rank fusion (RRF) of any retrievers' result lists. */
import type { Passage } from "../util/types.js";
import type { Retriever, RetrieverInfo, SearchOptions } from "./types.js";

/** The RRF constant used by FlashRAG and the original paper (Cormack et al. 2009). */
export const RRF_K = 60;

export interface FusionOptions {
  /** RRF constant (default 60). */
  k?: number;
  /** Per-list weights (default 1 each). */
  weights?: readonly number[];
  /** Keep the best `limit` passages (default all). */
  limit?: number;
}

/** Identity of a passage across retrievers: its id, else title + text. */
export function passageKey(p: Passage): string {
  return p.id !== "" ? `id:${p.id}` : `tt:${p.title}\u0000${p.text}`;
}

/**
 * Fuse ranked lists: score(d) = Σ_r w_r / (k + rank_r(d)), ranks 1-based; a passage missing from a list gets nothing
 * from it. Ties keep the order of first appearance (list order, then rank). The returned passages carry the fused score.
 */
export function reciprocalRankFusion(lists: readonly (readonly Passage[])[], opts: FusionOptions = {}): Passage[] {
  const k = opts.k ?? RRF_K;
  const acc = new Map<string, { p: Passage; score: number; first: number }>();
  let order = 0;
  lists.forEach((list, li) => {
    const w = opts.weights?.[li] ?? 1;
    const seen = new Set<string>();
    list.forEach((p, rank) => {
      const key = passageKey(p);
      if (seen.has(key)) return; // a duplicate inside one list counts once, at its best rank
      seen.add(key);
      const add = w / (k + rank + 1);
      const cur = acc.get(key);
      if (cur) cur.score += add;
      else acc.set(key, { p, score: add, first: order++ });
    });
  });
  const fused = [...acc.values()].sort((a, b) => b.score - a.score || a.first - b.first);
  const limited = opts.limit === undefined ? fused : fused.slice(0, opts.limit);
  return limited.map(({ p, score }) => ({ ...p, score }));
}

export interface HybridRetrieverOptions extends Omit<FusionOptions, "limit"> {
  /** Candidates taken from each retriever (default max(2k, 20)). */
  depth?: number;
  name?: string;
}

/** A {@link Retriever} that queries several retrievers concurrently and fuses their results with RRF. */
export class HybridRetriever implements Retriever {
  readonly name: string;
  constructor(
    readonly retrievers: readonly Retriever[],
    private readonly opts: HybridRetrieverOptions = {},
  ) {
    if (retrievers.length === 0) throw new Error("HybridRetriever needs at least one retriever");
    this.name = opts.name ?? `hybrid(${retrievers.map((r) => r.name).join(",")})`;
  }

  async search(queries: readonly string[], k: number, opts: SearchOptions = {}): Promise<Passage[][]> {
    const depth = this.opts.depth ?? Math.max(2 * k, 20);
    const all = await Promise.all(this.retrievers.map((r) => r.search(queries, depth, opts)));
    return queries.map((_, qi) =>
      reciprocalRankFusion(
        all.map((res) => res[qi] ?? []),
        { k: this.opts.k, weights: this.opts.weights, limit: k },
      ),
    );
  }

  async info(): Promise<RetrieverInfo> {
    const parts = await Promise.all(this.retrievers.map((r) => r.info()));
    const sizes = parts.map((p) => p.size);
    return {
      kind: "hybrid",
      size: sizes.every((s) => s === sizes[0]) ? sizes[0] : -1,
      rrfK: this.opts.k ?? RRF_K,
      parts,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.retrievers.map((r) => r.close()));
  }
}
