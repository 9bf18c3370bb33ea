/**
 * The KILT knowledge source and R1-Searcher's 100-word splitter (`split_kilt_to_100.py`), reproduced byte for byte.
 *
 * Input: one Wikipedia page per JSONL line with `wikipedia_title` and `text` (a list of paragraph strings, `text[0]` is
 * the title line). Output: one TSV line per chunk, `{id}\t{title}   {words}` (TAB, then THREE spaces between title and
 * words), with one global 0-based id counter across pages.
 */
import { createWriteStream, promises as fsp } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { pyWords } from "../util/pystr.js";
import { formatDuration, Progress } from "../util/progress.js";
import { readCorpusLines } from "./lines.js";

/** One KILT page as read from the knowledge source (only the fields the splitter uses are typed). */
export interface KiltPage {
  wikipedia_title: string;
  text: string[];
  wikipedia_id?: string;
  [key: string]: unknown;
}

const KiltPageSchema = z.looseObject({
  wikipedia_title: z.string({ error: "wikipedia_title must be a string" }),
  text: z.array(z.string(), { error: "text must be a list of strings" }).optional(),
  wikipedia_id: z.union([z.string(), z.number()]).optional(),
});

/** Number of words per chunk in R1-Searcher's KILT corpus. */
export const KILT_CHUNK_WORDS = 100;

/** Parse one KILT JSONL line; throws an error naming the line number and the failing field. */
export function parseKiltPage(line: string, lineNo = 0, file = "<input>"): KiltPage {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    throw new Error(`${file}:${lineNo}: invalid JSON (${(err as Error).message})`);
  }
  const r = KiltPageSchema.safeParse(obj);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`${file}:${lineNo}: not a KILT page (${msg})`);
  }
  const d = r.data;
  return {
    ...d,
    wikipedia_title: d.wikipedia_title,
    text: d.text ?? [],
    wikipedia_id: d.wikipedia_id === undefined ? undefined : String(d.wikipedia_id),
  };
}

/** Stream the pages of a KILT JSONL file (blank lines skipped). */
export async function* readKiltPages(
  file: string,
  opts: { onBytes?: (n: number) => void } = {},
): AsyncGenerator<KiltPage> {
  let n = 0;
  for await (const line of readCorpusLines(file, opts)) {
    n++;
    if (line.trim() === "") continue;
    yield parseKiltPage(line, n, file);
  }
}

/** The words of a page exactly as the upstream splitter sees them. */
export function kiltPageWords(page: Pick<KiltPage, "text">): string[] {
  const full = (page.text ?? []).join("").split("BULLET::::").join("").split("Section::::").join("");
  return pyWords(full);
}

/**
 * Split one page into chunk lines (without the trailing newline), numbering them from `startId`.
 * `{id}\t{title}   {w1 w2 ... w100}`.
 */
export function splitKiltPage(
  page: Pick<KiltPage, "text" | "wikipedia_title">,
  startId: number,
  chunkWords = KILT_CHUNK_WORDS,
): string[] {
  const words = kiltPageWords(page);
  const out: string[] = [];
  let id = startId;
  for (let i = 0; i < words.length; i += chunkWords) {
    out.push(`${id}\t${page.wikipedia_title}   ${words.slice(i, i + chunkWords).join(" ")}`);
    id++;
  }
  return out;
}

export interface SplitKiltOptions {
  /** First id (default 0). */
  startId?: number;
  chunkWords?: number;
  /** Print a progress line (pages/s, passages/s) to stderr (default true). */
  progress?: boolean;
  stream?: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
}

export interface SplitKiltResult {
  pages: number;
  passages: number;
  seconds: number;
}

/**
 * Split a KILT JSONL file into the R1-Searcher 100-word TSV. Streams (constant memory). The output is written to a
 * temporary sibling and renamed at the end, so an interrupted run never leaves a truncated TSV under `out`.
 */
export async function splitKiltFile(input: string, out: string, opts: SplitKiltOptions = {}): Promise<SplitKiltResult> {
  const t0 = Date.now();
  let passages = 0;
  let pages = 0;
  const size = (await fsp.stat(input)).size;
  let bytes = 0;
  const progress = new Progress({
    label: "split-kilt",
    unit: "pages",
    silent: opts.progress === false,
    stream: opts.stream,
    extra: () => {
      const sec = (Date.now() - t0) / 1000;
      const pct = size > 0 ? ` ${((100 * bytes) / size).toFixed(1)}% of input` : "";
      const rate = bytes / Math.max(sec, 1e-3);
      const eta = rate > 0 && size > 0 ? `, ETA ${formatDuration((size - bytes) / rate)}` : "";
      return `| ${passages} passages ${(passages / Math.max(sec, 1e-3)).toFixed(0)} passages/s${pct}, ${(rate / 1e6).toFixed(1)} MB/s${eta}`;
    },
  });
  await fsp.mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.tmp-${process.pid}`);
  const ws = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  const writeErr = new Promise<never>((_, reject) => ws.on("error", reject));
  writeErr.catch(() => {});
  let id = opts.startId ?? 0;
  try {
    let pending: string[] = [];
    let pendingLen = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const s = pending.join("");
      pending = [];
      pendingLen = 0;
      if (!ws.write(s)) await Promise.race([new Promise<void>((r) => ws.once("drain", () => r())), writeErr]);
    };
    for await (const page of readKiltPages(input, { onBytes: (n) => (bytes = n) })) {
      const lines = splitKiltPage(page, id, opts.chunkWords);
      id += lines.length;
      passages += lines.length;
      pages++;
      for (const l of lines) {
        pending.push(l, "\n");
        pendingLen += l.length + 1;
      }
      if (pendingLen > 1 << 20) await flush();
      progress.tick();
    }
    await flush();
    await Promise.race([
      new Promise<void>((resolve, reject) => ws.end((err?: Error | null) => (err ? reject(err) : resolve()))),
      writeErr,
    ]);
    await fsp.rename(tmp, out);
  } catch (err) {
    ws.destroy();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  progress.finish();
  return { pages, passages, seconds: (Date.now() - t0) / 1000 };
}
