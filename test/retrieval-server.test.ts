/**
 * The retrieval server (R1-Searcher /queries + Search-R1 /retrieve), its conformance suite, and the remote client,
 * all against real servers on 127.0.0.1 over real indexes (LanceDB BM25; dense with a test-built ONNX model).
 */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { createServer as createHttpServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  buildIndex,
  openRetriever,
  RemoteRetriever,
  writeTinyEmbeddingModel,
  parseRawPassageLine,
} from "../src/retrieval/index.js";
import type { Retriever } from "../src/retrieval/types.js";
import { serveRetrieval, retrievalOpenApi, type RetrievalServer } from "../src/server/retrieval.js";
import { runRetrievalConformance, formatRetrievalConformanceReport } from "../src/server/retrieval-conformance.js";

const KILT_TSV = path.resolve(__dirname, "../data/r1-searcher/kilt_samples/train_kilt_full_page_sample_100.tsv");
const LINES = readFileSync(KILT_TSV, "utf8").split("\n");
const QUERIES = [
  "alphabet letter vowel",
  "albedo reflection of sunlight",
  "Gershwin jazz orchestra Paris",
  "atomic time clocks second",
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked field by field
async function post(url: string, body: unknown, raw?: string): Promise<{ status: number; json: any; type: string }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: raw ?? JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null, type: r.headers.get("content-type") ?? "" };
}

