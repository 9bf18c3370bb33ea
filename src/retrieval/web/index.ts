/**
 * Online search as a `Retriever` (`web:PROVIDER` specs). Three pipelines:
 *
 * - "paper" (R1-Searcher's online evaluation, r1-searcher.md §2.4): search `query + " site:en.wikipedia.org"`, take
 *   the first 3 hits in order, fetch each page (Wikipedia through the MediaWiki API, other pages as HTML text), cut it
 *   to 35,000 characters, summarize it with an LLM (exact SUMMARY_PROMPT, `[Exacted Content]` parsing) and stop at the
 *   first summary that does not contain "none"; the result is ONE passage holding the summary (render it with the
 *   r1-searcher protocol's online document style). Upstream crash bugs are fixed: a failed search or page fetch counts
 *   as "no content" instead of aborting the run (docs/web-search.md).
 * - "snippets": the provider's top-k hits as passages (title + snippet).
 * - "pages": the top-k pages fetched and cut to `maxPageChars` (snippet when a fetch fails).
 *
 * Everything goes through an on-disk cache (search responses, summaries, final results) with call counters, so a
 * repeated evaluation makes no paid call. Keys come from the environment and never reach logs, errors or results.
 */
import { onlineSearchQuery, summaryLooksEmpty } from "../../protocol/index.js";
import type { Passage } from "../../util/types.js";
import type { Retriever, RetrieverInfo, SearchOptions } from "../types.js";
import { WebCache, cacheKey, type WebUsage } from "./cache.js";
import { fetchPageText, type PageFetchOptions } from "./fetch-page.js";
import {
  createWebProvider,
  WEB_PROVIDERS,
  type WebHit,
  type WebProvider,
  type WebProviderName,
  type WebProviderOptions,
} from "./providers.js";
import { createSummarizer, type Summarizer, type SummarizerOptions } from "./summarize.js";

export type WebPipeline = "paper" | "snippets" | "pages";

export interface WebRetrieverOptions {
  /** Provider endpoint / key / timeouts. */
  provider?: WebProviderOptions;
  /** Default: "paper" when a summarizer is configured, else "snippets". */
  pipeline?: WebPipeline;
  /** Appended to every search query. Default: " site:en.wikipedia.org" for "paper", none otherwise. */
  siteSuffix?: string;
  /** The summarization LLM (needed by "paper"). */
  summarizer?: SummarizerOptions | Summarizer;
  /** Hits to try in "paper" (upstream 3). */
  pagesPerQuery?: number;
  /** Hits requested from the provider in "paper" (default 10, the providers' default page). */
  searchCount?: number;
  /** Page text given to the summarizer, characters (upstream 35,000). */
  maxSummaryInputChars?: number;
  /** Passage length in "pages", characters (default 2,000). */
  maxPageChars?: number;
  /**
   * How a summary is rejected in "paper": "upstream" = its lower-cased text contains "none" anywhere (so
   * "nonetheless" is rejected too), "word" = it is "None" or contains the word "none".
   */
  noneTest?: "upstream" | "word";
  fetch?: PageFetchOptions;
  /** Cache directory (null / undefined = in-memory for this process only). */
  cacheDir?: string | null;
  /** Queries of one `search` call processed at once (default 4). */
  concurrency?: number;
}

export interface WebRetriever extends Retriever {
  readonly provider: WebProviderName;
  readonly pipeline: WebPipeline;
  /** Call counters of this process and, with a cache directory, over all runs. */
  usage(): Promise<{ session: WebUsage; total: WebUsage | null }>;
}

function wordNone(s: string): boolean {
  const t = s.trim().toLowerCase();
  return t === "none" || /(?<![\p{L}\p{N}_])none(?![\p{L}\p{N}_])/u.test(t);
}

