/**
 * Streaming corpus readers: every supported file format becomes a stream of {@link Passage}s (id, title, text, raw),
 * in constant memory. Formats:
 *
 * | format         | file                                                                                   |
 * |----------------|----------------------------------------------------------------------------------------|
 * | `kilt-jsonl`   | KILT knowledge source pages (`wikipedia_title`, `text[]`), split on the fly into 100-word passages |
 * | `kilt-tsv`     | R1-Searcher passage TSV: `{id}\t{title}   {text}` (output of the KILT splitter)        |
 * | `abstract-tsv` | R1-Searcher HotpotQA-abstract TSV: `{id}\tTitle: {title} Text:  {abstract}`, CSV-quoted when it holds quotes, BOM on line 1 |
 * | `flashrag`     | FlashRAG / Search-R1 JSONL: `{"id", "contents": "\"Title\"\ntext"}`                    |
 * | `jsonl`        | any JSONL with a chosen text field (`textField`, optional `titleField`, `idField`)     |
 *
 * `raw` keeps the corpus line exactly as the upstream `/queries` server returns it (TSV formats; for `kilt-jsonl` the
 * line the splitter writes). JSONL formats leave `raw` unset (it is rebuilt as `{id}\t{title}   {text}` when needed).
 */
import { promises as fsp } from "node:fs";
import type { Passage } from "../util/types.js";
import { readCorpusLines, type LineReadOptions } from "./lines.js";
import { parseKiltPage, splitKiltPage, KILT_CHUNK_WORDS } from "./kilt.js";

export const CORPUS_FORMATS = ["kilt-jsonl", "kilt-tsv", "abstract-tsv", "flashrag", "jsonl"] as const;
export type CorpusFormat = (typeof CORPUS_FORMATS)[number];

export interface ReadCorpusOptions extends LineReadOptions {
  /** Format, or "auto" (default) to detect it from the file name and first line. */
  format?: CorpusFormat | "auto";
  /** `jsonl`: the field holding the passage text (default "text", else "contents"). */
  textField?: string;
  /** `jsonl`: the field holding the title (default "title"; absent → empty title). */
  titleField?: string;
  /** `jsonl`/`flashrag`: the field holding the id (default "id"; absent → the 0-based row number). */
  idField?: string;
  /** `kilt-jsonl`: first passage id and words per chunk. */
  startId?: number;
  chunkWords?: number;
}

const BOM = "\ufeff";

/** A corpus line that cannot be read: names the file, line and reason. */
export class CorpusFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = "CorpusFormatError";
  }
}

/** `"Title"\ntext` (the Search-R1 / FlashRAG wiki-18 `contents` convention). */
export function passageContents(p: Pick<Passage, "title" | "text">): string {
  return `"${p.title}"\n${p.text}`;
}

/** The raw upstream line of a passage: `raw` when known, else `{id}\t{title}   {text}` (KILT TSV form). */
export function passageRawLine(p: Passage): string {
  return p.raw ?? `${p.id}\t${p.title}   ${p.text}`;
}

/** Split a `contents` string into title (first line, surrounding double quotes removed) and text (the other lines). */
export function splitContents(contents: string): { title: string; text: string } {
  const nl = contents.indexOf("\n");
  const first = nl < 0 ? contents : contents.slice(0, nl);
  const text = nl < 0 ? "" : contents.slice(nl + 1);
  const title = first.length >= 2 && first.startsWith('"') && first.endsWith('"') ? first.slice(1, -1) : first;
  return { title, text };
}

/** Parse a `kilt-tsv` line `{id}\t{title}   {text}`. */
export function parseKiltTsvLine(line: string, lineNo = 0, file = "<input>"): Passage {
  const tab = line.indexOf("\t");
  if (tab < 0) throw new CorpusFormatError(file, lineNo, "expected `id<TAB>title   text` (no TAB found)");
  const id = line.slice(0, tab).replace(BOM, "");
  const rest = line.slice(tab + 1);
  const sep = rest.indexOf("   ");
  const title = sep < 0 ? "" : rest.slice(0, sep);
  const text = sep < 0 ? rest : rest.slice(sep + 3);
  return { id, title, text, raw: line };
}

/** Undo CSV quoting of one field (`"a ""b"" c"` → `a "b" c`); unquoted fields are returned unchanged. */
export function unquoteCsvField(field: string): string {
  if (field.length >= 2 && field.startsWith('"') && field.endsWith('"')) return field.slice(1, -1).replace(/""/g, '"');
  return field;
}

const ABSTRACT_RE = /^Title: ([\s\S]*?) Text: ([\s\S]*)$/;

