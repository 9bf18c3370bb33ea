/**
 * Retrieval server: both de-facto contracts on one port, over any {@link Retriever} (ecosystem-contracts §1, §2).
 *
 * - `POST /queries  {"queries":[...], "k"?: N}` (R1-Searcher; k default 3) →
 *   `{"queries":[...], "answers":[[raw line, ...], ...]}`, each line the passage's raw corpus line (`Passage.raw`).
 * - `POST /retrieve {"queries":[...], "topk"?: N|null, "return_scores"?: bool}` (Search-R1; topk null/0/missing →
 *   the server default) → `{"result":[[{"document":{"id","contents"},"score"}, ...], ...]}`, or bare document objects
 *   when `return_scores` is false; `contents` = `"Title"\ntext`.
 * - `GET /health` → status, kind, index size, version, event-loop delay; `GET /openapi.json` → OpenAPI 3.1 of the routes.
 *
 * Thin: zod validation (400 JSON on bad input, 413 on a too-large body), one batched `retriever.search` per request,
 * a bounded number of searches in flight. Long work never blocks the event loop (LanceDB is native and async, the ONNX
 * query encoder runs in its own thread, in-process scorers yield between queries); /health reports the measured delay.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Passage } from "../util/types.js";
import { Semaphore } from "../util/concurrency.js";
import { VERSION } from "../version.js";
import type { Retriever, RetrieverInfo } from "../retrieval/types.js";
import { passageContents, passageRawLine } from "../corpus/readers.js";
import { createServer, listen, requireBearerToken, validate } from "./common.js";

export interface RetrievalServerOptions {
  retriever: Retriever;
  /** Results per query when the request gives none (default 3, as both upstream servers). */
  defaultK?: number;
  /** Largest accepted k / topk (default 100). */
  maxK?: number;
  /** Most queries in one request (default 1024). */
  maxQueries?: number;
  /** Longest accepted query in characters (default 8192). */
  maxQueryChars?: number;
  /** Maximum request body in bytes (default 4 MiB; larger → 413). */
  bodyLimit?: number;
  /** Searches running at once; further requests wait (default 8). */
  concurrency?: number;
  /** Extra fields for /health (e.g. the index manifest summary). */
  health?: Record<string, unknown>;
  /**
   * Require `Authorization: Bearer TOKEN` on every route but `/health` (default none: veRL's and OpenRLHF's retrieval
   * clients send no header).
   */
  token?: string | null;
  logger?: boolean;
}

function schemas(o: Required<Pick<RetrievalServerOptions, "maxK" | "maxQueries" | "maxQueryChars">>) {
  const queries = z
    .array(
      z
        .string({ error: "every query must be a string" })
        .max(o.maxQueryChars, `a query may have at most ${o.maxQueryChars} characters`),
      {
        error: "queries must be a list of strings",
      },
    )
    .min(1, "queries must not be empty")
    .max(o.maxQueries, `at most ${o.maxQueries} queries per request`);
  const QueriesRequest = z
    .object({
      queries,
      k: z
        .number({ error: "k must be an integer" })
        .int("k must be an integer")
        .min(1, "k must be >= 1")
        .max(o.maxK, `k must be <= ${o.maxK}`)
        .optional(),
    })
    .loose();
  const QueriesResponse = z.object({ queries: z.array(z.string()), answers: z.array(z.array(z.string())) });
  const RetrieveRequest = z
    .object({
      queries,
      topk: z
        .number({ error: "topk must be an integer or null" })
        .int("topk must be an integer")
        .min(0, "topk must be >= 0 (0 or null = server default)")
        .max(o.maxK, `topk must be <= ${o.maxK}`)
        .nullable()
        .optional(),
      return_scores: z.boolean({ error: "return_scores must be a boolean" }).optional(),
    })
    .loose();
  const Document = z.object({ id: z.string(), contents: z.string() }).loose();
  const RetrieveResponse = z.object({
    result: z.array(z.array(z.union([z.object({ document: Document, score: z.number() }), Document]))),
  });
  const Health = z
    .object({
      status: z.literal("ok"),
      name: z.string(),
      kind: z.string(),
      size: z.number(),
      version: z.string(),
      defaultK: z.number(),
      maxK: z.number(),
    })
    .loose();
  return { QueriesRequest, QueriesResponse, RetrieveRequest, RetrieveResponse, Health };
}