describe("retrieval server over a BM25 index", () => {
  let retriever: Retriever;
  let server: RetrievalServer & { url: string };
  let root: string;
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), "srv-"));
    const dir = path.join(root, "idx");
    await buildIndex({ corpus: KILT_TSV, out: dir, bm25: { engine: "lance" }, progress: false });
    retriever = await openRetriever(dir, { bm25Engine: "lancedb" });
    server = await serveRetrieval({ retriever, port: 0 });
  });
  afterAll(async () => {
    await server.close();
    await retriever.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("passes the whole conformance suite (must and should)", async () => {
    const report = await runRetrievalConformance(server.url, { queries: QUERIES });
    const text = formatRetrievalConformanceReport(report);
    expect(report.ok, text).toBe(true);
    expect(report.warnings, text).toBe(0);
    expect(report.checks.length).toBeGreaterThan(30);
  });

  it("POST /queries returns upstream raw lines, k defaults to 3", async () => {
    const r = await post(`${server.url}/queries`, { queries: QUERIES.slice(0, 2) });
    expect(r.status).toBe(200);
    expect(r.json.queries).toEqual(QUERIES.slice(0, 2));
    expect(r.json.answers.map((a: string[]) => a.length)).toEqual([3, 3]);
    const [local] = await retriever.search([QUERIES[0]], 3);
    expect(r.json.answers[0]).toEqual(local.map((p) => LINES[Number(p.id)]));
    const r5 = await post(`${server.url}/queries`, { queries: [QUERIES[0]], k: 5 });
    expect(r5.json.answers[0]).toHaveLength(5);
  });

  it('POST /retrieve: documents {id, contents: "Title"\\ntext}, scores, bare documents, topk default', async () => {
    const r = await post(`${server.url}/retrieve`, { queries: [QUERIES[1]], topk: 2, return_scores: true });
    expect(r.status).toBe(200);
    const [local] = await retriever.search([QUERIES[1]], 2);
    expect(r.json.result[0]).toEqual(
      local.map((p) => ({ document: { id: p.id, contents: `"${p.title}"\n${p.text}` }, score: p.score })),
    );
    const bare = await post(`${server.url}/retrieve`, { queries: [QUERIES[1]], topk: 2, return_scores: false });
    expect(bare.json.result[0]).toEqual(local.map((p) => ({ id: p.id, contents: `"${p.title}"\n${p.text}` })));
    const noScores = await post(`${server.url}/retrieve`, { queries: [QUERIES[1]] });
    expect(noScores.json.result[0]).toHaveLength(3);
    expect(noScores.json.result[0][0]).not.toHaveProperty("score");
  });

  it("bad input: 400/413 JSON errors that name the problem", async () => {
    const cases: Array<[string, unknown, RegExp, string?]> = [
      ["/queries", { queries: [] }, /queries: queries must not be empty/],
      ["/queries", { queries: ["a", 3] }, /queries\.1: every query must be a string/],
      ["/queries", { queries: ["a"], k: 0 }, /k: k must be >= 1/],
      ["/queries", { queries: ["a"], k: 101 }, /k: k must be <= 100/],
      ["/queries", { queries: ["a"], k: 2.5 }, /k must be an integer/],
      ["/queries", { k: 3 }, /queries/],
      ["/retrieve", { queries: ["a"], topk: -2 }, /topk must be >= 0/],
      ["/retrieve", { queries: ["a"], return_scores: "yes" }, /return_scores must be a boolean/],
      ["/retrieve", undefined, /not valid JSON/i, "{oops"],
    ];
    for (const [route, body, msg, raw] of cases) {
      const r = await post(`${server.url}${route}`, body, raw);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.type).toContain("application/json");
      expect(r.json.error).toMatch(msg);
    }
    const big = await post(
      `${server.url}/queries`,
      undefined,
      JSON.stringify({ queries: ["x".repeat(5 * 1024 * 1024)] }),
    );
    expect(big.status).toBe(413);
    expect(big.json.error).toMatch(/too large/);
    const notFound = await fetch(`${server.url}/nope`);
    expect(notFound.status).toBe(404);
  });

  it("GET /health and GET /openapi.json", async () => {
    const h = await (await fetch(`${server.url}/health`)).json();
    expect(h).toMatchObject({ status: "ok", kind: "bm25", size: 93, defaultK: 3, maxK: 100 });
    expect(h.eventLoopDelayMs).toHaveProperty("p99");
    const o = await (await fetch(`${server.url}/openapi.json`)).json();
    expect(o.openapi).toBe("3.1.0");
    expect(Object.keys(o.paths)).toEqual(["/queries", "/retrieve", "/health", "/openapi.json"]);
    const reqSchema = o.paths["/queries"].post.requestBody.content["application/json"].schema;
    expect(reqSchema.required).toEqual(["queries"]);
    expect(reqSchema.properties.k.maximum).toBe(100);
    expect(retrievalOpenApi({ maxK: 7 }).paths).toBeDefined();
  });

  it("serves many concurrent batched requests correctly", async () => {
    const batch = Array.from({ length: 64 }, (_, i) => QUERIES[i % QUERIES.length]);
    const expected = await retriever.search(batch, 3);
    const responses = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        i % 2
          ? post(`${server.url}/queries`, { queries: batch, k: 3 })
          : post(`${server.url}/retrieve`, { queries: batch, topk: 3, return_scores: true }),
      ),
    );
    responses.forEach((r, i) => {
      expect(r.status).toBe(200);
      if (i % 2) expect(r.json.answers).toEqual(expected.map((l) => l.map((p) => p.raw)));
      else
        expect(r.json.result.map((l: Array<{ document: { id: string } }>) => l.map((h) => h.document.id))).toEqual(
          expected.map((l) => l.map((p) => p.id)),
        );
    });
  });

  it("RemoteRetriever speaks both APIs against the server and matches the local retriever", async () => {
    const local = await retriever.search(QUERIES, 4);
    const viaQueries = new RemoteRetriever(`${server.url}/queries`);
    const viaRetrieve = new RemoteRetriever(`${server.url}/retrieve`);
    const viaBase = new RemoteRetriever(server.url, { api: "queries" });
    expect([viaQueries.api, viaRetrieve.api, viaBase.api]).toEqual(["queries", "retrieve", "queries"]);
    const q = await viaQueries.search(QUERIES, 4);
    const r = await viaRetrieve.search(QUERIES, 4);
    const b = await viaBase.search(QUERIES, 4);
    const strip = (l: Array<{ id: string; title: string; text: string }>) =>
      l.map(({ id, title, text }) => ({ id, title, text }));
    expect(q.map(strip)).toEqual(local.map(strip));
    expect(b.map(strip)).toEqual(local.map(strip));
    expect(r.map(strip)).toEqual(local.map(strip));
    expect(q[0][0].raw).toBe(local[0][0].raw);
    expect(r.flat().map((p) => p.score)).toEqual(local.flat().map((p) => p.score));
    expect(await viaQueries.info()).toMatchObject({ kind: "remote", size: 93, remoteKind: "bm25", api: "queries" });
    const viaSpec = await openRetriever(`${server.url}/retrieve`);
    expect((await viaSpec.search([QUERIES[0]], 1))[0][0].id).toBe(local[0][0].id);
  });
});

