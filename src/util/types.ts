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

/** A tokenizer as every layer sees it (HF tokenizer.json loaders and our own BPE implement it). */
export interface Tokenizer {
  /** Encode raw text (no BOS/EOS added). */
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  /** Ids that end generation (EOS, end-of-turn...). */
  readonly eosTokenIds: readonly number[];
}
