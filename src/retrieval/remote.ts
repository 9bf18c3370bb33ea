/**
 * Client for remote retrieval servers speaking either contract:
 * - R1-Searcher `POST /queries {"queries", "k"}` → `{"queries", "answers": [[raw line, ...], ...]}`
 * - Search-R1 `POST /retrieve {"queries", "topk", "return_scores": true}` → `{"result": [[{"document", "score"}, ...], ...]}`
 * (ecosystem-contracts §1, §2). Retries with backoff on network errors, timeouts and 5xx/429.
 */
import { z } from "zod";
import type { Passage } from "../util/types.js";
import { requestJson } from "../util/http.js";
import { parseAbstractTsvLine, parseKiltTsvLine, splitContents, unquoteCsvField } from "../corpus/readers.js";
import type { Retriever, RetrieverInfo, SearchOptions } from "./types.js";

export type RemoteApi = "queries" | "retrieve";

export interface RemoteRetrieverOptions {
  /** Which contract; default from the URL path (`/queries` or `/retrieve`), else "retrieve". */
  api?: RemoteApi;
  /** Per-attempt timeout (default 60 s). */
  timeoutMs?: number;
  /** Attempts including the first (default 4). */
  attempts?: number;
  /** Base backoff (default 500 ms, doubled per attempt). */
  backoffMs?: number;
  headers?: Record<string, string>;
  name?: string;
}

/** Turn a raw `/queries` answer line back into a passage (KILT `id\ttitle   text` or abstract `id\tTitle: T Text:  a`). */
export function parseRawPassageLine(line: string): Passage {
  const tab = line.indexOf("\t");
  if (tab >= 0 && /^"?Title: /.test(line.slice(tab + 1))) return parseAbstractTsvLine(line);
  if (tab >= 0 && /^\ufeff?\d+$/.test(line.slice(0, tab))) return parseKiltTsvLine(line);
  return { id: "", title: "", text: unquoteCsvField(line), raw: line };
}

const QueriesResponse = z.object({ answers: z.array(z.array(z.string())) });

const DocSchema = z.union([
  z.looseObject({
    id: z.union([z.string(), z.number()]).optional(),
    contents: z.string().optional(),
    title: z.string().optional(),
    text: z.string().optional(),
  }),
  z.string(),
]);
const HitSchema = z.union([z.object({ document: DocSchema, score: z.number().optional() }).loose(), DocSchema]);
const RetrieveResponse = z.object({ result: z.array(z.array(HitSchema)) });

function docToPassage(doc: z.infer<typeof DocSchema>, score: number | undefined): Passage {
  if (typeof doc === "string") {
    // retrieve-then-rerank variant: "(Title: T) text"
    const m = /^\(Title: ([\s\S]*?)\) ([\s\S]*)$/.exec(doc);
    return { id: "", title: m ? m[1] : "", text: m ? m[2] : doc, ...(score === undefined ? {} : { score }) };
  }
  let title = doc.title ?? "";
  let text = doc.text ?? "";
  if (doc.contents !== undefined) ({ title, text } = splitContents(doc.contents));
  return { id: doc.id === undefined ? "" : String(doc.id), title, text, ...(score === undefined ? {} : { score }) };
}

/** Decide the API and the request URL from a user-supplied URL. */
export function resolveRemoteUrl(url: string, api?: RemoteApi): { url: string; api: RemoteApi; base: string } {
  const u = new URL(url);
  const p = u.pathname.replace(/\/+$/, "");
  if (p.endsWith("/queries") || p.endsWith("/retrieve")) {
    const fromPath: RemoteApi = p.endsWith("/queries") ? "queries" : "retrieve";
    const a = api ?? fromPath;
    const basePath = p.slice(0, p.lastIndexOf("/"));
    const base = `${u.origin}${basePath}`;
    return { url: a === fromPath ? `${u.origin}${p}${u.search}` : `${base}/${a}${u.search}`, api: a, base };
  }
  const a = api ?? "retrieve";
  const base = `${u.origin}${p}`;
  return { url: `${base}/${a}${u.search}`, api: a, base };
}

export class RemoteRetriever implements Retriever {
  readonly name: string;
  readonly api: RemoteApi;
  readonly url: string;
  private readonly base: string;

  constructor(
    url: string,
    private readonly opts: RemoteRetrieverOptions = {},
  ) {
    const r = resolveRemoteUrl(url, opts.api);
    this.url = r.url;
    this.api = r.api;
    this.base = r.base;
    this.name = opts.name ?? `remote:${this.url}`;
  }

  private request<T>(body: unknown, signal?: AbortSignal): Promise<T> {
    return requestJson<T>(this.url, {
      method: "POST",
      body,
      headers: this.opts.headers,
      timeoutMs: this.opts.timeoutMs ?? 60_000,
      attempts: this.opts.attempts ?? 4,
      backoffMs: this.opts.backoffMs ?? 500,
      signal,
    });
  }

  async search(queries: readonly string[], k: number, opts: SearchOptions = {}): Promise<Passage[][]> {
    if (queries.length === 0) return [];
    if (this.api === "queries") {
      const raw = await this.request<unknown>({ queries, k }, opts.signal);
      const r = QueriesResponse.safeParse(raw);
      if (!r.success)
        throw new Error(`${this.url}: response is not {"answers": [[string]]} (${r.error.issues[0]?.message})`);
      if (r.data.answers.length !== queries.length)
        throw new Error(`${this.url}: ${r.data.answers.length} answer lists for ${queries.length} queries`);
      return r.data.answers.map((lines) => lines.slice(0, k).map(parseRawPassageLine));
    }
    const raw = await this.request<unknown>({ queries, topk: k, return_scores: true }, opts.signal);
    const r = RetrieveResponse.safeParse(raw);
    if (!r.success) throw new Error(`${this.url}: response is not {"result": [[hit]]} (${r.error.issues[0]?.message})`);
    if (r.data.result.length !== queries.length)
      throw new Error(`${this.url}: ${r.data.result.length} result lists for ${queries.length} queries`);
    return r.data.result.map((hits) =>
      hits
        .slice(0, k)
        .map((h) =>
          typeof h === "object" && "document" in h
            ? docToPassage(h.document as z.infer<typeof DocSchema>, h.score as number | undefined)
            : docToPassage(h, undefined),
        ),
    );
  }

  async info(): Promise<RetrieverInfo> {
    try {
      const h = await requestJson<Record<string, unknown>>(`${this.base}/health`, {
        timeoutMs: 5000,
        headers: this.opts.headers,
      });
      return {
        ...h,
        kind: "remote",
        size: typeof h.size === "number" ? h.size : -1,
        api: this.api,
        url: this.url,
        remoteKind: h.kind,
      };
    } catch {
      return { kind: "remote", size: -1, api: this.api, url: this.url };
    }
  }

  async close(): Promise<void> {}
}
