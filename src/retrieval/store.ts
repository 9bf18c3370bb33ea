/**
 * The passage store of an index directory: every passage's id, title, text and raw upstream line, addressed by row
 * number (0-based, corpus order).
 *
 * Files:
 * - `passages.jsonl`: one JSON array per row, `[id, title, text]` or `[id, title, text, raw]` (raw only when it differs
 *   from the rebuilt `{id}\t{title}   {text}` form).
 * - `passages.offsets`: little-endian float64 byte offsets of every row start plus the file end (N + 1 numbers).
 *
 * Reads are positioned reads of single rows (constant memory); stores up to `memoryLimitBytes` are loaded whole.
 */
import {
  closeSync,
  createWriteStream,
  openSync,
  readSync,
  fstatSync,
  readFileSync,
  statSync,
  truncateSync,
  type WriteStream,
} from "node:fs";
import path from "node:path";
import type { Passage } from "../util/types.js";

export const STORE_DATA_FILE = "passages.jsonl";
export const STORE_OFFSETS_FILE = "passages.offsets";

function defaultRaw(p: Passage): string {
  return `${p.id}\t${p.title}   ${p.text}`;
}

/** Where a store writer resumes: the first `rows` rows, `bytes` bytes of `passages.jsonl` (a build checkpoint). */
export interface StoreCheckpoint {
  rows: number;
  bytes: number;
}

/** Streaming writer for a passage store (used inside an index build's temporary directory). */
export class PassageStoreWriter {
  private data: WriteStream;
  private offs: WriteStream;
  private offChunk = new Float64Array(65536);
  private offFill = 0;
  private rows = 0;
  private pos = 0;
  private buf: string[] = [];
  private bufBytes = 0;
  private error: Error | null = null;
  /** Resolves when the last chunk handed to each stream has been written (callbacks fire in order). */
  private lastData: Promise<void> = Promise.resolve();
  private lastOffs: Promise<void> = Promise.resolve();

  /**
   * A new store in `dir`, or, with `resume`, the store already there cut back to its first `resume.rows` rows (the
   * files are truncated to the checkpoint; callers check {@link storeCanResume} first).
   */
  constructor(
    readonly dir: string,
    resume?: StoreCheckpoint,
  ) {
    const dataFile = path.join(dir, STORE_DATA_FILE);
    const offFile = path.join(dir, STORE_OFFSETS_FILE);
    if (resume) {
      truncateSync(dataFile, resume.bytes);
      truncateSync(offFile, (resume.rows + 1) * 8);
      this.rows = resume.rows;
      this.pos = resume.bytes;
    }
    const flags = resume ? "a" : "w";
    this.data = createWriteStream(dataFile, { highWaterMark: 1 << 20, flags });
    this.data.on("error", (err) => (this.error = err));
    this.offs = createWriteStream(offFile, { highWaterMark: 1 << 20, flags });
    this.offs.on("error", (err) => (this.error = err));
    if (!resume) this.pushOffset(0);
  }

  get count(): number {
    return this.rows;
  }

  /** Bytes of `passages.jsonl` so far (buffered or written). */
  get bytes(): number {
    return this.pos;
  }

  private pushOffset(v: number): void {
    this.offChunk[this.offFill++] = v;
    if (this.offFill === this.offChunk.length) this.flushOffsets();
  }

  private flushOffsets(): void {
    if (this.offFill === 0) return;
    const chunk = Buffer.from(this.offChunk.buffer.slice(0, this.offFill * 8));
    this.offFill = 0;
    this.lastOffs = new Promise<void>((resolve) => this.offs.write(chunk, () => resolve()));
  }

  /** Append one passage; resolves once buffered data is accepted by the file stream (backpressure). */
  async add(p: Passage): Promise<number> {
    if (this.error) throw this.error;
    const row: string[] = [p.id, p.title, p.text];
    if (p.raw !== undefined && p.raw !== defaultRaw(p)) row.push(p.raw);
    const line = JSON.stringify(row) + "\n";
    const bytes = Buffer.byteLength(line);
    this.pos += bytes;
    this.pushOffset(this.pos);
    this.buf.push(line);
    this.bufBytes += bytes;
    if (this.bufBytes >= 1 << 20) await this.flush();
    return this.rows++;
  }

