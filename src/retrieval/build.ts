/**
 * `buildIndex`: stream a corpus once into an index directory (passage store, BM25 and/or dense vectors).
 *
 * The build runs in a temporary sibling directory that replaces `out` only when everything, `manifest.json` last, is
 * written (util `atomicWriteDir`). An interrupted build therefore leaves `out` as it was (the previous index, or
 * nothing); leftover temporary directories of dead processes are removed by the next build.
 */
import { existsSync, promises as fsp, statSync, createWriteStream, type WriteStream } from "node:fs";
import path from "node:path";
import type { Passage } from "../util/types.js";
import { atomicWriteDir, atomicWriteJson } from "../util/fsutil.js";
import { Progress } from "../util/progress.js";
import { VERSION } from "../version.js";
import { detectCorpusFormat, readCorpus, type CorpusFormat } from "../corpus/readers.js";
import { Analyzer, type AnalyzerOptions } from "./bm25/analyzer.js";
import { LanceFtsWriter } from "./bm25/lance.js";
import { BM25_B, BM25_K1 } from "./bm25/memory.js";
import { POSTINGS_DIR, POSTINGS_VERSION } from "./bm25/postings-format.js";
import { PostingsWriter, type PostingsSummary, type PostingsWriterOptions } from "./bm25/postings-writer.js";
import {
  embeddingPreset,
  findModelFiles,
  OnnxEmbedder,
  type EmbeddingConfig,
  type EmbeddingPresetName,
  type EmbeddingPresetOptions,
} from "./dense/encoder.js";
import { buildVectorIndex, VECTORS_FILE, type BuildVectorIndexOptions } from "./dense/vector-index.js";
import { INDEX_FORMAT, INDEX_FORMAT_VERSION, MANIFEST_FILE, type IndexManifest } from "./manifest.js";
import { PassageStoreWriter, STORE_DATA_FILE, STORE_OFFSETS_FILE } from "./store.js";

export interface DenseBuildOptions {
  /** Local model folder (model.onnx + tokenizer.json). */
  model: string;
  /** Embedding conventions (default "bge", R1-Searcher style). */
  preset?: EmbeddingPresetName;
  presetOptions?: EmbeddingPresetOptions;
  /** Vector index options (type, nlist, nprobe, PCA width...). */
  index?: BuildVectorIndexOptions;
  /** Passages per ONNX run (default 32) and ONNX Runtime threads (default 2 while building). */
  batchSize?: number;
  threads?: number;
}

export interface BuildIndexOptions {
  /** A corpus file (any supported format) or passages. */
  corpus: string | AsyncIterable<Passage> | Iterable<Passage>;
  out: string;
  format?: CorpusFormat | "auto";
  textField?: string;
  titleField?: string;
  idField?: string;
  /**
   * Build a BM25 index (default true unless `dense` is given): LanceDB FTS plus the persisted postings of the exact
   * DAAT engine (`postings: false` leaves them out; `{segmentSize, blockSize}` tunes them).
   */
  bm25?: boolean | { analyzer?: AnalyzerOptions; postings?: boolean | PostingsWriterOptions };
  dense?: DenseBuildOptions;
  /** Only index the first `limit` passages. */
  limit?: number;
  /** Print a progress line (default true). */
  progress?: boolean;
  signal?: AbortSignal;
}

