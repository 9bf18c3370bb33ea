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

/** Iterate parsed JSON objects of a JSONL file; blank lines are skipped. */
export async function* readJsonl<T = unknown>(file: string): AsyncGenerator<T> {
  let n = 0;
  for await (const line of readLines(file)) {
    n++;
    if (line.trim() === "") continue;
    try {
      yield JSON.parse(line) as T;
    } catch (err) {
      throw new JsonlParseError(file, n, err);
    }
  }
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
    if (!this.fh) this.fh = await fsp.open(this.file, "a");
    await this.fh.write(JSON.stringify(row) + "\n");
  }
  async close(): Promise<void> {
    if (this.fh) await this.fh.close();
    this.fh = null;
  }
}
