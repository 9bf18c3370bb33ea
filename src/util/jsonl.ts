/** Streaming JSONL / line readers (constant memory) and writers. */
import { createReadStream, promises as fsp } from "node:fs";
import { createInterface } from "node:readline";
import { atomicWriteFile } from "./fsutil.js";

/** Iterate the lines of a file without loading it whole. Line terminators (\n or \r\n) are removed. */
export async function* readLines(file: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
  }
}

/** Error for a line of a JSONL file that does not parse; names the file and the 1-based line number. */
export class JsonlParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    cause: unknown,
  ) {
    super(`${file}:${line}: invalid JSON (${cause instanceof Error ? cause.message : String(cause)})`);
    this.name = "JsonlParseError";
  }
}

/** Whether a non-empty file's last byte is not a newline (a line torn by a crash in the middle of its write). */
async function hasTornTail(file: string): Promise<{ size: number } | null> {
  const fh = await fsp.open(file, "r");
  try {
    const { size } = await fh.stat();
    if (size === 0) return null;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0] === 0x0a ? null : { size };
  } finally {
    await fh.close();
  }
}

/**
 * Iterate parsed JSON objects of a JSONL file; blank lines are skipped. A last line without its newline that does not
 * parse is the torn write of a killed process (rows are written as whole lines): it is skipped, as no row was
 * written; any other invalid line throws {@link JsonlParseError}.
 */
export async function* readJsonl<T = unknown>(file: string): AsyncGenerator<T> {
  let n = 0;
  let pending: JsonlParseError | null = null;
  for await (const line of readLines(file)) {
    if (pending) throw pending;
    n++;
    if (line.trim() === "") continue;
    try {
      yield JSON.parse(line) as T;
    } catch (err) {
      pending = new JsonlParseError(file, n, err);
    }
  }
  if (pending && !(await hasTornTail(file))) throw pending;
}

/** Cut a torn last line (no newline at the end) off a JSONL file, so that appending continues on a line boundary. */
export async function repairJsonlTail(file: string): Promise<boolean> {
  let torn: { size: number } | null;
  try {
    torn = await hasTornTail(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  if (!torn) return false;
  const data = await fsp.readFile(file);
  const last = data.lastIndexOf(0x0a);
  await fsp.truncate(file, last + 1);
  return true;
}

/** Read a whole JSONL file into memory (for small files). */
export async function readJsonlAll<T = unknown>(file: string, limit = Infinity): Promise<T[]> {
  const out: T[] = [];
  for await (const row of readJsonl<T>(file)) {
    if (out.length >= limit) break;
    out.push(row);
  }
  return out;
}

/** Write rows as JSONL atomically. */
export async function writeJsonl(file: string, rows: Iterable<unknown>): Promise<void> {
  let s = "";
  for (const r of rows) s += JSON.stringify(r) + "\n";
  await atomicWriteFile(file, s);
}

/** Append-only JSONL writer (for metrics and resumable results): each row is one `write` of a full line. */
export class JsonlAppender {
  private fh: fsp.FileHandle | null = null;
  constructor(readonly file: string) {}
  async append(row: unknown): Promise<void> {
    if (!this.fh) {
      await repairJsonlTail(this.file);
      this.fh = await fsp.open(this.file, "a");
    }
    await this.fh.write(JSON.stringify(row) + "\n");
  }
  async close(): Promise<void> {
    if (this.fh) await this.fh.close();
    this.fh = null;
  }
}