/** The OpenAPI 3.1 description of the routes (JSON schemas generated from the zod schemas). */
export function retrievalOpenApi(
  opts: Pick<RetrievalServerOptions, "maxK" | "maxQueries" | "maxQueryChars" | "defaultK"> = {},
): Record<string, unknown> {
  const s = schemas({
    maxK: opts.maxK ?? 100,
    maxQueries: opts.maxQueries ?? 1024,
    maxQueryChars: opts.maxQueryChars ?? 8192,
  });
  const js = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  const error = {
    type: "object",
    properties: { error: { type: "string" }, code: { type: "string" }, details: {} },
    required: ["error"],
  };
  const errResponses = {
    "400": { description: "invalid request", content: { "application/json": { schema: error } } },
    "413": { description: "request body too large", content: { "application/json": { schema: error } } },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "searchrl retrieval server",
      version: VERSION,
      description: `R1-Searcher /queries and Search-R1 /retrieve on one port; default k ${opts.defaultK ?? 3}.`,
    },
    paths: {
      "/queries": {
        post: {
          summary: "R1-Searcher retrieval: raw corpus lines, best first",
          requestBody: { required: true, content: { "application/json": { schema: js(s.QueriesRequest) } } },
          responses: {
            "200": {
              description: "one list of raw lines per query",
              content: { "application/json": { schema: js(s.QueriesResponse) } },
            },
            ...errResponses,
          },
        },
      },
      "/retrieve": {
        post: {
          summary: 'Search-R1 retrieval: {"document":{"id","contents"},"score"} hits, best first',
          requestBody: { required: true, content: { "application/json": { schema: js(s.RetrieveRequest) } } },
          responses: {
            "200": {
              description: "one list of hits per query",
              content: { "application/json": { schema: js(s.RetrieveResponse) } },
            },
            ...errResponses,
          },
        },
      },
      "/health": {
        get: {
          summary: "liveness, index kind and size, version",
          responses: { "200": { description: "ok", content: { "application/json": { schema: js(s.Health) } } } },
        },
      },
      "/openapi.json": { get: { summary: "this document", responses: { "200": { description: "OpenAPI 3.1" } } } },
    },
  };
}

function documentOf(p: Passage): { id: string; contents: string } {
  return { id: p.id, contents: passageContents(p) };
}

export interface RetrievalServer {
  app: FastifyInstance;
  /** Event-loop histogram (nanoseconds between 10 ms timer ticks; subtract 10 ms for the delay). */
  loopDelay: IntervalHistogram;
  close(): Promise<void>;
}

/** Create the fastify app (not listening). */
export async function createRetrievalServer(opts: RetrievalServerOptions): Promise<RetrievalServer> {
  const defaultK = opts.defaultK ?? 3;
  const limits = {
    maxK: opts.maxK ?? 100,
    maxQueries: opts.maxQueries ?? 1024,
    maxQueryChars: opts.maxQueryChars ?? 8192,
  };
  const s = schemas(limits);
  const retriever = opts.retriever;
  const gate = new Semaphore(opts.concurrency ?? 8);
  const app = createServer({ bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024, logger: opts.logger });
  requireBearerToken(app, opts.token);
  const LOOP_RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  let info: RetrieverInfo | null = null;
  const getInfo = async () => (info ??= await retriever.info());
  await getInfo();
  const started = Date.now();
  let served = 0;
  const openapi = retrievalOpenApi({ ...limits, defaultK });

  const search = (queries: string[], k: number) =>
    gate.run(async () => {
      const res = await retriever.search(queries, k);
      served += queries.length;
      return res;
    });

  app.post("/queries", async (req) => {
    const body = validate(s.QueriesRequest, req.body);
    const k = body.k ?? defaultK;
    const res = await search(body.queries, k);
    return { queries: body.queries, answers: res.map((list) => list.slice(0, k).map(passageRawLine)) };
  });

  app.post("/retrieve", async (req) => {
    const body = validate(s.RetrieveRequest, req.body);
    const k = body.topk === null || body.topk === undefined || body.topk === 0 ? defaultK : body.topk;
    const res = await search(body.queries, k);
    const withScores = body.return_scores === true;
    return {
      result: res.map((list) =>
        list.slice(0, k).map((p) => (withScores ? { document: documentOf(p), score: p.score ?? 0 } : documentOf(p))),
      ),
    };
  });

  app.get("/health", async () => {
    const i = await getInfo();
    // The histogram records whole timer intervals; the delay is what exceeds the sampling interval.
    const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100);
    return {
      status: "ok" as const,
      name: retriever.name,
      kind: i.kind,
      size: i.size,
      version: VERSION,
      defaultK,
      maxK: limits.maxK,
      routes: ["POST /queries", "POST /retrieve", "GET /health", "GET /openapi.json"],
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      queriesServed: served,
      searchesInFlight: gate.inFlight,
      searchesQueued: gate.queued,
      eventLoopDelayMs: {
        p50: ms(loopDelay.percentile(50)),
        p99: ms(loopDelay.percentile(99)),
        max: ms(loopDelay.max),
      },
      ...opts.health,
    };
  });

  app.get("/openapi.json", async () => openapi);

  return {
    app,
    loopDelay,
    close: async () => {
      loopDelay.disable();
      await app.close();
    },
  };
}

export interface ServeRetrievalOptions extends RetrievalServerOptions {
  host?: string;
  /** Port (default 5004; 0 = ephemeral). */
  port?: number;
}

/** Start the server; resolves with its base URL. `close()` stops the server (the retriever stays open). */
export async function serveRetrieval(opts: ServeRetrievalOptions): Promise<RetrievalServer & { url: string }> {
  const server = await createRetrievalServer(opts);
  const url = await listen(server.app, opts.host ?? "127.0.0.1", opts.port ?? 5004);
  return { ...server, url };
}
