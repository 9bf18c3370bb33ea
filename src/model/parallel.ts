/**
 * Data parallelism over cores: a {@link ParallelModel} owns the main {@link Transformer} (whose weights and gradients
 * the optimizer updates) plus worker-thread replicas with copies of its weights. A batch is split into shards
 * balanced by compute; every replica runs the forward pass of its shard at the same time, the loss function sees
 * the log-probs of the whole batch once, then every replica runs its backward pass and the worker gradients are
 * added into the main model's gradient buffer. Sampling (BatchGenerator) spreads sequences over the replicas too.
 *
 * tfjs-wasm runs one thread per heap, so this is how the model uses more than one core. Weights are copied to the
 * workers lazily, whenever the main model's weights version changed (after an optimizer step: one copy of
 * 4 bytes x parameters per worker).
 */
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import {
  LocalReplica,
  type DecodeItem,
  type PrefillItem,
  type Replica,
  type SampledToken,
  type TrainingShardResult,
} from "./replica.js";
import type { AccumulateResult, LogprobBatch, LogprobLossFn, LogprobResult, Transformer } from "./transformer.js";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

function transferables(v: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  if (v instanceof Float32Array) {
    if (v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  } else if (Array.isArray(v)) {
    for (const x of v) transferables(x, out);
  }
  return out;
}

/** A replica in a worker thread. */
export class WorkerReplica implements Replica {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private dead: Error | null = null;
  private constructor(
    private readonly worker: Worker,
    readonly name: string,
  ) {
    worker.on("message", (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${this.name}: ${msg.error}`));
    });
    const die = (err: Error) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on("error", (e) => die(e instanceof Error ? e : new Error(String(e))));
    worker.on("exit", (code) => die(new Error(`${this.name} exited with code ${code}`)));
  }

  /** Start a worker holding a copy of `model`. */
  static async start(model: Transformer, name: string): Promise<WorkerReplica> {
    const here = import.meta.url;
    const fromSource = here.endsWith(".ts");
    let worker: Worker;
    if (fromSource) {
      // Running from TypeScript sources (tsx, vitest): register tsx in the worker, then load the TS entry.
      const tsxApi = pathToFileURL(tsxEsmApi(here)).href;
      const entry = new URL("./worker.ts", here).href;
      worker = new Worker(
        `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`,
        {
          eval: true,
        },
      );
    } else {
      worker = new Worker(new URL("./worker.js", here));
    }
    const r = new WorkerReplica(worker, name);
    await r.call("init", [model.config, model.getWeights(), model.activationBudgetBytes]);
    await r.call("setTuning", [model.tuning]);
    return r;
  }

  private call<T>(op: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  prefillSample(items: PrefillItem[], maxLen: number): Promise<SampledToken[]> {
    return this.call("prefillSample", [items, maxLen]);
  }
  decodeSample(items: DecodeItem[], maxLen: number): Promise<SampledToken[]> {
    return this.call("decodeSample", [items, maxLen]);
  }
  releaseSeqs(ids: number[]): void {
    if (ids.length) void this.call("releaseSeqs", [ids]).catch(() => {});
  }
  logprobs(batch: LogprobBatch): Promise<LogprobResult> {
    return this.call("logprobs", [plainBatch(batch)]);
  }
  beginTraining(passId: number, batch: LogprobBatch): Promise<TrainingShardResult> {
    return this.call("beginTraining", [passId, plainBatch(batch)]);
  }
  backward(passId: number, grad: Float32Array[]): Promise<Float32Array | null> {
    return this.call("backward", [passId, grad], transferables(grad));
  }
  releasePass(passId: number): void {
    void this.call("releasePass", [passId]).catch(() => {});
  }
  setWeights(w: Float32Array): Promise<void> {
    return this.call("setWeights", [w], [w.buffer as ArrayBuffer]);
  }
  setTuning(t: object): Promise<void> {
    return this.call("setTuning", [t]);
  }
  async close(): Promise<void> {
    if (!this.dead) {
      try {
        await this.call("close", []);
      } catch {
        // already gone
      }
    }
    await this.worker.terminate();
  }
}

/** Absolute path of tsx's ESM API entry (the import condition of its "./esm/api" export). */
function tsxEsmApi(from: string): string {
  const require = createRequire(from);
  const pkgFile = require.resolve("tsx/package.json");
  const pkg = require(pkgFile) as { exports?: Record<string, { import?: { default?: string } | string }> };
  const exp = pkg.exports?.["./esm/api"]?.import;
  const rel = typeof exp === "string" ? exp : (exp?.default ?? "./dist/esm/api/index.mjs");
  return path.join(path.dirname(pkgFile), rel);
}

function plainBatch(b: LogprobBatch): LogprobBatch {
  return {
    sequences: b.sequences.map((s) => (Array.isArray(s) ? s : Array.from(s))),
    from: b.from ? Array.from(b.from) : undefined,
  };
}

export interface ParallelModelOptions {
  /** Worker replicas besides the calling thread (default: number of cores - 1, at most 3). */
  workers?: number;
}

/** Default worker count: one per extra core (at most 3). */
export function defaultWorkerCount(): number {
  return Math.max(0, Math.min(3, os.cpus().length - 1));
}

/**
 * The main model plus worker replicas. Same methods as {@link Transformer} for scoring and training, but async; with
 * `workers: 0` it simply runs on the calling thread.
 */
export class ParallelModel {
  readonly local: LocalReplica;
  private syncedVersion: number;
  private nextPass = 1;
  private closed = false;

  private constructor(
    readonly model: Transformer,
    readonly workers: WorkerReplica[],
  ) {
    this.local = new LocalReplica(model);
    this.syncedVersion = model.weightsVersion;
  }

  static async create(model: Transformer, opts: ParallelModelOptions = {}): Promise<ParallelModel> {
    const n = Math.max(0, Math.floor(opts.workers ?? defaultWorkerCount()));
    const workers = await Promise.all(
      Array.from({ length: n }, (_, i) => WorkerReplica.start(model, `model worker ${i + 1}`)),
    );
    return new ParallelModel(model, workers);
  }

  /** All replicas, workers first (so their work is posted before the local replica computes synchronously). */
  get replicas(): Replica[] {
    return [...this.workers, this.local];
  }

  /** Copy the main model's weights to the workers if they changed since the last copy. */
  async syncWeights(): Promise<void> {
    if (this.closed) throw new Error("ParallelModel is closed");
    const v = this.model.weightsVersion;
    if (v === this.syncedVersion || this.workers.length === 0) {
      this.syncedVersion = v;
      return;
    }
    const w = this.model.getWeights();
    await Promise.all(this.workers.map((r, i) => r.setWeights(i === this.workers.length - 1 ? w : w.slice())));
    this.syncedVersion = v;
  }

  /** Split sequence indices into one shard per replica, balancing linear + attention cost. */
  private shard(batch: LogprobBatch): number[][] {
    const reps = this.workers.length + 1;
    const c = this.model.config;
    const d = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const lin = 2 * (d * (qDim + 2 * c.numKvHeads * c.headDim) + qDim * d + 3 * d * c.intermediateSize);
    const att = 4 * qDim;
    const order = batch.sequences.map((s, i) => ({ i, cost: s.length * lin + s.length * s.length * att }));
    order.sort((a, b) => b.cost - a.cost);
    const shards: number[][] = Array.from({ length: reps }, () => []);
    const load = new Array<number>(reps).fill(0);
    for (const o of order) {
      let k = 0;
      for (let j = 1; j < reps; j++) if (load[j] < load[k]) k = j;
      shards[k].push(o.i);
      load[k] += o.cost;
    }
    for (const s of shards) s.sort((a, b) => a - b);
    return shards;
  }

  private sub(batch: LogprobBatch, idx: number[]): LogprobBatch {
    return {
      sequences: idx.map((i) => batch.sequences[i]),
      from: batch.from ? idx.map((i) => batch.from![i]) : undefined,
    };
  }

  /** Per-token log-probs and entropies (see {@link Transformer.computeLogprobs}), all replicas working. */
  async computeLogprobs(batch: LogprobBatch): Promise<LogprobResult> {
    await this.syncWeights();
    const shards = this.shard(batch);
    const reps = this.replicas;
    const results = await Promise.all(
      reps.map((r, k) => (shards[k].length ? r.logprobs(this.sub(batch, shards[k])) : null)),
    );
    const logprobs: Float32Array[] = new Array(batch.sequences.length);
    const entropy: Float32Array[] = new Array(batch.sequences.length);
    results.forEach((res, k) => {
      if (!res) return;
      shards[k].forEach((i, j) => {
        logprobs[i] = res.logprobs[j];
        entropy[i] = res.entropy[j];
      });
    });
    return { logprobs, entropy };
  }

  /**
   * Forward, loss over the whole batch, backward (see {@link Transformer.accumulateGradients}); the gradients of all
   * replicas end up in `model`'s gradient buffer.
   */
  async accumulateGradients(batch: LogprobBatch, lossFn: LogprobLossFn): Promise<AccumulateResult> {
    await this.syncWeights();
    this.model.grads();
    const shards = this.shard(batch);
    const reps = this.replicas;
    const passId = this.nextPass++;
    const active = reps.map((_, k) => shards[k].length > 0);
    let fwd: (TrainingShardResult | null)[];
    try {
      fwd = await Promise.all(
        reps.map((r, k) => (active[k] ? r.beginTraining(passId, this.sub(batch, shards[k])) : null)),
      );
    } catch (err) {
      reps.forEach((r, k) => active[k] && r.releasePass(passId));
      throw err;
    }
    const logprobs: Float32Array[] = new Array(batch.sequences.length);
    const entropy: Float32Array[] = new Array(batch.sequences.length);
    let tokens = 0;
    let recomputed = false;
    fwd.forEach((res, k) => {
      if (!res) return;
      tokens += res.tokens;
      recomputed ||= res.recomputed;
      shards[k].forEach((i, j) => {
        logprobs[i] = res.logprobs[j];
        entropy[i] = res.entropy[j];
      });
    });
    let out: { loss: number; grad: ArrayLike<number>[] };
    try {
      out = lossFn(logprobs, entropy);
      if (out.grad.length !== batch.sequences.length) {
        throw new Error(`lossFn returned ${out.grad.length} gradient arrays for ${batch.sequences.length} sequences`);
      }
    } catch (err) {
      reps.forEach((r, k) => active[k] && r.releasePass(passId));
      throw err;
    }
    const grads = await Promise.all(
      reps.map((r, k) =>
        active[k]
          ? r.backward(
              passId,
              shards[k].map((i) => Float32Array.from(out.grad[i])),
            )
          : Promise.resolve(null),
      ),
    );
    const G = this.model.grads();
    for (const g of grads) {
      if (!g) continue;
      for (let i = 0; i < G.length; i++) G[i] += g[i];
    }
    return { loss: out.loss, logprobs, entropy, tokens, recomputed };
  }

  /** Apply tuning knobs to every replica. */
  async setTuning(t: Partial<Transformer["tuning"]>): Promise<void> {
    this.model.tuning = { ...this.model.tuning, ...t };
    await Promise.all(this.workers.map((w) => w.setTuning(this.model.tuning)));
  }

  /** Stop the workers (the main model stays usable). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.local.close();
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
