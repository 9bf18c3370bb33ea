/**
 * Web retriever tests against local test doubles for the paid APIs (Serper, Brave, Tavily, SearXNG, the MediaWiki
 * API, web pages, a summarizing chat endpoint) that implement their real request/response shapes.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSummaryPrompt, createR1SearcherProtocol } from "../../protocol/index.js";
import { cleanWikipediaContent, createWebRetriever, htmlToText } from "./index.js";
import { startWebDoubles, type WebDoubles } from "./testing/web-doubles.js";

const KEY = "test-key-SECRET-123";
let d: WebDoubles;
let dir: string;

const WIKI_PARIS =
  "Paris is the capital of France.\n\nIt has 2 million people.\n\n== History ==\nOld.\n\n== References ==\nSome refs.\n== Notes ==\nNotes.";

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-web-"));
  d = await startWebDoubles({
    key: KEY,
    hits: (q) => {
      if (q.startsWith("capital of France")) {
        return [
          { title: "Broken page", url: "http://127.0.0.1:1/pages/x", snippet: "broken" },
          { title: "Lyon - Wikipedia", url: "https://en.wikipedia.org/wiki/Lyon", snippet: "Lyon is a city" },
          { title: "Paris - Wikipedia", url: "https://en.wikipedia.org/wiki/Paris", snippet: "Paris is the capital" },
          { title: "Fourth", url: "https://example.org/4", snippet: "never used" },
        ];
      }
      if (q.startsWith("pages")) {
        return [
          { title: "HTML", url: `${d.url}/pages/a.html`, snippet: "snippet a" },
          { title: "PDF", url: `${d.url}/pages/b.pdf`, snippet: "snippet b" },
        ];
      }
      return [
        { title: "First <b>hit</b>", url: "https://example.org/1", snippet: "alpha beta" },
        { title: "Second", url: "https://example.org/2", snippet: "gamma delta" },
        { title: "Third", url: "https://example.org/3", snippet: "epsilon" },
      ];
    },
    wiki: { Paris: WIKI_PARIS, Lyon: "Lyon is a French city." },
    pages: {
      "a.html": {
        body: "<html><head><title>A &amp; B</title><style>x{}</style></head><body><p>one two three four</p><script>bad()</script><div>too short</div><p>five six seven &eacute;t&eacute;</p></body></html>",
      },
      "b.pdf": { body: "%PDF-1.4", type: "application/pdf" },
    },
    summarize: (q, doc) =>
      doc.includes("Lyon") ? "[Exacted Content]: None" : `Thinking...\n[Exacted Content]:: ${doc.split("\n")[0]} `,
  });
});
afterAll(async () => {
  await d.close();
  rmSync(dir, { recursive: true, force: true });
});

function paperRetriever(cacheDir: string | null) {
  return createWebRetriever("serper", {
    provider: { endpoint: `${d.url}/serper/search`, apiKey: KEY, backoffMs: 1 },
    summarizer: { baseUrl: `${d.url}/llm`, apiKey: "llm-key" },
    fetch: { wikipediaApi: () => `${d.url}/wiki/w/api.php`, attempts: 2, timeoutMs: 2000 },
    cacheDir,
  });
}

describe("web:serper, the paper's online pipeline", () => {
  it("searches with the upstream request, fetches pages, summarizes, rejects 'none' and survives a failed page", async () => {
    const r = paperRetriever(path.join(dir, "cache1"));
    expect(r.pipeline).toBe("paper");
    const [res] = await r.search(["capital of France"], 5);
    const serper = d.requests.find((x) => x.path === "/serper/search")!;
    expect(serper.headers["x-api-key"]).toBe(KEY);
    expect(serper.body).toEqual({
      q: "capital of France site:en.wikipedia.org",
      mkt: "en-US",
      setLang: "en",
      textDecorations: true,
      textFormat: "HTML",
    });
    // Hit 1 fails (no crash), hit 2 (Lyon) gives "None" → rejected, hit 3 (Paris) is used.
    expect(res).toHaveLength(1);
    expect(res[0]).toMatchObject({
      id: "https://en.wikipedia.org/wiki/Paris",
      title: "Paris - Wikipedia",
      text: "Paris is the capital of France.",
    });
    const llm = d.requests.filter((x) => x.path === "/llm/v1/chat/completions");
    expect(llm).toHaveLength(2);
    const msg = llm[1].body as {
      messages: Array<{ role: string; content: string }>;
      max_tokens: number;
      model: string;
    };
    expect(msg.max_tokens).toBe(2048);
    expect(msg.model).toBe("gpt-4o-mini");
    expect(msg.messages).toEqual([
      { role: "user", content: buildSummaryPrompt("capital of France", cleanWikipediaContent(WIKI_PARIS)) },
    ]);
    expect(cleanWikipediaContent(WIKI_PARIS)).toBe(
      "Paris is the capital of France.\nIt has 2 million people.\n== History ==\nOld.",
    );
    const online = createR1SearcherProtocol({ documentStyle: "online" });
    expect(online.renderObservation(res)).toBe(
      "\n\n<|begin_of_documents|>\nParis is the capital of France.\n<|end_of_documents|>\n\n",
    );
    const u = await r.usage();
    expect(u.session).toMatchObject({ searchCalls: 1, paidSearchCalls: 1, summaryCalls: 2 });
    await r.close();
  });

  it("a second run over the same cache directory makes no paid call", async () => {
    const cacheDir = path.join(dir, "cache2");
    const a = paperRetriever(cacheDir);
    const first = await a.search(["capital of France", "capital of France"], 5);
    await a.close();
    const before = d.requests.length;
    const b = paperRetriever(cacheDir);
    const again = await b.search(["capital of France"], 5);
    expect(again[0]).toEqual(first[0]);
    expect(d.requests.length).toBe(before);
    const u = await b.usage();
    // No paid call; only the page that failed before is tried again (failures are not cached).
    expect(u.session.searchCalls + u.session.paidSearchCalls + u.session.summaryCalls).toBe(0);
    expect(u.session.pageFetches).toBe(1);
    expect(u.session.cacheHits).toBeGreaterThan(0);
    expect(u.total!.paidSearchCalls).toBeGreaterThanOrEqual(1);
    await b.close();
    const usage = JSON.parse(readFileSync(path.join(cacheDir, "usage.json"), "utf8"));
    expect(usage.paidSearchCalls).toBe(u.total!.paidSearchCalls);
    const cacheText = readFileSync(path.join(cacheDir, "web-cache.jsonl"), "utf8");
    expect(cacheText).not.toContain(KEY);
    expect(cacheText).not.toContain("llm-key");
  });

  it("fails clearly without a key and never shows the key in errors", async () => {
    const prev = process.env.SERPER_API_KEY;
    delete process.env.SERPER_API_KEY;
    const noKey = createWebRetriever("serper", { provider: { endpoint: `${d.url}/serper/search` } });
    await expect(noKey.search(["x"], 3)).rejects.toThrow(/SERPER_API_KEY/);
    if (prev !== undefined) process.env.SERPER_API_KEY = prev;
    const wrong = createWebRetriever("serper", {
      provider: { endpoint: `${d.url}/serper/search?k=${KEY}x`, apiKey: `${KEY}x`, attempts: 1 },
    });
    const err = await wrong.search(["x"], 3).catch((e: Error) => e);
    expect(String(err)).toMatch(/HTTP 403/);
    expect(String(err)).not.toContain(KEY);
    expect(() => createWebRetriever("bing")).toThrow(/unknown web search provider/);
    expect(() => createWebRetriever("serper", { pipeline: "paper" })).toThrow(/summarizer/);
  });
});

describe("web providers (snippets / pages pipelines)", () => {
  it("brave, tavily and searxng return top-k hits with their real shapes", async () => {
    const brave = createWebRetriever("brave", {
      provider: { endpoint: `${d.url}/brave/res/v1/web/search`, apiKey: KEY },
    });
    const [b] = await brave.search(["anything"], 2);
    expect(b.map((p) => p.title)).toEqual(["First <b>hit</b>".replace(/<[^>]*>/g, ""), "Second"]);
    expect(b[0].text).toBe("alpha beta & more");
    const breq = d.requests.filter((x) => x.path === "/brave/res/v1/web/search").at(-1)!;
    expect(breq.headers["x-subscription-token"]).toBe(KEY);
    expect(breq.query).toMatchObject({ q: "anything", count: "2" });

    const tavily = createWebRetriever("tavily", { provider: { endpoint: `${d.url}/tavily/search`, apiKey: KEY } });
    const [t] = await tavily.search(["anything"], 3);
    expect(t.map((p) => p.id)).toEqual(["https://example.org/1", "https://example.org/2", "https://example.org/3"]);
    expect(t[0].score).toBeCloseTo(0.9);
    expect(d.requests.filter((x) => x.path === "/tavily/search").at(-1)!.body).toEqual({
      query: "anything",
      max_results: 3,
      search_depth: "basic",
    });

    const sx = createWebRetriever("searxng", { provider: { endpoint: d.url + "/searxng" } });
    const [s] = await sx.search(["anything"], 1);
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ title: "First <b>hit</b>", text: "alpha beta" });
    expect((await sx.info()).kind).toBe("web:searxng");
  });

  it("pages pipeline fetches HTML as text and falls back to the snippet for unsupported content", async () => {
    const r = createWebRetriever("searxng", { provider: { endpoint: d.url + "/searxng" }, pipeline: "pages" });
    const [res] = await r.search(["pages"], 2);
    expect(res[0].text).toBe("one two three four five six seven été");
    expect(res[1].text).toBe("snippet b");
  });

  it("htmlToText drops scripts, styles and comments and keeps block structure", () => {
    expect(htmlToText("<div>a<br>b</div><!-- c --><script>x</script><p>d &lt;e&gt; &#233;&#x41;</p>")).toBe(
      "a\nb\nd <e> éA",
    );
  });
});
