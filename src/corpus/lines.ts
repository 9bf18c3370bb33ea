/**
 * Fast streaming line reader for corpus files (constant memory, any size; `.gz` is decompressed on the fly).
 *
 * Lines are split on `\n` only; a trailing `\r` is removed (CRLF files). Unlike `readline`, a lone `\r` inside a line is
 * kept, so a raw corpus line survives byte for byte. Bytes are decoded as UTF-8; a BOM is kept (callers decide).
 */
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";

export interface LineReadOptions {
  /** Called with the number of bytes consumed from the (compressed) file after each chunk, for progress/ETA. */
  onBytes?: (bytesRead: number) => void;
  /** Read buffer size (default 1 MiB). */
  highWaterMark?: number;
}

function openStream(file: string, opts: LineReadOptions): Readable {
  const raw = createReadStream(file, { highWaterMark: opts.highWaterMark ?? 1 << 20 });
  if (opts.onBytes) {
    const cb = opts.onBytes;
    raw.on("data", () => cb(raw.bytesRead));
  }
  if (file.endsWith(".gz")) {
    const gz = createGunzip();
    raw.on("error", (err) => gz.destroy(err));
    return raw.pipe(gz);
  }
  return raw;
}

/** Iterate the lines of a (possibly gzipped) text file. The final line is yielded even without a trailing newline. */
export async function* readCorpusLines(file: string, opts: LineReadOptions = {}): AsyncGenerator<string> {
  const stream = openStream(file, opts);
  let carry: Buffer | null = null;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = null;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl < 0) break;
        let end = nl;
        if (end > start && buf[end - 1] === 13) end--;
        yield buf.toString("utf8", start, end);
        start = nl + 1;
      }
      if (start < buf.length) carry = Buffer.from(buf.subarray(start));
      buf = Buffer.alloc(0);
    }
    if (carry && carry.length > 0) {
      let end = carry.length;
      if (carry[end - 1] === 13) end--;
      yield carry.toString("utf8", 0, end);
    }
  } finally {
    stream.destroy();
  }
}
