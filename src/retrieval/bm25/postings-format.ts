/**
 * On-disk format of the persisted BM25 postings (`bm25/postings/` of an index directory), written at index build time
 * by {@link PostingsWriter} and opened by {@link PostingsIndex}.
 *
 * The corpus is cut into segments of at most `segmentSize` passages (rows `firstRow .. firstRow + rows - 1`). Each
 * segment is an independent postings set (its own term dictionary, local rows); the global statistics (N, df summed
 * over segments, avgdl) are combined at query time. Files, all little-endian typed arrays without headers:
 *
 * ```
 * postings/
 *   postings.json          header (format "searchrl-bm25-postings", version 1): N, tokens, avgdl, k1, b, blockSize,
 *                          segments [{name, firstRow, rows, tokens, terms, termBytes, postings, blocks}]; written last
 *   seg-0000.terms.utf8    the segment's terms, UTF-8, concatenated in byte order (no separators)
 *   seg-0000.termoff.u32   V + 1 byte offsets into terms.utf8
 *   seg-0000.start.i32     V + 1 posting offsets: term t owns postings [start[t], start[t+1]) (df = the difference)
 *   seg-0000.docs.i32      P segment-local rows, ascending within each term
 *   seg-0000.tfs.u16       P term frequencies (capped at 65535, as the in-memory scorer does)
 *   seg-0000.lens.i32      rows document lengths (analyzed terms per passage)
 *   seg-0000.bmax.f64      per block of `blockSize` postings of a term: max of tf / (tf + norm(d)), where
 *                          norm(d) = k1·(1 − b + b·|d|/avgdl) with the global avgdl (query upper bound = w · bmax)
 * ```
 *
 * Opening checks every file's size against the header (a truncated or replaced file is reported by name), and the
 * offsets, rows and lengths for consistency.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import path from "node:path";
import { z } from "zod";

export const POSTINGS_FORMAT = "searchrl-bm25-postings";
export const POSTINGS_VERSION = 1;
export const POSTINGS_DIR = "postings";
export const POSTINGS_HEADER = "postings.json";
/** Default passages per segment: bounds build memory (at most ~12 bytes per posting while a segment is inverted). */
export const DEFAULT_SEGMENT_SIZE = 1_000_000;
/** Default postings per block (block-max upper bounds); a power of two. */
export const DEFAULT_BLOCK_SIZE = 128;

export const SegmentMetaSchema = z.object({
  name: z.string().regex(/^seg-\d{4,}$/),
  firstRow: z.number().int().nonnegative(),
  rows: z.number().int().positive(),
  tokens: z.number().int().nonnegative(),
  terms: z.number().int().nonnegative(),
  termBytes: z.number().int().nonnegative(),
  postings: z.number().int().nonnegative().max(0x7fffffff),
  blocks: z.number().int().nonnegative(),
});
export type SegmentMeta = z.infer<typeof SegmentMetaSchema>;

export const PostingsHeaderSchema = z.object({
  format: z.literal(POSTINGS_FORMAT),
  version: z.literal(POSTINGS_VERSION),
  endianness: z.literal("LE"),
  size: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  avgdl: z.number().nonnegative(),
  k1: z.number().positive(),
  b: z.number().min(0).max(1),
  blockSize: z
    .number()
    .int()
    .min(1)
    .refine((x) => (x & (x - 1)) === 0, "blockSize must be a power of two"),
  segmentSize: z.number().int().positive(),
  segments: z.array(SegmentMetaSchema),
});
export type PostingsHeader = z.infer<typeof PostingsHeaderSchema>;

/** The files of one segment, by kind. */
export function segmentFiles(dir: string, name: string) {
  const f = (ext: string) => path.join(dir, `${name}.${ext}`);
  return {
    terms: f("terms.utf8"),
    termOff: f("termoff.u32"),
    start: f("start.i32"),
    docs: f("docs.i32"),
    tfs: f("tfs.u16"),
    lens: f("lens.i32"),
    bmax: f("bmax.f64"),
  };
}

export function segmentName(i: number): string {
  return `seg-${String(i).padStart(4, "0")}`;
}

export function assertLittleEndian(): void {
  if (endianness() !== "LE") throw new Error("BM25 postings files are little-endian; this machine is big-endian");
}

/** A corruption error that names the file and says what to do. */
export function corrupt(file: string, what: string): Error {
  return new Error(`${file}: ${what}; the BM25 postings are truncated or corrupt (rebuild the index)`);
}

type TypedCtor<T> = { new (n: number): T; readonly BYTES_PER_ELEMENT: number };

/**
 * Read a whole file into a new typed array of exactly `count` elements; throws (naming the file) when its size is not
 * `count` elements. One copy from the file into aligned memory, in chunks (no 2 GiB read limit).
 */
export function readTypedFile<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(
  file: string,
  ctor: TypedCtor<T>,
  count: number,
): T {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw corrupt(file, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const bytes = count * ctor.BYTES_PER_ELEMENT;
    const size = fstatSync(fd).size;
    if (size !== bytes)
      throw corrupt(file, `size ${size} bytes, expected ${bytes} (${count} × ${ctor.BYTES_PER_ELEMENT}-byte values)`);
    const out = new ctor(count);
    const view = new Uint8Array((out as unknown as { buffer: ArrayBuffer }).buffer, 0, bytes);
    let at = 0;
    while (at < bytes) {
      const n = readSync(fd, view, at, Math.min(1 << 28, bytes - at), at);
      if (n <= 0) throw corrupt(file, `short read at byte ${at} of ${bytes}`);
      at += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Bytes of a typed array, for writing. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
