/**
 * A tiny in-memory retriever for engine tests: scores passages by the number of query words they contain and records
 * every call (to check batching). Optional per-query failures exercise error handling.
 */
import type { Retriever, RetrieverInfo, SearchOptions } from "../../retrieval/types.js";
import type { Passage } from "../../util/types.js";

export class KeywordRetriever implements Retriever {
  readonly name = "keyword-test";
  readonly calls: string[][] = [];
  /** Throw for a query while this returns true (e.g. count down to fail the first N attempts). */
  failWhen: (query: string) => boolean = () => false;
  delayMs = 0;
  readonly passages: Passage[];
  constructor(passages: Passage[]) {
    this.passages = [...passages];
  }
  async search(queries: readonly string[], k: number, opts?: SearchOptions): Promise<Passage[][]> {
    this.calls.push([...queries]);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (opts?.signal?.aborted) throw opts.signal.reason;
    for (const q of queries) if (this.failWhen(q)) throw new Error(`retriever failed for "${q}"`);
    return queries.map((q) => {
      const words = q.toLowerCase().split(/\W+/).filter(Boolean);
      return this.passages
        .map((p) => ({ p, s: words.filter((w) => `${p.title} ${p.text}`.toLowerCase().includes(w)).length }))
        .filter((x) => x.s > 0)
        .sort((a, b) => b.s - a.s)
        .slice(0, k)
        .map((x) => ({ ...x.p, score: x.s }));
    });
  }
  async info(): Promise<RetrieverInfo> {
    return { kind: "keyword-test", size: this.passages.length };
  }
  async close(): Promise<void> {}
}
