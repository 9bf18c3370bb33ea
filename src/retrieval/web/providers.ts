/**
 * Web search providers: one request → ranked hits (title, url, snippet). Request and response shapes follow each
 * provider's public API:
 *
 * - serper: `POST https://google.serper.dev/search`, header `X-API-KEY`, body as the upstream online evaluation sends
 *   it (r1-searcher.md §2.4): `{"q", "mkt": "en-US", "setLang": "en", "textDecorations": true, "textFormat": "HTML"}`
 *   (+ `num` when more than 10 hits are wanted); hits from `organic[]` (`title`, `link`, `snippet`).
 * - brave: `GET https://api.search.brave.com/res/v1/web/search?q=&count=`, header `X-Subscription-Token`;
 *   hits from `web.results[]` (`title`, `url`, `description`, HTML-highlighted).
 * - tavily: `POST https://api.tavily.com/search`, `Authorization: Bearer`, body `{query, max_results, search_depth}`;
 *   hits from `results[]` (`title`, `url`, `content`, `score`).
 * - searxng: `GET {base}/search?q=&format=json` (JSON output enabled on the instance); hits from `results[]`
 *   (`title`, `url`, `content`, `score`). Self-hosted, usually no key.
 *
 * Keys come from the environment (SERPER_API_KEY, BRAVE_API_KEY / BRAVE_SEARCH_API_KEY, TAVILY_API_KEY,
 * SEARXNG_API_KEY optional) unless given, and are redacted from every error message.
 */
import { z } from "zod";
import { redact } from "../../util/http.js";
import { decodeEntities } from "./html.js";

export type WebProviderName = "serper" | "brave" | "tavily" | "searxng";
export const WEB_PROVIDERS: readonly WebProviderName[] = ["serper", "brave", "tavily", "searxng"];

export interface WebHit {
  title: string;
  url: string;
  snippet: string;
  score?: number;
}

export interface WebProvider {
  readonly name: WebProviderName;
  /** Whether a call costs money (counted as a paid call). */
  readonly paid: boolean;
  /** Identifies the endpoint in cache keys (no secrets). */
  readonly endpoint: string;
  search(query: string, count: number, signal?: AbortSignal): Promise<WebHit[]>;
}

export interface WebProviderOptions {
  /** Override the endpoint (tests point it at a local double; SearXNG needs its base URL). */
  endpoint?: string;
  apiKey?: string;
  /** Per-attempt timeout, ms (default 30 s). */
  timeoutMs?: number;
  /** Attempts for 429/5xx/network errors (default 3). */
  attempts?: number;
  backoffMs?: number;
}