function isSummarizer(x: SummarizerOptions | Summarizer): x is Summarizer {
  return typeof (x as Summarizer).summarize === "function";
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

/** A web-search retriever for `provider` ("serper", "brave", "tavily", "searxng"). */
export function createWebRetriever(provider: WebProviderName | string, opts: WebRetrieverOptions = {}): WebRetriever {
  if (!(WEB_PROVIDERS as readonly string[]).includes(provider)) {
    throw new Error(`unknown web search provider "${provider}" (expected one of ${WEB_PROVIDERS.join(", ")})`);
  }
  const prov: WebProvider = createWebProvider(provider as WebProviderName, opts.provider);
  const summarizer: Summarizer | null = opts.summarizer
    ? isSummarizer(opts.summarizer)
      ? opts.summarizer
      : createSummarizer(opts.summarizer)
    : null;
  const pipeline: WebPipeline = opts.pipeline ?? (summarizer ? "paper" : "snippets");
  if (pipeline === "paper" && !summarizer)
    throw new Error(`web:${provider} pipeline "paper" needs a summarizer LLM (an OpenAI-compatible chat endpoint)`);
  const suffix = opts.siteSuffix ?? (pipeline === "paper" ? onlineSearchQuery("") : "");
  const pages = opts.pagesPerQuery ?? 3;
  const noneTest = opts.noneTest ?? "upstream";
  const looksEmpty = noneTest === "upstream" ? summaryLooksEmpty : wordNone;
  let cacheP: Promise<WebCache> | null = null;
  const cache = (): Promise<WebCache> => (cacheP ??= WebCache.open(opts.cacheDir ?? null));

  async function searchHits(q: string, count: number, signal?: AbortSignal): Promise<WebHit[]> {
    const c = await cache();
    const key = cacheKey(["search", prov.name, prov.endpoint, q, count]);
    const hit = c.get<WebHit[]>(key);
    if (hit) return hit;
    c.count("searchCalls");
    if (prov.paid) c.count("paidSearchCalls");
    const hits = await prov.search(q, count, signal);
    await c.set(key, hits);
    return hits;
  }

  /** Page text, or null when the fetch failed (a failure is not cached: a later run tries again). */
  async function pageText(url: string, signal?: AbortSignal): Promise<{ title: string; text: string } | null> {
    const c = await cache();
    const key = cacheKey(["page", url]);
    const hit = c.get<{ title: string; text: string }>(key);
    if (hit !== undefined) return hit;
    c.count("pageFetches");
    try {
      const p = await fetchPageText(url, { ...opts.fetch, signal });
      const v = { title: p.title, text: p.text };
      await c.set(key, v);
      return v;
    } catch (err) {
      if (signal?.aborted) throw err;
      // Upstream crashes the whole run here (non-Wikipedia page failing 3 times); we treat it as "no content".
      return null;
    }
  }

  async function summary(query: string, url: string, text: string, signal?: AbortSignal): Promise<string> {
    const c = await cache();
    const key = cacheKey(["summary", summarizer!.model, query, url, text]);
    const hit = c.get<string>(key);
    if (hit !== undefined) return hit;
    c.count("summaryCalls");
    const s = await summarizer!.summarize(query, text, signal);
    await c.set(key, s);
    return s;
  }

  async function one(query: string, k: number, signal?: AbortSignal): Promise<Passage[]> {
    const c = await cache();
    const finalKey = cacheKey([
      "result",
      pipeline,
      prov.name,
      prov.endpoint,
      suffix,
      query,
      k,
      summarizer?.model ?? null,
      pages,
      noneTest,
      opts.maxPageChars ?? 2000,
    ]);
    const cached = c.get<Passage[]>(finalKey);
    if (cached) return cached;
    let result: Passage[];
    /** False when a failure shaped the result: it is returned but not cached, so a later run tries again. */
    let complete = true;
    if (pipeline === "paper") {
      let hits: WebHit[];
      try {
        hits = await searchHits(query + suffix, opts.searchCount ?? 10, signal);
      } catch (err) {
        // Upstream turns any request exception into an empty response (and then crashes on it); we return no content.
        if (signal?.aborted) throw err;
        hits = [];
        complete = false;
      }
      let last: { hit: WebHit; text: string } | null = null;
      for (const h of hits.slice(0, pages)) {
        const page = h.url ? await pageText(h.url, signal) : null;
        if (page === null) complete = false;
        if (page === null || page.text.length === 0) continue;
        const s = await summary(query, h.url, page.text.slice(0, opts.maxSummaryInputChars ?? 35_000), signal);
        last = { hit: h, text: s };
        if (!looksEmpty(s)) break;
      }
      result = last ? [{ id: last.hit.url, title: last.hit.title, text: last.text }] : [];
    } else {
      const hits = await searchHits(query + suffix, k, signal);
      if (pipeline === "snippets") {
        result = hits.slice(0, k).map((h, i) => ({
          id: h.url,
          title: h.title,
          text: h.snippet,
          raw: `${h.title}   ${h.snippet}`,
          score: h.score ?? 1 / (i + 1),
        }));
      } else {
        const max = opts.maxPageChars ?? 2000;
        result = await Promise.all(
          hits.slice(0, k).map(async (h, i) => {
            const page = h.url ? await pageText(h.url, signal) : null;
            if (page === null) complete = false;
            const text = page && page.text ? page.text.slice(0, max) : h.snippet;
            return {
              id: h.url,
              title: h.title || page?.title || "",
              text,
              raw: `${h.title}   ${text}`,
              score: h.score ?? 1 / (i + 1),
            };
          }),
        );
      }
    }
    if (complete) await c.set(finalKey, result);
    return result;
  }

  return {
    name: `web:${prov.name}`,
    provider: prov.name,
    pipeline,
    async search(queries: readonly string[], k: number, so?: SearchOptions): Promise<Passage[][]> {
      return mapLimited(queries, opts.concurrency ?? 4, (q) => one(q, k, so?.signal));
    },
    async info(): Promise<RetrieverInfo> {
      const c = await cache();
      return {
        kind: `web:${prov.name}`,
        size: -1,
        pipeline,
        summarizer: summarizer?.model ?? null,
        cacheDir: opts.cacheDir ?? null,
        cachedEntries: c.size,
        usage: { ...c.session },
        ...(c.total ? { totalUsage: { ...c.total } } : {}),
      };
    },
    async usage() {
      const c = await cache();
      return { session: { ...c.session }, total: c.total ? { ...c.total } : null };
    },
    async close(): Promise<void> {
      if (cacheP) await (await cacheP).close();
    },
  };
}

// Public names are prefixed: this module is re-exported by src/retrieval/index.ts into the library entry.
export { WebCache, cacheKey as webCacheKey, emptyUsage as emptyWebUsage, type WebUsage } from "./cache.js";
export {
  cleanWikipediaContent,
  fetchCapped as fetchCappedPage,
  fetchPageText,
  keepWordyLines,
  wikipediaTitle,
  type FetchedPage,
  type PageFetchOptions,
} from "./fetch-page.js";
export { decodeEntities as decodeHtmlEntities, htmlTitle, htmlToText } from "./html.js";
export {
  createWebProvider,
  WEB_PROVIDERS,
  type WebHit,
  type WebProvider,
  type WebProviderName,
  type WebProviderOptions,
} from "./providers.js";
export {
  createSummarizer as createWebSummarizer,
  type Summarizer as WebSummarizer,
  type SummarizerOptions as WebSummarizerOptions,
} from "./summarize.js";
