/** Pieces shared by the SFT and RL trainers: run directory setup, resume, hooks, checkpoint writing, progress. */
import { existsSync, promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteJson } from "../util/fsutil.js";
import { describeEngine } from "../model/runtime.js";
import { Progress } from "../util/progress.js";
import { CheckpointManager, type CheckpointInfo, type TrainerState } from "./checkpoint.js";
import { MetricsLog, type TrainMetrics } from "./metrics-log.js";
import type { TrainablePolicy } from "./policy.js";

export interface TrainHooks {
  /** Called after every step with its metrics line. */
  onStep?(metrics: TrainMetrics): void | Promise<void>;
  /** Called after a checkpoint folder is complete. */
  onCheckpoint?(dir: string, step: number): void | Promise<void>;
  /** Free-text log lines (warnings, resume notices). Default: stderr unless `quiet`. */
  onLog?(line: string): void;
  /** Stop cleanly after the current step (a checkpoint is written). */
  signal?: AbortSignal;
  /** Resume from `RUN_DIR/checkpoints/latest` when present. */
  resume?: boolean;
  /** Overrides `config.runDir`. */
  runDir?: string;
  /** No progress line, no log lines on stderr. */
  quiet?: boolean;
  /** Stop after this many steps in this call (on top of run.maxSteps) — for chaining or tests. */
  stopAfterSteps?: number;
}

export interface TrainResult {
  runDir: string;
  /** Completed steps (including steps of resumed segments). */
  steps: number;
  /** Metrics lines of the whole run (read back from metrics.jsonl). */
  metrics: TrainMetrics[];
  /** Last metrics line, null when no step ran. */
  final: TrainMetrics | null;
  /** Latest checkpoint folder, null when none was written. */
  checkpoint: string | null;
  /** True when the run stopped early (signal or stopAfterSteps). */
  stoppedEarly: boolean;
}

export interface RunContext {
  runDir: string;
  metrics: MetricsLog;
  ckpt: CheckpointManager;
  resumed: CheckpointInfo | null;
  log: (line: string) => void;
}

export async function openRun(
  config: { runDir?: string; run: { maxCheckpoints: number }; stage: string },
  policy: TrainablePolicy,
  hooks: TrainHooks,
): Promise<RunContext> {
  const runDir = hooks.runDir ?? config.runDir;
  if (!runDir) throw new Error("no run directory: set runDir in the config or pass one (--run-dir)");
  const log = hooks.onLog ?? ((line: string) => (hooks.quiet ? undefined : process.stderr.write(line + "\n")));
  await fsp.mkdir(runDir, { recursive: true });
  const ckpt = new CheckpointManager(runDir, { maxCheckpoints: config.run.maxCheckpoints });
  const metrics = new MetricsLog(runDir);
  let resumed: CheckpointInfo | null = null;
  if (hooks.resume) {
    resumed = await ckpt.latest();
    if (resumed) {
      if (resumed.state.stage !== config.stage) {
        throw new Error(
          `cannot resume: ${resumed.dir} is a "${resumed.state.stage}" checkpoint, the config is "${config.stage}"`,
        );
      }
      await policy.loadWeights(resumed.dir);
      if (resumed.state.optimizerFile) await policy.loadOptimizer(resumed.dir, resumed.state.optimizerFile);
      await metrics.truncateAfter(resumed.step);
      log(`resuming from ${path.relative(process.cwd(), resumed.dir) || resumed.dir} (step ${resumed.step})`);
    } else {
      log(`no checkpoint in ${runDir}; starting from step 0`);
      await metrics.truncateAfter(0);
    }
  } else if (existsSync(metrics.file) && (await metrics.read()).length > 0) {
    throw new Error(
      `${runDir} already holds a run (metrics.jsonl is not empty); use --resume or another run directory`,
    );
  }
  await atomicWriteJson(path.join(runDir, "config.json"), config);
  return { runDir, metrics, ckpt, resumed, log };
}

export async function writeCheckpoint(
  ctx: RunContext,
  policy: TrainablePolicy,
  state: Omit<TrainerState, "optimizerFile" | "version">,
  hooks: TrainHooks,
): Promise<string> {
  const dir = await ctx.ckpt.save(
    { version: 1, ...state },
    { writeModel: (d) => policy.save(d), writeOptimizer: (d) => policy.saveOptimizer(d) },
  );
  await hooks.onCheckpoint?.(dir, state.step);
  return dir;
}

export function makeProgress(
  label: string,
  total: number,
  start: number,
  hooks: TrainHooks,
  extra: () => string,
): Progress {
  const p = new Progress({ label, total, unit: "step", silent: hooks.quiet, extra });
  if (!hooks.quiet) process.stderr.write(`${label}: compute engine ${describeEngine()}\n`);
  if (start > 0) p.set(start);
  return p;
}

export function fmt(x: number | undefined, digits = 3): string {
  if (x === undefined || !Number.isFinite(x)) return "-";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return x.toFixed(digits);
}