const SerperResponse = z
  .object({
    organic: z
      .array(
        z
          .object({
            title: z.string().optional(),
            link: z.string().optional(),
            snippet: z.string().optional(),
            position: z.number().optional(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();

const BraveResponse = z
  .object({
    web: z
      .object({
        results: z
          .array(
            z
              .object({
                title: z.string().optional(),
                url: z.string().optional(),
                description: z.string().optional(),
                extra_snippets: z.array(z.string()).optional(),
              })
              .loose(),
          )
          .optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

const TavilyResponse = z
  .object({
    results: z
      .array(
        z
          .object({
            title: z.string().optional(),
            url: z.string().optional(),
            content: z.string().optional(),
            score: z.number().optional(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();

const SearxngResponse = z
  .object({
    results: z
      .array(
        z
          .object({
            title: z.string().optional(),
            url: z.string().optional(),
            content: z.string().optional(),
            score: z.number().optional(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();

class RetryableHttp extends Error {}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error("aborted"));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason ?? new Error("aborted"))), {
      once: true,
    });
  });
}

/** JSON request with retries (429/5xx/network), secrets redacted from errors. */
async function callJson(
  url: string,
  init: { method: "GET" | "POST"; headers: Record<string, string>; body?: unknown },
  opts: WebProviderOptions,
  secret: string | undefined,
  signal?: AbortSignal,
): Promise<unknown> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep((opts.backoffMs ?? 500) * 2 ** (i - 1) * (0.5 + Math.random() * 0.5), signal);
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    const s = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const res = await fetch(url, {
        method: init.method,
        headers: {
          accept: "application/json",
          ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
          ...init.headers,
        },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: s,
      });
      const text = await res.text();
      if (!res.ok) {
        const msg = `HTTP ${res.status} from ${redact(url, [secret])}: ${redact(text.slice(0, 300), [secret])}`;
        if (res.status === 429 || res.status >= 500) throw new RetryableHttp(msg);
        throw new Error(msg);
      }
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`invalid JSON from ${redact(url, [secret])}`);
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      const retryable =
        err instanceof RetryableHttp ||
        (err instanceof Error &&
          (err.name === "TypeError" || err.name === "TimeoutError" || err.name === "AbortError"));
      last = new Error(redact(err instanceof Error ? err.message : String(err), [secret]));
      if (!retryable) throw last;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

function requireKey(name: string, key: string | undefined, envNames: string[]): string {
  if (key) return key;
  throw new Error(`web:${name} needs an API key: set ${envNames.join(" or ")} in the environment`);
}

function stripTags(s: string): string {
  return decodeEntities(s.replace(/<[^>]*>/g, ""));
}

export function createWebProvider(name: WebProviderName, opts: WebProviderOptions = {}): WebProvider {
  switch (name) {
    case "serper": {
      const endpoint = opts.endpoint ?? "https://google.serper.dev/search";
      const key = opts.apiKey ?? process.env.SERPER_API_KEY;
      return {
        name,
        paid: true,
        endpoint,
        async search(query, count, signal) {
          const k = requireKey(name, key, ["SERPER_API_KEY"]);
          const body: Record<string, unknown> = {
            q: query,
            mkt: "en-US",
            setLang: "en",
            textDecorations: true,
            textFormat: "HTML",
          };
          if (count > 10) body.num = count;
          const raw = SerperResponse.parse(
            await callJson(endpoint, { method: "POST", headers: { "X-API-KEY": k }, body }, opts, k, signal),
          );
          return (raw.organic ?? [])
            .slice(0, count)
            .map((o) => ({ title: o.title ?? "", url: o.link ?? "", snippet: o.snippet ?? "" }));
        },
      };
    }
    case "brave": {
      const endpoint = opts.endpoint ?? "https://api.search.brave.com/res/v1/web/search";
      const key = opts.apiKey ?? process.env.BRAVE_API_KEY ?? process.env.BRAVE_SEARCH_API_KEY;
      return {
        name,
        paid: true,
        endpoint,
        async search(query, count, signal) {
          const k = requireKey(name, key, ["BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY"]);
          const url = `${endpoint}?${new URLSearchParams({ q: query, count: String(Math.min(20, Math.max(1, count))) })}`;
          const raw = BraveResponse.parse(
            await callJson(url, { method: "GET", headers: { "X-Subscription-Token": k } }, opts, k, signal),
          );
          return (raw.web?.results ?? []).slice(0, count).map((r) => ({
            title: stripTags(r.title ?? ""),
            url: r.url ?? "",
            snippet: stripTags([r.description ?? "", ...(r.extra_snippets ?? [])].filter(Boolean).join(" ")),
          }));
        },
      };
    }
    case "tavily": {
      const endpoint = opts.endpoint ?? "https://api.tavily.com/search";
      const key = opts.apiKey ?? process.env.TAVILY_API_KEY;
      return {
        name,
        paid: true,
        endpoint,
        async search(query, count, signal) {
          const k = requireKey(name, key, ["TAVILY_API_KEY"]);
          const body = { query, max_results: Math.min(20, Math.max(1, count)), search_depth: "basic" };
          const raw = TavilyResponse.parse(
            await callJson(
              endpoint,
              { method: "POST", headers: { authorization: `Bearer ${k}` }, body },
              opts,
              k,
              signal,
            ),
          );
          return (raw.results ?? []).slice(0, count).map((r) => ({
            title: r.title ?? "",
            url: r.url ?? "",
            snippet: r.content ?? "",
            ...(r.score !== undefined ? { score: r.score } : {}),
          }));
        },
      };
    }
    case "searxng": {
      const base = (opts.endpoint ?? process.env.SEARXNG_URL ?? "").replace(/\/+$/, "");
      const key = opts.apiKey ?? process.env.SEARXNG_API_KEY;
      const endpoint = base.endsWith("/search") ? base : `${base}/search`;
      return {
        name,
        paid: false,
        endpoint,
        async search(query, count, signal) {
          if (!base) throw new Error("web:searxng needs the instance URL: set SEARXNG_URL or pass an endpoint");
          const url = `${endpoint}?${new URLSearchParams({ q: query, format: "json" })}`;
          const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
          const raw = SearxngResponse.parse(await callJson(url, { method: "GET", headers }, opts, key, signal));
          return (raw.results ?? []).slice(0, count).map((r) => ({
            title: r.title ?? "",
            url: r.url ?? "",
            snippet: r.content ?? "",
            ...(r.score !== undefined ? { score: r.score } : {}),
          }));
        },
      };
    }
    default:
      throw new Error(`unknown web search provider "${String(name)}" (expected one of ${WEB_PROVIDERS.join(", ")})`);
  }
}
