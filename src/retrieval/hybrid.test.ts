import { describe, expect, it } from "vitest";
import type { Passage } from "../util/types.js";
import type { Retriever, RetrieverInfo } from "./types.js";
import { HybridRetriever, reciprocalRankFusion } from "./hybrid.js";

const P = (id: string, score = 0): Passage => ({ id, title: `T${id}`, text: `text ${id}`, score });

describe("reciprocal rank fusion", () => {
  it("sums 1/(k + rank) over lists (k = 60, 1-based ranks)", () => {
    const fused = reciprocalRankFusion([
      [P("a"), P("b"), P("c")],
      [P("c"), P("a"), P("d")],
    ]);
    const s = (ranks: number[]) => ranks.reduce((acc, r) => acc + 1 / (60 + r), 0);
    expect(fused.map((p) => p.id)).toEqual(["a", "c", "b", "d"]);
    expect(fused[0].score).toBeCloseTo(s([1, 2]), 12);
    expect(fused[1].score).toBeCloseTo(s([3, 1]), 12);
    expect(fused[2].score).toBeCloseTo(s([2]), 12);
    expect(fused[3].score).toBeCloseTo(s([3]), 12);
  });
  it("honours k, weights, limit; a duplicate inside a list counts once; ties keep first appearance", () => {
    const fused = reciprocalRankFusion([[P("x"), P("y"), P("x")], [P("z")]], { k: 1, weights: [1, 2], limit: 2 });
    expect(fused.map((p) => [p.id, p.score])).toEqual([
      ["z", 1],
      ["x", 0.5],
    ]);
    expect(reciprocalRankFusion([[P("p")], [P("q")]]).map((p) => p.id)).toEqual(["p", "q"]);
    expect(reciprocalRankFusion([])).toEqual([]);
  });
});

/** A fixed in-process retriever (deterministic ranked lists per query), to test fusion plumbing. */
class FixedRetriever implements Retriever {
  calls: number[] = [];
  constructor(
    readonly name: string,
    private readonly table: Record<string, Passage[]>,
  ) {}
  async search(queries: readonly string[], k: number): Promise<Passage[][]> {
    this.calls.push(k);
    return queries.map((q) => (this.table[q] ?? []).slice(0, k));
  }
  async info(): Promise<RetrieverInfo> {
    return { kind: "fixed", size: 10 };
  }
  async close(): Promise<void> {}
}

describe("HybridRetriever", () => {
  it("queries every retriever with a deeper list and fuses per query", async () => {
    const a = new FixedRetriever("a", { q1: [P("1"), P("2"), P("3")], q2: [P("9")] });
    const b = new FixedRetriever("b", { q1: [P("3"), P("4")], q2: [] });
    const h = new HybridRetriever([a, b]);
    const res = await h.search(["q1", "q2", "q3"], 2);
    expect(res.map((l) => l.map((p) => p.id))).toEqual([["3", "1"], ["9"], []]);
    expect(a.calls).toEqual([20]);
    expect(await h.info()).toMatchObject({ kind: "hybrid", size: 10, rrfK: 60 });
    expect(() => new HybridRetriever([])).toThrow(/at least one/);
  });
});
