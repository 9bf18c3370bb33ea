/**
 * Run-directory checkpoints (docs/run-format.md): `RUN_DIR/checkpoints/step-NNNNNN/` holds the model files
 * (config.json, model.safetensors, tokenizer.json — written by the model module), `trainer_state.json` and, when the
 * optimizer has state, `optimizer.safetensors`. The folder is built in a temp sibling and renamed into place; only then
 * is `checkpoints/latest` (a text file naming the folder) replaced atomically. A crash at any point leaves the previous
 * complete checkpoint reachable.
 */
import { existsSync, promises as fsp } from "node:fs";
import path from "node:path";
import { atomicWriteDir, atomicWriteFile, atomicWriteJson } from "../util/fsutil.js";

export const TRAINER_STATE_FILE = "trainer_state.json";
export const LATEST_FILE = "latest";

/** Everything besides the weights that a resumed run needs. Determinism comes from (seed, step), not stored RNG state. */
export interface TrainerState {
  version: 1;
  stage: string;
  /** Completed steps (rollout steps for RL, optimizer steps for SFT). */
  step: number;
  /** Completed optimizer updates (drives the LR schedule). */
  optimizerSteps: number;
  seed: number;
  /** Data position: the next step reads from here (also derivable from `step`). */
  cursor: { episode: number; index: number };
  samplesSeen: number;
  tokensSeen: number;
  /** Wall seconds spent before this checkpoint (over all resumed segments). */
  elapsedSec: number;
  /** Optimizer state file inside the checkpoint folder, if any. */
  optimizerFile: string | null;
  /** Free-form trainer-specific state (e.g. the last metrics). */
  extra?: Record<string, unknown>;
}

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

export interface CheckpointWriters {
  /** Write the model files (config.json, model.safetensors, tokenizer.json) into `dir`. */
  writeModel(dir: string): Promise<void>;
  /** Write the optimizer state into `dir`; returns the file name it wrote (or null when there is no state). */
  writeOptimizer?(dir: string): Promise<string | null>;
}

export interface CheckpointInfo {
  dir: string;
  step: number;
  state: TrainerState;
}

export class CheckpointManager {
  readonly root: string;
  constructor(
    readonly runDir: string,
    private readonly opts: { maxCheckpoints?: number } = {},
  ) {
    this.root = path.join(runDir, "checkpoints");
  }

  dirFor(step: number): string {
    return path.join(this.root, stepDirName(step));
  }

  /** Write a complete checkpoint for `state.step`, point `latest` at it and prune old ones. Returns its folder. */
  async save(state: Omit<TrainerState, "optimizerFile">, writers: CheckpointWriters): Promise<string> {
    const target = this.dirFor(state.step);
    await atomicWriteDir(target, async (tmp) => {
      await writers.writeModel(tmp);
      const optimizerFile = writers.writeOptimizer ? await writers.writeOptimizer(tmp) : null;
      await atomicWriteJson(path.join(tmp, TRAINER_STATE_FILE), { ...state, optimizerFile } satisfies TrainerState);
    });
    await atomicWriteFile(path.join(this.root, LATEST_FILE), stepDirName(state.step) + "\n");
    await this.prune();
    return target;
  }

  /** Complete checkpoint folders (those with a trainer_state.json), by step ascending. */
  async list(): Promise<Array<{ dir: string; step: number }>> {
    if (!existsSync(this.root)) return [];
    const out: Array<{ dir: string; step: number }> = [];
    for (const name of await fsp.readdir(this.root)) {
      const m = /^step-(\d+)$/.exec(name);
      if (!m) continue;
      const dir = path.join(this.root, name);
      if (existsSync(path.join(dir, TRAINER_STATE_FILE))) out.push({ dir, step: Number(m[1]) });
    }
    return out.sort((a, b) => a.step - b.step);
  }

  /** The checkpoint `latest` names; falls back to the highest complete folder if `latest` is missing or stale. */
  async latest(): Promise<CheckpointInfo | null> {
    const latestFile = path.join(this.root, LATEST_FILE);
    let dir: string | null = null;
    if (existsSync(latestFile)) {
      const name = (await fsp.readFile(latestFile, "utf8")).trim();
      const d = path.join(this.root, name);
      if (/^step-\d+$/.test(name) && existsSync(path.join(d, TRAINER_STATE_FILE))) dir = d;
    }
    if (!dir) {
      const all = await this.list();
      if (all.length === 0) return null;
      dir = all[all.length - 1].dir;
    }
    const state = await readTrainerState(dir);
    return { dir, step: state.step, state };
  }

  /** Remove checkpoints beyond `maxCheckpoints` (oldest first; never the latest) and stale temp folders. */
  async prune(): Promise<void> {
    const max = this.opts.maxCheckpoints ?? 0;
    if (existsSync(this.root)) {
      for (const name of await fsp.readdir(this.root)) {
        // temp siblings left by a crash in the middle of atomicWriteDir
        // (also the nested temp folders of a model writer that itself writes atomically: "..step-…tmp-…")
        if (/^\.+step-\d+.*\.tmp-/.test(name))
          await fsp.rm(path.join(this.root, name), { recursive: true, force: true });
      }
    }
    if (max <= 0) return;
    const all = await this.list();
    for (const c of all.slice(0, Math.max(0, all.length - max))) await fsp.rm(c.dir, { recursive: true, force: true });
  }
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = path.join(dir, TRAINER_STATE_FILE);
  const raw = JSON.parse(await fsp.readFile(file, "utf8")) as TrainerState;
  if (raw.version !== 1 || typeof raw.step !== "number")
    throw new Error(`${file}: not a searchrl trainer state (version ${String(raw.version)})`);
  return raw;
}
