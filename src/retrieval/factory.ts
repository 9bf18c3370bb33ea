/**
 * `openRetriever(spec, opts)`: one entry point for every search engine.
 *
 * | spec | retriever |
 * |---|---|
 * | an index directory | kind read from its `manifest.json`: bm25, dense, or hybrid (RRF of both; `mode` picks one) |
 * | `http(s)://host:port/queries` | R1-Searcher server (remote) |
 * | `http(s)://host:port/retrieve` or any other URL | Search-R1 server (remote; `api` option overrides) |
 * | `web:PROVIDER` | a web-search provider (src/retrieval/web) |
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Retriever } from "./types.js";
import { readIndexManifest, type IndexManifest } from "./manifest.js";
import { PassageStore } from "./store.js";
import { Bm25Retriever, openBm25Engine, type Bm25EngineName } from "./bm25/retriever.js";
import { OnnxEmbedder, findModelFiles } from "./dense/encoder.js";
import { VectorIndex } from "./dense/vector-index.js";
import { DenseRetriever } from "./dense/retriever.js";
import { HybridRetriever } from "./hybrid.js";
import { RemoteRetriever, type RemoteApi } from "./remote.js";
import { createWebRetriever, type WebRetrieverOptions } from "./web/index.js";

export interface OpenRetrieverOptions {
  /** Index directories: which part to use (default "auto": hybrid when both are present). */
  mode?: "auto" | "bm25" | "dense" | "hybrid";
  /**
   * BM25 engine: "auto" (default: "postings" when the index has persisted postings; for older indexes in memory up to
   * `memoryMaxPassages` = 100 000 passages, else LanceDB), "postings", "memory" or "lancedb".
   */
  bm25Engine?: "auto" | Bm25EngineName;
  memoryMaxPassages?: number;
  /** Dense: the model folder, when it moved since the build (default: the path in the manifest). */
  modelDir?: string;
  /** Dense: ONNX Runtime threads for query encoding (default 1). */
  threads?: number;
  /** Dense (ivf-sq8): lists probed and candidates re-ranked (defaults from the manifest). */
  nprobe?: number;
  rerank?: number;
  /** Hybrid: RRF constant (default 60). */
  rrfK?: number;
  /** Remote: API (default from the URL path) and client settings. */
  api?: RemoteApi;
  timeoutMs?: number;
  attempts?: number;
  headers?: Record<string, string>;
  /** Web: provider, pipeline, summarizer and cache options (see src/retrieval/web). */
  web?: WebRetrieverOptions;
}

/** Open the parts of an index directory. */
export async function openIndex(
  dir: string,
  opts: OpenRetrieverOptions = {},
): Promise<{ manifest: IndexManifest; retriever: Retriever }> {
  const manifest = readIndexManifest(dir);
  const mode = opts.mode ?? "auto";
  const wantBm25 = mode === "bm25" || mode === "hybrid" || (mode === "auto" && manifest.bm25 !== null);
  const wantDense = mode === "dense" || mode === "hybrid" || (mode === "auto" && manifest.dense !== null);
  if (wantBm25 && !manifest.bm25)
    throw new Error(`${dir}: the index has no BM25 part (kind ${manifest.kind}); rebuild with --bm25`);
  if (wantDense && !manifest.dense)
    throw new Error(`${dir}: the index has no dense part (kind ${manifest.kind}); rebuild with --dense MODEL_DIR`);
  const parts: Retriever[] = [];
  try {
    if (wantBm25 && manifest.bm25) {
      const store = PassageStore.open(dir);
      const engine = await openBm25Engine(path.join(dir, manifest.bm25.path), manifest.size, {
        engine: opts.bm25Engine,
        memoryMaxPassages: opts.memoryMaxPassages,
        hasPostings: manifest.bm25.postings !== undefined,
      });
      parts.push(new Bm25Retriever(engine, store, manifest.bm25.analyzer));
    }
    if (wantDense && manifest.dense) {
      const d = manifest.dense;
      const modelDir = opts.modelDir ?? d.encoder.model;
      if (!existsSync(modelDir))
        throw new Error(
          `${dir}: the dense index was built with the model folder ${modelDir}, which does not exist; pass modelDir (--model) to point at it`,
        );
      const modelFile = findModelFiles(modelDir).model;
      if (statSync(modelFile).size !== d.encoder.modelBytes)
        throw new Error(
          `${modelFile} (${statSync(modelFile).size} bytes) is not the model the index was built with (${d.encoder.modelBytes} bytes)`,
        );
      const { model: _m, modelBytes: _b, dim: _d, ...config } = d.encoder;
      void _m;
      void _b;
      void _d;
      const embedder = await OnnxEmbedder.open(modelDir, config, { threads: opts.threads ?? 1 });
      const vindex = VectorIndex.open(path.join(dir, d.path), d.index, { nprobe: opts.nprobe, rerank: opts.rerank });
      parts.push(new DenseRetriever(embedder, vindex, PassageStore.open(dir)));
    }
  } catch (err) {
    await Promise.all(parts.map((p) => p.close()));
    throw err;
  }
  const retriever = parts.length === 1 ? parts[0] : new HybridRetriever(parts, { k: opts.rrfK });
  return { manifest, retriever };
}

/** Open any retriever from a spec string (index directory, http(s) URL, or `web:PROVIDER`). */
export async function openRetriever(spec: string, opts: OpenRetrieverOptions = {}): Promise<Retriever> {
  if (/^https?:\/\//i.test(spec)) {
    return new RemoteRetriever(spec, {
      api: opts.api,
      timeoutMs: opts.timeoutMs,
      attempts: opts.attempts,
      // a retrieval server started with --token: the client reads the same secret from the environment
      headers: process.env.SEARCHRL_RETRIEVAL_TOKEN
        ? { authorization: `Bearer ${process.env.SEARCHRL_RETRIEVAL_TOKEN}`, ...opts.headers }
        : opts.headers,
    });
  }
  if (spec.startsWith("web:")) {
    const provider = spec.slice(4);
    if (!provider) throw new Error('web retriever spec needs a provider, e.g. "web:serper"');
    return createWebRetriever(provider, opts.web ?? {});
  }
  return (await openIndex(spec, opts)).retriever;
}