/** Remove temporary build directories next to `out` whose process is gone. */
export async function cleanStaleBuilds(out: string): Promise<string[]> {
  const parent = path.dirname(path.resolve(out));
  const base = path.basename(path.resolve(out));
  const removed: string[] = [];
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return removed;
  }
  const prefix = `.${base}.tmp-`;
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    let alive = false;
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === "EPERM";
      }
    }
    if (!alive) {
      await fsp.rm(path.join(parent, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

async function* toAsync(src: AsyncIterable<Passage> | Iterable<Passage>): AsyncGenerator<Passage> {
  for await (const p of src as AsyncIterable<Passage>) yield p;
}

function writeAll(ws: WriteStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = ws.write(data, (err) => (err ? reject(err) : undefined));
    if (ok) resolve();
    else ws.once("drain", () => resolve());
  });
}

/** Build an index directory; resolves with its manifest. */
export async function buildIndex(opts: BuildIndexOptions): Promise<IndexManifest> {
  const t0 = Date.now();
  const wantBm25 = opts.bm25 === undefined ? !opts.dense : opts.bm25 !== false;
  if (!wantBm25 && !opts.dense) throw new Error("buildIndex: nothing to build (enable bm25 and/or dense)");
  if (typeof opts.corpus === "string" && !existsSync(opts.corpus))
    throw new Error(`corpus file ${opts.corpus} does not exist`);
  const corpusFormat =
    typeof opts.corpus === "string"
      ? opts.format && opts.format !== "auto"
        ? opts.format
        : await detectCorpusFormat(opts.corpus)
      : null;
  let denseConfig: EmbeddingConfig | null = null;
  let modelFile: string | null = null;
  if (opts.dense) {
    modelFile = findModelFiles(opts.dense.model).model;
    denseConfig = embeddingPreset(opts.dense.preset ?? "bge", opts.dense.presetOptions);
  }
  await cleanStaleBuilds(opts.out);

  return atomicWriteDir(opts.out, async (tmp) => {
    let inputBytes = 0;
    const inputSize = typeof opts.corpus === "string" ? statSync(opts.corpus).size : 0;
    const source =
      typeof opts.corpus === "string"
        ? readCorpus(opts.corpus, {
            format: corpusFormat!,
            textField: opts.textField,
            titleField: opts.titleField,
            idField: opts.idField,
            onBytes: (n) => (inputBytes = n),
          })
        : toAsync(opts.corpus);
    const store = new PassageStoreWriter(tmp);
    const analyzerOpts = typeof opts.bm25 === "object" ? opts.bm25.analyzer : undefined;
    const analyzer = wantBm25 ? new Analyzer(analyzerOpts) : null;
    let fts: LanceFtsWriter | null = null;
    let postings: PostingsWriter | null = null;
    if (analyzer) {
      await fsp.mkdir(path.join(tmp, "bm25"));
      fts = await LanceFtsWriter.create(path.join(tmp, "bm25"));
      const po = typeof opts.bm25 === "object" ? opts.bm25.postings : undefined;
      if (po !== false)
        postings = await PostingsWriter.create(path.join(tmp, "bm25", POSTINGS_DIR), typeof po === "object" ? po : {});
    }
    let embedder: OnnxEmbedder | null = null;
    let vec: WriteStream | null = null;
    let pendingDense: Passage[] = [];
    const denseBatch = opts.dense?.batchSize ?? 32;
    if (opts.dense && denseConfig) {
      embedder = await OnnxEmbedder.open(opts.dense.model, denseConfig, {
        threads: opts.dense.threads ?? 2,
        batchSize: denseBatch,
      });
      await fsp.mkdir(path.join(tmp, "dense"));
      vec = createWriteStream(path.join(tmp, "dense", VECTORS_FILE), { highWaterMark: 1 << 20 });
    }
    const flushDense = async () => {
      if (!embedder || !vec || pendingDense.length === 0) return;
      const v = await embedder.embedPassages(pendingDense);
      await writeAll(vec, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      pendingDense = [];
    };
    let tokens = 0;
    const progress = new Progress({
      label: "index",
      unit: "passages",
      silent: opts.progress === false,
      extra: () => (inputSize > 0 ? `| ${((100 * inputBytes) / inputSize).toFixed(1)}% of input` : ""),
    });
    try {
      for await (const p of source) {
        if (opts.limit !== undefined && store.count >= opts.limit) break;
        opts.signal?.throwIfAborted();
        const row = await store.add(p);
        if (analyzer && fts) {
          const terms = analyzer.terms(p.title ? `${p.title}\n${p.text}` : p.text);
          tokens += terms.length;
          await fts.add(row, terms);
          if (postings) await postings.add(terms);
        }
        if (embedder) {
          pendingDense.push(p);
          if (pendingDense.length >= denseBatch) await flushDense();
        }
        progress.tick();
      }
      const size = await store.close();
      let bm25: IndexManifest["bm25"] = null;
      let postingsSeconds: number | undefined;
      if (analyzer && fts) {
        // The postings (JS, this thread) are finished while LanceDB builds its FTS index natively.
        const ftsDone = fts.finish();
        let summary: PostingsSummary | null = null;
        try {
          summary = postings ? await postings.finish() : null;
        } finally {
          await ftsDone;
        }
        fts = null;
        postingsSeconds = summary?.seconds;
        bm25 = {
          path: "bm25",
          engine: "lancedb-fts",
          table: "terms",
          analyzer: analyzer.config,
          tokens,
          avgdl: size > 0 ? tokens / size : 0,
          scoring: { k1: BM25_K1, b: BM25_B },
          ...(summary
            ? {
                postings: {
                  path: POSTINGS_DIR,
                  version: POSTINGS_VERSION,
                  segments: summary.segments,
                  segmentSize: summary.segmentSize,
                  blockSize: summary.blockSize,
                  postings: summary.postings,
                  bytes: summary.bytes,
                },
              }
            : {}),
        };
      }
      let dense: IndexManifest["dense"] = null;
      if (embedder && vec && denseConfig && opts.dense) {
        await flushDense();
        await new Promise<void>((resolve, reject) => vec!.end((err?: Error | null) => (err ? reject(err) : resolve())));
        const dim = embedder.dim;
        const index = await buildVectorIndex(path.join(tmp, "dense"), dim, size, {
          progress: opts.progress,
          ...opts.dense.index,
        });
        dense = {
          path: "dense",
          encoder: {
            ...denseConfig,
            model: path.resolve(opts.dense.model),
            modelBytes: statSync(modelFile!).size,
            dim,
          },
          index,
        };
      }
      progress.finish();
      const manifest: IndexManifest = {
        format: INDEX_FORMAT,
        version: INDEX_FORMAT_VERSION,
        kind: bm25 && dense ? "hybrid" : dense ? "dense" : "bm25",
        size,
        created: new Date().toISOString(),
        searchrl: VERSION,
        corpus: { source: typeof opts.corpus === "string" ? path.resolve(opts.corpus) : null, format: corpusFormat },
        store: { data: STORE_DATA_FILE, offsets: STORE_OFFSETS_FILE },
        bm25,
        dense,
        build: {
          seconds: (Date.now() - t0) / 1000,
          ...(postingsSeconds !== undefined ? { postingsSeconds } : {}),
        },
      };
      await atomicWriteJson(path.join(tmp, MANIFEST_FILE), manifest);
      return manifest;
    } finally {
      vec?.destroy();
      await embedder?.close();
    }
  });
}