describe("remote client details", () => {
  it("parses upstream raw lines (KILT and abstract forms)", () => {
    expect(parseRawPassageLine("12\tCitibank   Citibank was founded")).toEqual({
      id: "12",
      title: "Citibank",
      text: "Citibank was founded",
      raw: "12\tCitibank   Citibank was founded",
    });
    expect(parseRawPassageLine('7\t"Title: A ""B"" Text:  body"')).toMatchObject({
      id: "7",
      title: 'A "B"',
      text: "body",
    });
  });

  it("retries 503s with backoff, then succeeds; gives up with a clear error on a bad shape", async () => {
    let calls = 0;
    const http: Server = createHttpServer((req, res) => {
      calls++;
      if (calls <= 2) {
        res.writeHead(503, { "content-type": "application/json" }).end('{"error":"busy"}');
        return;
      }
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const q = JSON.parse(body) as { queries: string[] };
        const out =
          calls === 3 ? { queries: q.queries, answers: q.queries.map(() => ["5\tT   hello"]) } : { nope: true };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out));
      });
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const port = (http.address() as { port: number }).port;
    const rr = new RemoteRetriever(`http://127.0.0.1:${port}/queries`, { attempts: 4, backoffMs: 10 });
    expect(await rr.search(["q"], 3)).toEqual([[{ id: "5", title: "T", text: "hello", raw: "5\tT   hello" }]]);
    expect(calls).toBe(3);
    await expect(rr.search(["q"], 3)).rejects.toThrow(/not \{"answers"/);
    http.close();
  });
});

describe("conformance suite detects non-conforming servers", () => {
  it("flags a server that ignores k, crashes on bad input and has no /retrieve", async () => {
    // A deliberately sloppy /queries server (like an unvalidated Flask script): always 5 lines, 500 on bad JSON.
    const http: Server = createHttpServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        if (req.url !== "/queries") {
          res.writeHead(404).end("not found");
          return;
        }
        try {
          const q = JSON.parse(body) as { queries: string[] };
          const answers = q.queries.map((s) => Array.from({ length: 5 }, (_, i) => `${i}\tT${i}   ${s}`));
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ queries: q.queries, answers }));
        } catch {
          res.writeHead(500).end("Internal Server Error");
        }
      });
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    const report = await runRetrievalConformance(url, { contracts: ["queries"], oversizedBytes: 1024 });
    http.close();
    expect(report.ok).toBe(false);
    const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toContain("/queries: shape, k respected, queries echoed");
    expect(failed).toContain("/queries: k defaults to 3");
    expect(failed).toContain("/queries: invalid JSON → 4xx JSON error");
    expect(failed).toContain("GET /health: JSON with index size and kind");
    const full = await runRetrievalConformance(url, { oversizedBytes: 1024 });
    expect(full.checks.find((c) => c.name.startsWith("/retrieve: scored hits"))?.ok).toBe(false);
  });
});

describe("retrieval server over a hybrid (BM25 + dense ONNX) index", () => {
  it("conforms, and /queries and /retrieve agree", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "hsrv-"));
    const words = ["river", "london", "python", "code", "music", "egypt", "bank"];
    const corpus = path.join(root, "c.tsv");
    writeFileSync(
      corpus,
      Array.from({ length: 60 }, (_, i) => `${i}\tDoc ${i}   ${words[i % 7]} ${words[(i * 3) % 7]} text ${i}`).join(
        "\n",
      ) + "\n",
    );
    const model = path.join(root, "m");
    await writeTinyEmbeddingModel(model, { words, hidden: 16 });
    const dir = path.join(root, "idx");
    await buildIndex({ corpus, out: dir, bm25: true, dense: { model, preset: "bge" }, progress: false });
    const retriever = await openRetriever(dir);
    const server = await serveRetrieval({ retriever, port: 0 });
    try {
      const report = await runRetrievalConformance(server.url, {
        queries: ["river london", "python code", "egypt", "music bank"],
      });
      expect(report.ok, formatRetrievalConformanceReport(report)).toBe(true);
      expect(report.warnings, formatRetrievalConformanceReport(report)).toBe(0);
      const h = await (await fetch(`${server.url}/health`)).json();
      expect(h).toMatchObject({ kind: "hybrid", size: 60 });
    } finally {
      await server.close();
      await retriever.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
