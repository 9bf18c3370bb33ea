/**
 * The index directory's `manifest.json`: written last, so a directory without it (or with an unreadable one) is never
 * opened as an index. Layout of an index directory:
 *
 * ```
 * DIR/
 *   manifest.json        this file (format "searchrl-index", version 1)
 *   passages.jsonl       passage store: one JSON array [id, title, text(, raw)] per row
 *   passages.offsets     float64 byte offsets of the rows (N + 1)
 *   bm25/postings/       persisted postings of the exact DAAT engine (bm25/postings-format.ts; indexes built
 *                        since the "postings" engine exists; older indexes lack it and still open)       (BM25 indexes)
 *   bm25/                + LanceDB database: table "terms" (row int32, tok utf8) and its FTS index, when built with
 *                        the "lance" engine (and in indexes built before LanceDB was opt-in)
 *   dense/               vectors.f32 (N × dim) [+ ivf.* files of an ivf-sq8 index]                  (dense indexes)
 * ```
 */
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { EmbeddingConfigSchema } from "./dense/encoder.js";

export const INDEX_FORMAT = "searchrl-index";
export const INDEX_FORMAT_VERSION = 1;
export const MANIFEST_FILE = "manifest.json";

const AnalyzerConfigSchema = z.object({
  name: z.literal("searchrl-en-v1"),
  stem: z.enum(["porter", "none"]),
  stopwords: z.enum(["english", "none"]),
  maxTokenLength: z.number().int().positive(),
});

const VectorIndexMetaSchema = z.object({
  type: z.enum(["flat", "ivf-sq8"]),
  dim: z.number().int().positive(),
  size: z.number().int().nonnegative(),
  metric: z.literal("ip"),
  nlist: z.number().int().positive().optional(),
  pcaDims: z.number().int().nonnegative().optional(),
  nprobe: z.number().int().positive().optional(),
  rerank: z.number().int().positive().optional(),
  trainSample: z.number().int().nonnegative().optional(),
  iterations: z.number().int().nonnegative().optional(),
});

export const IndexManifestSchema = z.object({
  format: z.literal(INDEX_FORMAT),
  version: z.literal(INDEX_FORMAT_VERSION),
  kind: z.enum(["bm25", "dense", "hybrid"]),
  size: z.number().int().nonnegative(),
  created: z.string(),
  searchrl: z.string(),
  corpus: z.object({ source: z.string().nullable(), format: z.string().nullable() }),
  store: z.object({ data: z.string(), offsets: z.string() }),
  bm25: z
    .object({
      path: z.string(),
      /** "postings": the exact engine's postings only; "lancedb-fts": a LanceDB table (`table`) with its FTS index too. */
      engine: z.enum(["postings", "lancedb-fts"]),
      table: z.string().optional(),
      analyzer: AnalyzerConfigSchema,
      tokens: z.number().int().nonnegative(),
      avgdl: z.number().nonnegative(),
      scoring: z.object({ k1: z.number(), b: z.number() }),
      /** The persisted postings (absent in indexes built before they existed, or built without them). */
      postings: z
        .object({
          path: z.string(),
          version: z.number().int().positive(),
          segments: z.number().int().nonnegative(),
          segmentSize: z.number().int().positive(),
          blockSize: z.number().int().positive(),
          postings: z.number().int().nonnegative(),
          bytes: z.number().int().nonnegative(),
        })
        .optional(),
    })
    .nullable(),
  dense: z
    .object({
      path: z.string(),
      encoder: EmbeddingConfigSchema.extend({
        /** The model folder used at build time (absolute); override with `modelDir` when opening. */
        model: z.string(),
        /** Size in bytes of the ONNX file, checked when the index is opened. */
        modelBytes: z.number().int().nonnegative(),
        dim: z.number().int().positive(),
      }),
      index: VectorIndexMetaSchema,
    })
    .nullable(),
  build: z.object({ seconds: z.number().nonnegative() }).loose(),
});
export type IndexManifest = z.infer<typeof IndexManifestSchema>;

/** Read and validate `DIR/manifest.json`; errors say what is missing and how to fix it. */
export function readIndexManifest(dir: string): IndexManifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!existsSync(dir))
    throw new Error(`index directory ${dir} does not exist (build one with \`searchrl index build\`)`);
  if (!existsSync(file))
    throw new Error(
      `${dir} is not a searchrl index: ${MANIFEST_FILE} is missing (an unfinished build never writes it; rebuild with \`searchrl index build\`)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
  const r = IndexManifestSchema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`${file}: not a valid searchrl index manifest (${msg})`);
  }
  return r.data;
}

/** True when `dir` holds a readable index manifest. */
export function isIndexDir(dir: string): boolean {
  try {
    readIndexManifest(dir);
    return true;
  } catch {
    return false;
  }
}
