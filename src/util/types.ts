/** Data shapes shared by every layer. */

/** One retrieved (or corpus) passage. */
export interface Passage {
  /** Corpus id (string, e.g. "1234"). */
  id: string;
  /** Page title (may be empty). */
  title: string;
  /** Passage text without the title. */
  text: string;
  /** Retrieval score (BM25, inner product, RRF, ...), higher is better. */
  score?: number;
  /**
   * The raw corpus line as the upstream R1-Searcher `/queries` server returns it, e.g. `"1234\tTitle   text"` (KILT)
   * or `"12\tTitle: T Text:  abstract"` (HotpotQA abstracts). When absent it is rebuilt as `${id}\t${title}   ${text}`.
   */
  raw?: string;
}
