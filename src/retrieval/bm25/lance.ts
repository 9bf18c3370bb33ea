/**
 * BM25 on LanceDB's full-text index (embedded, on disk, native and async; block-max WAND top-k pruning).
 *
 * The table `terms` holds one row per passage: `row` (int32, the passage row) and `tok` (the analyzed terms joined by
 * single spaces). The FTS index uses LanceDB's plain whitespace tokenizer with lower-casing, stemming, stop words and
 * ASCII folding turned off, because the text is already analyzed by our {@link Analyzer}; queries are analyzed the
 * same way and sent as an OR match query.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type * as LanceTypes from "@lancedb/lancedb";
import type { ScoredRow } from "./memory.js";

export const LANCE_TABLE = "terms";
/** Fragment id → first passage row, so a hit's internal row address maps to our row without reading a column. */
export const LANCE_ROWMAP_FILE = "rowmap.json";

/**
 * Read `row` with each internal row address (`_rowid` = fragment id << 32 | offset) and derive, per fragment, the row of
 * its first record. Returns null when rows are not contiguous within a fragment (then hits fetch the `row` column).
 */
async function computeRowMap(table: LanceTypes.Table): Promise<Record<string, number> | null> {
  const map: Record<string, number> = {};
  for await (const batch of table.query().select(["row"]).withRowId()) {
    const rowCol = batch.getChild("row")!;
    const idCol = batch.getChild("_rowid")!;
    for (let i = 0; i < batch.numRows; i++) {
      const id = BigInt(idCol.get(i) as bigint | number);
      const frag = String(Number(id >> 32n));
      const base = (rowCol.get(i) as number) - Number(id & 0xffffffffn);
      if (map[frag] === undefined) map[frag] = base;
      else if (map[frag] !== base) return null;
    }
  }
  return map;
}

type Lance = typeof LanceTypes;
let lancePromise: Promise<Lance> | null = null;

/** Import an optional package; when it is not installed, reject with `missing` (the import error as its cause). */
export async function importOptional<T>(specifier: string, missing: string): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ERR_MODULE_NOT_FOUND" || /Cannot find (module|package)/.test(String(e.message)))
      throw new Error(missing, { cause: err });
    throw err;
  }
}

/** Whether a `bm25/` folder holds LanceDB's `terms` table (indexes built with the "lance" engine). */
export function hasLanceTable(dir: string): boolean {
  return existsSync(path.join(dir, `${LANCE_TABLE}.lance`));
}

/** The message when the optional LanceDB package is not installed. */
export const LANCE_MISSING =
  'LanceDB is not installed: it is optional, needed only for the "lance" BM25 engine (index build --engine lance, serve/search --engine lancedb) and the LanceDB benchmarks; install it with `npm install @lancedb/lancedb` or use the default "postings" engine';

/**
 * Load LanceDB once (lazily: nothing imports it unless the "lance" engine is used), with its Rust logger quiet unless
 * the user asked for logs. Rejects with {@link LANCE_MISSING} when the package is not installed.
 */
export function loadLance(): Promise<Lance> {
  if (!lancePromise) {
    process.env.LANCEDB_LOG ??= "error";
    lancePromise = importOptional<Lance>("@lancedb/lancedb", LANCE_MISSING).then((m) =>
      (m as unknown as { default?: Lance }).default?.connect ? (m as unknown as { default: Lance }).default : m,
    );
    lancePromise.catch(() => (lancePromise = null));
  }
  return lancePromise;
}

async function termsSchema() {
  const arrow = await import("apache-arrow");
  return new arrow.Schema([
    new arrow.Field("row", new arrow.Int32(), false),
    new arrow.Field("tok", new arrow.Utf8(), false),
  ]);
}

/** Streaming writer of the `terms` table; `finish()` builds the FTS index. */
export class LanceFtsWriter {
  private table: LanceTypes.Table | null = null;
  private batch: Array<{ row: number; tok: string }> = [];
  private pending: Promise<unknown> | null = null;
  private count = 0;

  private constructor(
    private readonly lance: Lance,
    private readonly db: LanceTypes.Connection,
    private readonly batchSize: number,
  ) {}

  static async create(dir: string, batchSize = 50_000): Promise<LanceFtsWriter> {
    const lance = await loadLance();
    const db = await lance.connect(dir);
    const w = new LanceFtsWriter(lance, db, batchSize);
    w.dir = dir;
    return w;
  }

