/**
 * Reading the persisted postings (`postings-format.ts`) into typed arrays with their structural checks, and the
 * per-row and per-posting length codes the engine derives from them. Used by {@link PostingsIndex} and the writer.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { BM25_B, BM25_K1 } from "./memory.js";
import {
  corrupt,
  POSTINGS_FORMAT,
  POSTINGS_HEADER,
  POSTINGS_VERSION,
  PostingsHeaderSchema,
  readTypedFile,
  segmentFiles,
  type PostingsHeader,
  type SegmentMeta,
} from "./postings-format.js";

/** The length code of each posting's row, in posting order. */
export function postingCodes(
  docs: Int32Array,
  code: Uint8Array | Uint16Array | Int32Array,
): Uint8Array | Uint16Array | Int32Array {
  const out =
    code instanceof Uint8Array
      ? new Uint8Array(docs.length)
      : code instanceof Uint16Array
        ? new Uint16Array(docs.length)
        : new Int32Array(docs.length);
  for (let i = 0; i < docs.length; i++) out[i] = code[docs[i]];
  return out;
}

/** BM25 length normalisation per document, exactly as the in-memory scorer computes it. */
export function lengthNorms(lens: Int32Array, avgdl: number): Float64Array {
  const norm = new Float64Array(lens.length);
  for (let d = 0; d < lens.length; d++) norm[d] = BM25_K1 * (1 - BM25_B + (BM25_B * lens[d]) / (avgdl || 1));
  return norm;
}

/** Rows coded by length: the BM25 norm of row d is `normOfCode[code[d]]` (equal to `lengthNorms(lens, avgdl)[d]`). */
export interface LengthCodes {
  /** 1 byte per row when there are at most 256 distinct lengths, else 2 (4 beyond 65 536). */
  code: Uint8Array | Uint16Array | Int32Array;
  normOfCode: Float64Array;
}

/**
 * Code rows by their length. The norm depends on the length only, so a small table indexed by a 1- or 2-byte code per
 * row keeps the per-posting lookup in cache (an 8-byte norm per row misses the cache at a million rows).
 */
export function lengthCodes(lens: Int32Array, avgdl: number): LengthCodes {
  const codes = new Map<number, number>();
  for (let d = 0; d < lens.length; d++) if (!codes.has(lens[d])) codes.set(lens[d], codes.size);
  const normOfCode = lengthNorms(Int32Array.from(codes.keys()), avgdl);
  const n = lens.length;
  const code = codes.size <= 256 ? new Uint8Array(n) : codes.size <= 65536 ? new Uint16Array(n) : new Int32Array(n);
  for (let d = 0; d < n; d++) code[d] = codes.get(lens[d])!;
  return { code, normOfCode };
}

export interface SegmentArrays {
  terms: Uint8Array;
  termOff: Uint32Array;
  start: Int32Array;
  docs: Int32Array;
  tfs: Uint16Array;
  lens: Int32Array;
  /** Absent when read with `blockMax: false` (while the writer computes them). */
  bmax: Float64Array | null;
}

/**
 * Read one segment's files, checking sizes against the header and the structure (offsets monotone and in range, rows
 * strictly ascending within each term and inside the segment, tf ≥ 1, lengths summing to the segment's tokens, block
 * bounds in [0, 1)). Errors name the file.
 */
