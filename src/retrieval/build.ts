/**
 * `buildIndex`: stream a corpus once into an index directory (passage store, BM25 and/or dense vectors).
 *
 * The build runs in a sibling work directory that replaces `out` only when everything, `manifest.json` last, is
 * written. An interrupted build therefore leaves `out` as it was (the previous index, or nothing). A BM25 build from a
 * corpus file with the default engine is resumable (`build-resume.ts`): killed mid-way, the next build of the same
 * `out` goes on from its last finished postings segment. Other builds (LanceDB, dense, passages from an iterable) use
 * a per-process temporary directory (util `atomicWriteDir`); leftovers of dead processes are removed by the next build.
 *
 * BM25 engines: "postings" (default) writes only the persisted postings of the exact DAAT engine; "lance" also writes
 * a LanceDB FTS table and index (LanceDB is then loaded; it is an optional dependency).
 */
import { existsSync, promises as fsp, statSync, createWriteStream, type WriteStream } from "node:fs";
import path from "node:path";
import type { Passage } from "../util/types.js";
import { atomicWriteDir, atomicWriteJson } from "../util/fsutil.js";
import { formatDuration, Progress } from "../util/progress.js";
import { VERSION } from "../version.js";
import { detectCorpusFormat, readCorpus, type CorpusFormat } from "../corpus/readers.js";
import { Analyzer, type AnalyzerOptions } from "./bm25/analyzer.js";
import { LANCE_TABLE, LanceFtsWriter } from "./bm25/lance.js";
import { BM25_B, BM25_K1 } from "./bm25/memory.js";
import { DEFAULT_BLOCK_SIZE, DEFAULT_SEGMENT_SIZE, POSTINGS_DIR, POSTINGS_VERSION } from "./bm25/postings-format.js";
import {
  buildKey,
  claimResumeDir,
  finishResumeDir,
  releaseResumeDir,
  writeCheckpoint,
  type BuildState,
} from "./build-resume.js";
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

/** "postings": the exact engine's postings only (default); "lance": LanceDB FTS as well. */
export type Bm25BuildEngine = "postings" | "lance";