  private dir = "";

  /** Queue one passage's analyzed terms (rows must be added in order 0, 1, 2, ...). */
  async add(row: number, terms: readonly string[]): Promise<void> {
    this.batch.push({ row, tok: terms.join(" ") });
    this.count++;
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const rows = this.batch;
    this.batch = [];
    // One write in flight at a time: the next batch is analyzed in JS while LanceDB writes this one natively.
    if (this.pending) await this.pending;
    if (!this.table)
      this.table = await this.db.createEmptyTable(LANCE_TABLE, await termsSchema(), { mode: "overwrite" });
    this.pending = this.table.add(rows);
  }

  async finish(): Promise<{ rows: number }> {
    await this.flush();
    if (this.pending) await this.pending;
    if (!this.table)
      this.table = await this.db.createEmptyTable(LANCE_TABLE, await termsSchema(), { mode: "overwrite" });
    if (this.count > 0) {
      await this.table.createIndex("tok", {
        config: this.lance.Index.fts({
          baseTokenizer: "whitespace",
          lowercase: false,
          stem: false,
          removeStopWords: false,
          asciiFolding: false,
          withPosition: false,
          maxTokenLength: 40,
        }),
      });
      const rowmap = await computeRowMap(this.table);
      if (rowmap) writeFileSync(path.join(this.dir, LANCE_ROWMAP_FILE), JSON.stringify(rowmap));
    }
    this.table.close();
    this.db.close();
    return { rows: this.count };
  }
}

/** Query side of the LanceDB FTS engine. */
export class LanceFtsEngine {
  private constructor(
    private readonly lance: Lance,
    private readonly db: LanceTypes.Connection,
    private readonly table: LanceTypes.Table,
    readonly size: number,
    private readonly rowmap: Map<number, number> | null,
  ) {}

  static async open(dir: string): Promise<LanceFtsEngine> {
    const lance = await loadLance();
    const db = await lance.connect(dir);
    const table = await db.openTable(LANCE_TABLE);
    const size = await table.countRows();
    const file = path.join(dir, LANCE_ROWMAP_FILE);
    let raw: Record<string, number> | null = null;
    if (existsSync(file)) raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, number>;
    else if (size > 0) raw = await computeRowMap(table);
    const rowmap = raw ? new Map(Object.entries(raw).map(([k, v]) => [Number(k), v])) : null;
    return new LanceFtsEngine(lance, db, table, size, rowmap);
  }

  /** Top-k rows for analyzed query terms (OR semantics). */
  async search(terms: readonly string[], k: number): Promise<ScoredRow[]> {
    if (terms.length === 0 || k <= 0 || this.size === 0) return [];
    const q = new this.lance.MatchQuery(terms.join(" "), "tok", { operator: this.lance.Operator.Or });
    if (this.rowmap) {
      // Map internal row addresses to rows: no column read for the hits (about half the query time).
      const t = await this.table.query().fullTextSearch(q).select(["_score"]).withRowId().limit(k).toArrow();
      const ids = t.getChild("_rowid")!;
      const scores = t.getChild("_score")!;
      const out: ScoredRow[] = [];
      for (let i = 0; i < t.numRows; i++) {
        const id = BigInt(ids.get(i) as bigint | number);
        const base = this.rowmap.get(Number(id >> 32n));
        if (base === undefined) return this.searchByColumn(q, k);
        out.push({ row: base + Number(id & 0xffffffffn), score: scores.get(i) as number });
      }
      return out;
    }
    return this.searchByColumn(q, k);
  }

  private async searchByColumn(q: LanceTypes.MatchQuery, k: number): Promise<ScoredRow[]> {
    const rows = (await this.table.query().fullTextSearch(q).select(["row", "_score"]).limit(k).toArray()) as Array<{
      row: number;
      _score: number;
    }>;
    return rows.map((r) => ({ row: r.row, score: r._score }));
  }

  /** Stream every row's terms (for building the in-memory engine). */
  async *scanTerms(): AsyncGenerator<{ row: number; tok: string }> {
    for await (const batch of this.table.query().select(["row", "tok"])) {
      const rowCol = batch.getChild("row")!;
      const tokCol = batch.getChild("tok")!;
      for (let i = 0; i < batch.numRows; i++) yield { row: rowCol.get(i) as number, tok: tokCol.get(i) as string };
    }
  }

  close(): void {
    this.table.close();
    this.db.close();
  }
}