  private async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const s = this.buf.join("");
    this.buf = [];
    this.bufBytes = 0;
    let drained = true;
    this.lastData = new Promise<void>((resolve) => {
      drained = this.data.write(s, () => resolve());
    });
    if (!drained) await new Promise<void>((resolve) => this.data.once("drain", () => resolve()));
    if (this.error) throw this.error;
  }

  /**
   * Hand everything added so far to the operating system (both files), for a build checkpoint: a process killed after
   * this resolves leaves at least {@link count} rows on disk.
   */
  async sync(): Promise<StoreCheckpoint> {
    await this.flush();
    this.flushOffsets();
    await Promise.all([this.lastData, this.lastOffs]);
    if (this.error) throw this.error;
    return { rows: this.rows, bytes: this.pos };
  }

  async close(): Promise<number> {
    await this.flush();
    await new Promise<void>((resolve, reject) =>
      this.data.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    if (this.error) throw this.error;
    this.flushOffsets();
    await new Promise<void>((resolve, reject) =>
      this.offs.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    if (this.error) throw this.error;
    return this.count;
  }
}

/** Whether the store files in `dir` hold at least the checkpoint's rows (what a killed build left behind). */
export function storeCanResume(dir: string, c: StoreCheckpoint): boolean {
  try {
    const data = statSync(path.join(dir, STORE_DATA_FILE)).size;
    const offs = statSync(path.join(dir, STORE_OFFSETS_FILE)).size;
    if (data < c.bytes || offs < (c.rows + 1) * 8) return false;
    // The offset of the checkpoint row must be the checkpoint's byte count.
    const fd = openSync(path.join(dir, STORE_OFFSETS_FILE), "r");
    try {
      const b = Buffer.alloc(8);
      readSync(fd, b, 0, 8, c.rows * 8);
      return b.readDoubleLE(0) === c.bytes;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

export interface PassageStoreOptions {
  /** Load the whole data file into memory when it is at most this many bytes (default 256 MiB). */
  memoryLimitBytes?: number;
}

/** Random access to the passages of an index directory. */
export class PassageStore {
  private constructor(
    private readonly offsets: Float64Array,
    private readonly data: Buffer | null,
    private fd: number | null,
  ) {}

  static open(dir: string, opts: PassageStoreOptions = {}): PassageStore {
    const offBuf = readFileSync(path.join(dir, STORE_OFFSETS_FILE));
    if (offBuf.byteLength % 8 !== 0 || offBuf.byteLength < 8)
      throw new Error(`${dir}/${STORE_OFFSETS_FILE}: corrupt (size ${offBuf.byteLength})`);
    const offsets = new Float64Array(offBuf.buffer.slice(offBuf.byteOffset, offBuf.byteOffset + offBuf.byteLength));
    const file = path.join(dir, STORE_DATA_FILE);
    const fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    if (size !== offsets[offsets.length - 1]) {
      closeSync(fd);
      throw new Error(
        `${file}: size ${size} does not match its offsets file (${offsets[offsets.length - 1]}); rebuild the index`,
      );
    }
    if (size <= (opts.memoryLimitBytes ?? 256 * 1024 * 1024)) {
      const data = readFileSync(file);
      closeSync(fd);
      return new PassageStore(offsets, data, null);
    }
    return new PassageStore(offsets, null, fd);
  }

  get size(): number {
    return this.offsets.length - 1;
  }

  private bytes(row: number): Buffer {
    const start = this.offsets[row];
    const end = this.offsets[row + 1];
    if (this.data) return this.data.subarray(start, end - 1);
    if (this.fd === null) throw new Error("passage store is closed");
    const b = Buffer.allocUnsafe(end - start - 1);
    readSync(this.fd, b, 0, b.length, start);
    return b;
  }

  /** The passage at a row (0-based); throws on an out-of-range row. */
  get(row: number): Passage {
    if (!Number.isInteger(row) || row < 0 || row >= this.size)
      throw new RangeError(`passage row ${row} out of range [0, ${this.size})`);
    const arr = JSON.parse(this.bytes(row).toString("utf8")) as string[];
    const p: Passage = { id: arr[0], title: arr[1], text: arr[2] };
    p.raw = arr.length > 3 ? arr[3] : defaultRaw(p);
    return p;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