export function readSegmentArrays(
  dir: string,
  meta: SegmentMeta,
  blockSize: number,
  opts: { blockMax?: boolean } = {},
): SegmentArrays {
  const f = segmentFiles(dir, meta.name);
  const V = meta.terms;
  const P = meta.postings;
  const termOff = readTypedFile(f.termOff, Uint32Array, V + 1);
  if (termOff[0] !== 0 || termOff[V] !== meta.termBytes) throw corrupt(f.termOff, "term offsets do not span the terms");
  for (let i = 0; i < V; i++)
    if (termOff[i + 1] <= termOff[i]) throw corrupt(f.termOff, `empty or decreasing term offset at term ${i}`);
  const terms = readTypedFile(f.terms, Uint8Array, meta.termBytes);
  const start = readTypedFile(f.start, Int32Array, V + 1);
  if (start[0] !== 0 || start[V] !== P) throw corrupt(f.start, `posting offsets do not span the ${P} postings`);
  let blocks = 0;
  for (let t = 0; t < V; t++) {
    const df = start[t + 1] - start[t];
    if (df <= 0) throw corrupt(f.start, `term ${t} has no postings`);
    blocks += Math.ceil(df / blockSize);
  }
  if (blocks !== meta.blocks)
    throw corrupt(f.start, `${blocks} blocks of ${blockSize} postings, header says ${meta.blocks}`);
  const lens = readTypedFile(f.lens, Int32Array, meta.rows);
  let tokens = 0;
  for (let d = 0; d < meta.rows; d++) {
    if (lens[d] < 0) throw corrupt(f.lens, `negative length at row ${d}`);
    tokens += lens[d];
  }
  if (tokens !== meta.tokens) throw corrupt(f.lens, `lengths sum to ${tokens}, header says ${meta.tokens}`);
  const docs = readTypedFile(f.docs, Int32Array, P);
  const rows = meta.rows;
  for (let t = 0; t < V; t++) {
    let prev = -1;
    const e = start[t + 1];
    for (let i = start[t]; i < e; i++) {
      const d = docs[i];
      if (d <= prev || d >= rows) throw corrupt(f.docs, `row ${d} out of order or range in the postings of term ${t}`);
      prev = d;
    }
  }
  const tfs = readTypedFile(f.tfs, Uint16Array, P);
  for (let i = 0; i < P; i++) if (tfs[i] === 0) throw corrupt(f.tfs, `zero term frequency at posting ${i}`);
  let bmax: Float64Array | null = null;
  if (opts.blockMax !== false) {
    bmax = readTypedFile(f.bmax, Float64Array, meta.blocks);
    for (let i = 0; i < meta.blocks; i++)
      if (!(bmax[i] > 0 && bmax[i] < 1)) throw corrupt(f.bmax, `block bound ${bmax[i]} at block ${i} not in (0, 1)`);
  }
  return { terms, termOff, start, docs, tfs, lens, bmax };
}

/** Read and validate `postings.json`. */
export function readPostingsHeader(dir: string): PostingsHeader {
  const file = path.join(dir, POSTINGS_HEADER);
  if (!existsSync(file)) throw new Error(`${file} is missing: the index has no BM25 postings (rebuild the index)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw corrupt(file, `invalid JSON (${(err as Error).message})`);
  }
  const version = (raw as { format?: unknown; version?: unknown } | null)?.version;
  if ((raw as { format?: unknown } | null)?.format === POSTINGS_FORMAT && version !== POSTINGS_VERSION)
    throw new Error(
      `${file}: BM25 postings format version ${JSON.stringify(version)}; this searchrl reads version ${POSTINGS_VERSION}: ` +
        "rebuild the index with this version (searchrl index build --bm25 --corpus FILE --out DIR)",
    );
  const r = PostingsHeaderSchema.safeParse(raw);
  if (!r.success)
    throw corrupt(
      file,
      `not a valid header (${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")})`,
    );
  const h = r.data;
  if (h.k1 !== BM25_K1 || h.b !== BM25_B) throw corrupt(file, `scoring k1=${h.k1} b=${h.b} differs from this engine's`);
  let row = 0;
  let tokens = 0;
  for (const s of h.segments) {
    if (s.firstRow !== row) throw corrupt(file, `segment ${s.name} starts at row ${s.firstRow}, expected ${row}`);
    row += s.rows;
    tokens += s.tokens;
  }
  if (row !== h.size || tokens !== h.tokens) throw corrupt(file, "segment rows/tokens do not add up to the totals");
  if (h.avgdl !== (h.size > 0 ? h.tokens / h.size : 0)) throw corrupt(file, "avgdl is not tokens / size");
  return h;
}
