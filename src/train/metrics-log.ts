/**
 * `RUN_DIR/metrics.jsonl` and `RUN_DIR/samples/step-NNNNNN.jsonl` writers (docs/run-format.md). On resume the metrics
 * file is cut back to the resumed step so the file never holds two lines for a step.
 */
import { existsSync, promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteFile } from "../util/fsutil.js";
import { JsonlAppender, writeJsonl } from "../util/jsonl.js";

/** One metrics line. Fields absent when they do not apply. */
export interface TrainMetrics {
  step: number;
  /** Unix seconds. */
  time: number;
  stage: string;
  lr?: number;
  reward_mean?: number;
  reward_std?: number;
  accuracy?: number;
  retrievals_mean?: number;
  response_length_mean?: number;
  kl?: number;
  entropy?: number;
  clip_frac?: number;
  loss?: number;
  grad_norm?: number;
  tokens_per_s?: number;
  samples?: number;
  [key: string]: number | string | undefined;
}

export class MetricsLog {
  readonly file: string;
  private appender: JsonlAppender;
  constructor(readonly runDir: string) {
    this.file = path.join(runDir, "metrics.jsonl");
    this.appender = new JsonlAppender(this.file);
  }

  async append(row: TrainMetrics): Promise<void> {
    const clean: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(row)) {
      if (v === undefined) continue;
      if (typeof v === "number" && !Number.isFinite(v)) continue; // JSON has no NaN/Infinity
      clean[k] = v;
    }
    await this.appender.append(clean);
  }

  /** Drop lines with `step > lastStep` (lines that a crash left behind after the last checkpoint). */
  async truncateAfter(lastStep: number): Promise<void> {
    await this.appender.close();
    if (!existsSync(this.file)) return;
    const text = await fsp.readFile(this.file, "utf8");
    const keep: string[] = [];
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      try {
        const row = JSON.parse(line) as { step?: unknown };
        if (typeof row.step === "number" && row.step > lastStep) continue;
        keep.push(line);
      } catch {
        // a torn last line from a kill in the middle of a write
      }
    }
    await atomicWriteFile(this.file, keep.map((l) => l + "\n").join(""));
  }

  async read(): Promise<TrainMetrics[]> {
    if (!existsSync(this.file)) return [];
    const text = await fsp.readFile(this.file, "utf8");
    const out: TrainMetrics[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as TrainMetrics);
      } catch {
        /* torn line */
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.appender.close();
  }
}

export function samplesFile(runDir: string, step: number): string {
  return path.join(runDir, "samples", `step-${String(step).padStart(6, "0")}.jsonl`);
}

export async function writeSamples(runDir: string, step: number, rows: readonly unknown[]): Promise<void> {
  await writeJsonl(samplesFile(runDir, step), rows);
}

/** Mean and population std of a list (0/0 for an empty list). */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0) return { mean: 0, std: 0 };
  let s = 0;
  for (const x of xs) s += x;
  const m = s / xs.length;
  let v = 0;
  for (const x of xs) v += (x - m) * (x - m);
  return { mean: m, std: Math.sqrt(v / xs.length) };
}
