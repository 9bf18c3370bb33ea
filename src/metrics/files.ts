/** Reading evaluation-result JSONL files (upstream format) with errors that name the file and line. */
import { access } from "node:fs/promises";
import { readLines } from "../util/jsonl.js";
import {
  MetricsAccumulator,
  ResultRecordSchema,
  UPSTREAM_RECORD_LIMIT,
  type MetricsSummary,
  type ResultRecord,
} from "./aggregate.js";

/** A result file that cannot be read; the message names the file and, when known, the 1-based line. */
export class ResultFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    message: string,
  ) {
    super(line === null ? `${file}: ${message}` : `${file}:${line}: ${message}`);
    this.name = "ResultFileError";
  }
}

/**
 * Iterate validated records of a result file, stopping after `limit` records (default 2,000, as upstream; 0 or
 * Infinity = all). Blank lines are skipped. Throws `ResultFileError` on a missing file, invalid JSON or a record
 * without `question`, `answer` (string, list of strings or boolean) or `pred_ans` (string).
 */
export async function* readResultRecords(
  file: string,
  limit: number = UPSTREAM_RECORD_LIMIT,
): AsyncGenerator<ResultRecord & { line: number }> {
  const max = limit > 0 ? limit : Infinity;
  try {
    await access(file);
  } catch {
    throw new ResultFileError(file, null, "no such file");
  }
  let lineNo = 0;
  let n = 0;
  for await (const line of readLines(file)) {
    lineNo++;
    if (n >= max) return;
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new ResultFileError(file, lineNo, `invalid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    const r = ResultRecordSchema.safeParse(value);
    if (!r.success) {
      const what = r.error.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ");
      throw new ResultFileError(file, lineNo, `invalid result record (${what})`);
    }
    n++;
    yield { ...r.data, line: lineNo };
  }
}

/** Aggregate the metrics of one result file (first `limit` records). */
export async function metricsForFile(file: string, limit: number = UPSTREAM_RECORD_LIMIT): Promise<MetricsSummary> {
  const acc = new MetricsAccumulator(limit > 0 ? limit : Infinity);
  for await (const rec of readResultRecords(file, limit)) acc.add(rec);
  return acc.summary();
}