export interface BuildIndexOptions {
  /** A corpus file (any supported format) or passages. */
  corpus: string | AsyncIterable<Passage> | Iterable<Passage>;
  out: string;
  format?: CorpusFormat | "auto";
  textField?: string;
  titleField?: string;
  idField?: string;
  /**
   * Build a BM25 index (default true unless `dense` is given): the persisted postings of the exact DAAT engine
   * (`{segmentSize, blockSize}` tunes them), plus a LanceDB FTS index with `engine: "lance"` (there, `postings: false`
   * leaves the postings out).
   */
  bm25?: boolean | { analyzer?: AnalyzerOptions; postings?: boolean | PostingsWriterOptions; engine?: Bm25BuildEngine };
  /** Resume a killed BM25 build from its last finished segment where possible (default true). */
  resume?: boolean;
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

/** The progress line's tail: share of the input read and the ETA from this run's byte rate (or the row limit). */
function progressExtra(
  bytes: number,
  bytesAtStart: number,
  size: number,
  runStart: number,
  limit: number | undefined,
  rows: number,
): string {
  if (size <= 0) return "";
  const sec = (Date.now() - runStart) / 1000;
  const done = bytesAtStart < 0 ? 0 : bytes - bytesAtStart;
  const rate = sec > 0 ? done / sec : 0;
  let eta = rate > 0 ? (size - bytes) / rate : Infinity;
  if (limit !== undefined && rows > 0 && rows < limit && bytes > 0) eta = Math.min(eta, ((limit - rows) / rows) * sec);
  return `| ${((100 * bytes) / size).toFixed(1)}% of input, ${(rate / 1e6).toFixed(1)} MB/s, ETA ${formatDuration(eta)}`;
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
  const bm25Opts = typeof opts.bm25 === "object" ? opts.bm25 : {};
  const engine: Bm25BuildEngine = bm25Opts.engine ?? "postings";
  if (engine !== "postings" && engine !== "lance")
    throw new Error(`buildIndex: unknown BM25 engine "${String(engine)}" (postings or lance)`);
  if (wantBm25 && engine === "postings" && bm25Opts.postings === false)
    throw new Error('buildIndex: the "postings" engine needs its postings (postings: false only with engine "lance")');
  const postingsOpts: PostingsWriterOptions = typeof bm25Opts.postings === "object" ? bm25Opts.postings : {};
  const analyzerCfg = wantBm25 ? new Analyzer(bm25Opts.analyzer).config : null;
  const resumable =
    opts.resume !== false && wantBm25 && engine === "postings" && !opts.dense && typeof opts.corpus === "string";
  if (!resumable) return atomicWriteDir(opts.out, (tmp) => buildInto(tmp, null));
  const key = buildKey({
    corpus: opts.corpus as string,
    format: corpusFormat,
    textField: opts.textField ?? null,
    titleField: opts.titleField ?? null,
    idField: opts.idField ?? null,
    limit: opts.limit ?? null,
    analyzer: analyzerCfg,
    segmentSize: postingsOpts.segmentSize ?? DEFAULT_SEGMENT_SIZE,
    blockSize: postingsOpts.blockSize ?? DEFAULT_BLOCK_SIZE,
    searchrl: VERSION,
  });
  const claim = await claimResumeDir(opts.out, key);
  let manifest: IndexManifest;
  try {
    manifest = await buildInto(claim.dir, { key, state: claim.state });
  } catch (err) {
    await releaseResumeDir(claim.dir);
    throw err;
  }
  await finishResumeDir(claim.dir, opts.out);
  return manifest;

  async function buildInto(
    tmp: string,
    resume: { key: string; state: BuildState | null } | null,
  ): Promise<IndexManifest> {
    const state = resume?.state ?? null;
    const skip = state?.store.rows ?? 0;
    let inputBytes = 0;
    let inputAtStart = -1;
    const runStart = Date.now();
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
    const store = new PassageStoreWriter(tmp, state?.store);
    const analyzer = wantBm25 ? new Analyzer(bm25Opts.analyzer) : null;
    let fts: LanceFtsWriter | null = null;
    let postings: PostingsWriter | null = null;
    if (analyzer) {
      await fsp.mkdir(path.join(tmp, "bm25"), { recursive: true });
      if (engine === "lance") fts = await LanceFtsWriter.create(path.join(tmp, "bm25"));
      if (bm25Opts.postings !== false)
        postings = await PostingsWriter.create(
          path.join(tmp, "bm25", POSTINGS_DIR),
          postingsOpts,
          state ? { segments: state.segments } : undefined,
        );
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
    let tokens = state?.tokens ?? 0;
    const progress = new Progress({
      label: "index",
      unit: "passages",
      silent: opts.progress === false,
      extra: () =>
        progressExtra(
          inputBytes,
          inputAtStart,
          inputSize,
          runStart,
          opts.limit === undefined ? undefined : opts.limit - skip,
          store.count - skip,
        ),
    });
    if (state && opts.progress !== false)
      process.stderr.write(
        `index: resuming ${opts.out} from row ${skip} (${state.segments.length} finished segment(s) kept)\n`,
      );
    let seen = 0;
    try {
      for await (const p of source) {
        if (seen < skip) {
          // Already in a finished segment (resumed build): read, not stored or analyzed again.
          seen++;
          continue;
        }
        if (inputAtStart < 0) inputAtStart = inputBytes;
        if (opts.limit !== undefined && store.count >= opts.limit) break;
        opts.signal?.throwIfAborted();
        const row = await store.add(p);
        if (analyzer) {
          const terms = analyzer.terms(p.title ? `${p.title}\n${p.text}` : p.text);
          tokens += terms.length;
          if (fts) await fts.add(row, terms);
          if (postings && (await postings.add(terms)) && resume)
            await writeCheckpoint(tmp, {
              key: resume.key,
              store: await store.sync(),
              tokens,
              segments: postings.checkpoint.segments,
            });
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
      if (seen < skip)
        throw new Error(
          `${String(opts.corpus)}: has ${seen} passages, fewer than the ${skip} of the build being resumed`,
        );
      if (analyzer) {
        // The postings (JS, this thread) are finished while LanceDB builds its FTS index natively.
        const ftsDone = fts ? fts.finish() : Promise.resolve();
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
          engine: engine === "lance" ? "lancedb-fts" : "postings",
          ...(engine === "lance" ? { table: LANCE_TABLE } : {}),
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
          ...(state ? { resumedFromRow: skip } : {}),
          // The building process's high-water mark (this run; a resumed build's earlier runs are not included).
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
        },
      };
      await atomicWriteJson(path.join(tmp, MANIFEST_FILE), manifest);
      return manifest;
    } finally {
      vec?.destroy();
      await embedder?.close();
    }
  }
}
