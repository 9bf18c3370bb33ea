/**
 * Test doubles for the paid web APIs the web retriever talks to, on 127.0.0.1: Serper, Brave, Tavily and SearXNG
 * search (their real request/response shapes), the MediaWiki extract API, plain web pages, and an OpenAI-compatible
 * chat endpoint that "summarizes" pages. Every request is recorded.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface DoubleHit {
  title: string;
  url: string;
  snippet: string;
}

export interface WebDoublesOptions {
  /** Hits per query (any provider); default: [] */
  hits: (query: string) => DoubleHit[];
  /** MediaWiki extracts by page title. */
  wiki?: Record<string, string>;
  /** Web pages by path (under /pages/): body and content type; a number = respond with that status. */
  pages?: Record<string, { body: string; type?: string } | number>;
  /** Summarizer reply for (query, document). */
  summarize?: (query: string, document: string) => string;
  /** API key every search double requires. */
  key: string;
}

export interface RecordedWebRequest {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  query: Record<string, string>;
}

export interface WebDoubles {
  url: string;
  requests: RecordedWebRequest[];
  count(prefix: string): number;
  close(): Promise<void>;
}

export async function startWebDoubles(opts: WebDoublesOptions): Promise<WebDoubles> {
  const requests: RecordedWebRequest[] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://x");
      let body: unknown = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = raw;
      }
      const query = Object.fromEntries(u.searchParams.entries());
      requests.push({ path: u.pathname, method: req.method ?? "", headers: req.headers, body, query });
      const json = (status: number, obj: unknown): void => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(obj));
      };
      const p = u.pathname;
      if (p === "/serper/search" && req.method === "POST") {
        if (req.headers["x-api-key"] !== opts.key) return json(403, { message: "Unauthorized." });
        const q = (body as { q: string }).q;
        return json(200, {
          searchParameters: { q, type: "search", engine: "google" },
          organic: opts.hits(q).map((h, i) => ({ title: h.title, link: h.url, snippet: h.snippet, position: i + 1 })),
          credits: 1,
        });
      }
      if (p === "/brave/res/v1/web/search" && req.method === "GET") {
        if (req.headers["x-subscription-token"] !== opts.key)
          return json(401, { type: "ErrorResponse", error: { code: "SUBSCRIPTION_TOKEN_INVALID", status: 401 } });
        const q = query.q;
        const n = Number(query.count ?? 20);
        return json(200, {
          type: "search",
          query: { original: q },
          web: {
            type: "search",
            results: opts
              .hits(q)
              .slice(0, n)
              .map((h) => ({
                type: "search_result",
                title: h.title,
                url: h.url,
                description: h.snippet.replace(/(\w+)/, "<strong>$1</strong>") + " &amp; more",
                is_source_local: false,
              })),
          },
        });
      }
      if (p === "/tavily/search" && req.method === "POST") {
        if (req.headers.authorization !== `Bearer ${opts.key}`)
          return json(401, { detail: { error: "Unauthorized: missing or invalid API key." } });
        const b = body as { query: string; max_results?: number };
        return json(200, {
          query: b.query,
          answer: null,
          images: [],
          results: opts
            .hits(b.query)
            .slice(0, b.max_results ?? 5)
            .map((h, i) => ({
              title: h.title,
              url: h.url,
              content: h.snippet,
              score: 0.9 - i * 0.1,
              raw_content: null,
            })),
          response_time: 0.5,
        });
      }
      if (p === "/searxng/search" && req.method === "GET") {
        if (query.format !== "json") return json(403, { error: "format not allowed" });
        return json(200, {
          query: query.q,
          number_of_results: 0,
          results: opts.hits(query.q).map((h, i) => ({
            url: h.url,
            title: h.title,
            content: h.snippet,
            engine: "wikipedia",
            engines: ["wikipedia"],
            score: 2 - i * 0.1,
            category: "general",
          })),
          answers: [],
          suggestions: [],
        });
      }
      if (p === "/wiki/w/api.php") {
        const title = query.titles;
        const extract = opts.wiki?.[title];
        if (extract === undefined)
          return json(200, { batchcomplete: true, query: { pages: [{ ns: 0, title, missing: true }] } });
        return json(200, { batchcomplete: true, query: { pages: [{ pageid: 1, ns: 0, title, extract }] } });
      }
      if (p.startsWith("/pages/")) {
        const page = opts.pages?.[p.slice("/pages/".length)];
        if (page === undefined) return json(404, { error: "no page" });
        if (typeof page === "number") return json(page, { error: "scripted" });
        res.writeHead(200, { "content-type": page.type ?? "text/html; charset=utf-8" });
        return res.end(page.body);
      }
      if (p === "/llm/v1/chat/completions" && req.method === "POST") {
        const b = body as { messages: Array<{ role: string; content: string }> };
        const prompt = b.messages[0].content;
        const q = /\[Search Query\]\n([\s\S]*?)\n\n\[Webpage Content\]/.exec(prompt)?.[1] ?? "";
        const doc = /\[Webpage Content\]\n([\s\S]*?)\n\n## Output:\n$/.exec(prompt)?.[1] ?? "";
        const reply = opts.summarize ? opts.summarize(q, doc) : `[Exacted Content]: ${doc.slice(0, 40)}`;
        return json(200, {
          id: "chatcmpl-1",
          object: "chat.completion",
          model: "double",
          choices: [{ index: 0, message: { role: "assistant", content: reply }, finish_reason: "stop" }],
        });
      }
      json(404, { error: `no route ${p}` });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (prefix) => requests.filter((r) => r.path.startsWith(prefix)).length,
    close: () => new Promise<void>((r) => (server.closeAllConnections?.(), server.close(() => r()))),
  };
}