/** Parse an `abstract-tsv` line `{id}\tTitle: {title} Text:  {abstract}` (optionally CSV-quoted, BOM on line 1). */
export function parseAbstractTsvLine(line: string, lineNo = 0, file = "<input>"): Passage {
  const tab = line.indexOf("\t");
  if (tab < 0) throw new CorpusFormatError(file, lineNo, "expected `id<TAB>Title: ... Text: ...` (no TAB found)");
  const id = line.slice(0, tab).replace(BOM, "");
  const field = unquoteCsvField(line.slice(tab + 1));
  const m = ABSTRACT_RE.exec(field);
  if (!m) return { id, title: "", text: field, raw: line };
  // "Text:" is followed by two spaces upstream; the first belongs to the separator, the second is dropped too.
  const text = m[2].startsWith(" ") ? m[2].slice(1) : m[2];
  return { id, title: m[1], text, raw: line };
}

function fieldString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  return undefined;
}

/** Parse a FlashRAG corpus row `{"id", "contents"}` (falls back to `text` when `contents` is missing, as FlashRAG does). */
export function parseFlashragRow(obj: unknown, row: number, lineNo = 0, file = "<input>", idField = "id"): Passage {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    throw new CorpusFormatError(file, lineNo, "expected a JSON object");
  const o = obj as Record<string, unknown>;
  const contents = fieldString(o.contents) ?? fieldString(o.text);
  if (contents === undefined) throw new CorpusFormatError(file, lineNo, 'missing string field "contents" (or "text")');
  const { title, text } =
    typeof o.contents === "string" ? splitContents(contents) : { title: fieldString(o.title) ?? "", text: contents };
  const id = fieldString(o[idField]) ?? String(row);
  return { id, title, text };
}

/** Parse a plain JSONL row with a chosen text field. */
export function parseJsonlRow(
  obj: unknown,
  row: number,
  opts: { textField?: string; titleField?: string; idField?: string },
  lineNo = 0,
  file = "<input>",
): Passage {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    throw new CorpusFormatError(file, lineNo, "expected a JSON object");
  const o = obj as Record<string, unknown>;
  const textField = opts.textField ?? ("text" in o ? "text" : "contents");
  const text = fieldString(o[textField]);
  if (text === undefined)
    throw new CorpusFormatError(file, lineNo, `missing string field "${textField}" (choose one with --text-field)`);
  const title = fieldString(o[opts.titleField ?? "title"]) ?? "";
  const id = fieldString(o[opts.idField ?? "id"]) ?? String(row);
  return { id, title, text };
}

/** Decide the format of a corpus file from its name and first non-empty line. */
export async function detectCorpusFormat(file: string): Promise<CorpusFormat> {
  await fsp.access(file);
  let first: string | undefined;
  for await (const line of readCorpusLines(file, { highWaterMark: 1 << 16 })) {
    if (line.trim() !== "") {
      first = line;
      break;
    }
  }
  if (first === undefined) throw new Error(`${file}: empty corpus file`);
  const body = first.startsWith(BOM) ? first.slice(1) : first;
  if (body.startsWith("{")) {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(body) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${file}: first line looks like JSON but does not parse (${(err as Error).message})`);
    }
    if (typeof obj.wikipedia_title === "string" && Array.isArray(obj.text)) return "kilt-jsonl";
    if (typeof obj.contents === "string") return "flashrag";
    return "jsonl";
  }
  const tab = body.indexOf("\t");
  if (tab > 0) {
    const field = body.slice(tab + 1);
    if (/^"?Title: /.test(field)) return "abstract-tsv";
    return "kilt-tsv";
  }
  throw new Error(`${file}: cannot detect the corpus format (neither JSONL nor id<TAB>text TSV); pass --format`);
}

/** Stream the passages of a corpus file. */
export async function* readCorpus(file: string, opts: ReadCorpusOptions = {}): AsyncGenerator<Passage> {
  const format = !opts.format || opts.format === "auto" ? await detectCorpusFormat(file) : opts.format;
  const lineOpts: LineReadOptions = { onBytes: opts.onBytes, highWaterMark: opts.highWaterMark };
  let lineNo = 0;
  let row = 0;
  if (format === "kilt-jsonl") {
    let id = opts.startId ?? 0;
    for await (const line of readCorpusLines(file, lineOpts)) {
      lineNo++;
      if (line.trim() === "") continue;
      const page = parseKiltPage(line, lineNo, file);
      for (const l of splitKiltPage(page, id, opts.chunkWords ?? KILT_CHUNK_WORDS)) {
        id++;
        yield parseKiltTsvLine(l, lineNo, file);
      }
    }
    return;
  }
  for await (const line of readCorpusLines(file, lineOpts)) {
    lineNo++;
    if (line.trim() === "") continue;
    switch (format) {
      case "kilt-tsv":
        yield parseKiltTsvLine(line, lineNo, file);
        break;
      case "abstract-tsv":
        yield parseAbstractTsvLine(line, lineNo, file);
        break;
      case "flashrag":
      case "jsonl": {
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch (err) {
          throw new CorpusFormatError(file, lineNo, `invalid JSON (${(err as Error).message})`);
        }
        yield format === "flashrag"
          ? parseFlashragRow(obj, row, lineNo, file, opts.idField)
          : parseJsonlRow(obj, row, opts, lineNo, file);
        break;
      }
    }
    row++;
  }
}
