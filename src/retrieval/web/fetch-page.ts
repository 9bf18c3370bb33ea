/**
 * Fetching result pages for the web retriever: timeouts, a size cap, a content-type filter, HTML to text, and the
 * Wikipedia path of the upstream online evaluation (the MediaWiki API's plain-text extract, cut before
 * "== References ==" and "== Notes ==").
 */
import { pyStrip, spaceSplit } from "../../util/pystr.js";
import { htmlTitle, htmlToText } from "./html.js";

export interface PageFetchOptions {
  /** Per-attempt timeout, ms (default 15 s). */
  timeoutMs?: number;
  /** Largest body read, bytes (default 2 MiB); the rest is dropped. */
  maxBytes?: number;
  /** Attempts (upstream: 3). */
  attempts?: number;
  userAgent?: string;
  /**
   * MediaWiki API URL for a Wikipedia page URL (default: `https://{host}/w/api.php`). Tests point it at a local double.
   */
  wikipediaApi?: (pageUrl: URL) => string;
  signal?: AbortSignal;
}

export interface FetchedPage {
  url: string;
  title: string;
  text: string;
  /** True when the body was cut at `maxBytes`. */
  truncated: boolean;
}

const DEFAULT_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 searchrl";

async function readCapped(res: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: "", truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - n));
      n = maxBytes;
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    n += value.length;
  }
  const buf = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    buf.set(c, o);
    o += c.length;
  }
  return { text: new TextDecoder("utf-8").decode(buf), truncated };
}

async function withAttempts<T>(attempts: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < Math.max(1, attempts); i++) {
    if (signal?.aborted) throw signal.reason ?? new Error("aborted");
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

/** GET a URL with a timeout and a size cap; throws on HTTP errors and unsupported content types. */
export async function fetchCapped(
  url: string,
  opts: PageFetchOptions = {},
): Promise<{ body: string; contentType: string; truncated: boolean }> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 15_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const res = await fetch(url, {
    headers: {
      "user-agent": opts.userAgent ?? DEFAULT_UA,
      accept: "text/html,application/xhtml+xml,application/json,text/plain;q=0.9,*/*;q=0.5",
      "accept-language": "en-US,en;q=0.9",
    },
    redirect: "follow",
    signal,
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`HTTP ${res.status} fetching ${url}`);
  }
  const contentType = (res.headers.get("content-type") ?? "").toLowerCase();
  if (contentType && !/text\/|html|xml|json/.test(contentType)) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`unsupported content type ${contentType} at ${url}`);
  }
  const { text, truncated } = await readCapped(res, opts.maxBytes ?? 2 * 1024 * 1024);
  return { body: text, contentType, truncated };
}

/** Upstream's post-processing of Wikipedia content: "\n\n" → "\n", cut before References / Notes, strip. */
export function cleanWikipediaContent(content: string): string {
  let s = content.replaceAll("\n\n", "\n");
  s = s.split("== References ==")[0];
  s = s.split("== Notes ==")[0];
  return pyStrip(s);
}

/** Upstream's filter for non-Wikipedia pages: keep lines with at least 3 space-separated words, join with " ". */
export function keepWordyLines(text: string): string {
  return text
    .split("\n")
    .map((l) => pyStrip(l))
    .filter((l) => spaceSplit(l).length >= 3)
    .join(" ");
}

/** The page title of a Wikipedia URL (URL-decoded last path segment), or null for other URLs. */
export function wikipediaTitle(url: string): string | null {
  if (!url.includes("wikipedia.org")) return null;
  try {
    const u = new URL(url);
    const seg = u.pathname.split("/").filter(Boolean).pop();
    return seg ? decodeURIComponent(seg).replaceAll("_", " ") : null;
  } catch {
    return null;
  }
}

/**
 * Text of a result page as the upstream online evaluation prepares it: Wikipedia pages through the MediaWiki API
 * (plain-text extract, cleaned as upstream), other pages through HTML-to-text keeping lines of >= 3 words.
 * Throws after `attempts` failures (the caller turns that into "None" instead of crashing, unlike upstream).
 */
export async function fetchPageText(url: string, opts: PageFetchOptions = {}): Promise<FetchedPage> {
  const attempts = opts.attempts ?? 3;
  const title = wikipediaTitle(url);
  if (title !== null) {
    const u = new URL(url);
    const api = opts.wikipediaApi ? opts.wikipediaApi(u) : `${u.protocol}//${u.host}/w/api.php`;
    const q = new URLSearchParams({
      action: "query",
      prop: "extracts",
      explaintext: "1",
      redirects: "1",
      format: "json",
      formatversion: "2",
      titles: title,
    });
    return withAttempts(attempts, opts.signal, async () => {
      const { body, truncated } = await fetchCapped(`${api}?${q}`, opts);
      const json = JSON.parse(body) as {
        query?: { pages?: Array<{ title?: string; extract?: string; missing?: boolean }> };
      };
      const page = json.query?.pages?.[0];
      if (!page || page.missing || typeof page.extract !== "string") throw new Error(`no Wikipedia page "${title}"`);
      return { url, title: page.title ?? title, text: cleanWikipediaContent(page.extract), truncated };
    });
  }
  return withAttempts(attempts, opts.signal, async () => {
    const { body, contentType, truncated } = await fetchCapped(url, opts);
    const isHtml = contentType === "" || /html|xml/.test(contentType);
    const text = isHtml ? keepWordyLines(htmlToText(body)) : keepWordyLines(body);
    return { url, title: isHtml ? htmlTitle(body) : "", text, truncated };
  });
}
