/**
 * Batched sampling with a KV cache and continuous batching: every request (a token sequence + sampling parameters)
 * is prefilled (several at once, packed), then all active sequences advance one token per decode step together.
 * Requests may arrive at any time (`generate` from concurrent callers joins the running batch at the next step).
 *
 * Per request: temperature (0 = greedy), top-p, top-k, stop strings matched on the decoded new text (vLLM semantics:
 * the tokens that spelled the stop string are kept, the text is cut before it), EOS ids, max tokens, a seed (each
 * request has its own random stream, so results do not depend on what else is in the batch), the log-prob of each
 * sampled token under the unmodified distribution (before temperature/top-k/top-p), and streaming of the text.
 */
import type { Tokenizer } from "../util/types.js";
import { ParallelModel } from "./parallel.js";
import { LocalReplica, type Replica, type SampledToken } from "./replica.js";
import type { SampleOptions } from "./sampling.js";
import type { Transformer } from "./transformer.js";

export { type SampleOptions, sampleToken } from "./sampling.js";

export interface GenerateInput {
  /** The whole sequence so far (token ids). */
  tokens: readonly number[];
  params: SampleOptions;
  /** Streaming: called with each new piece of text (never with text of a matched stop string). */
  onText?: (delta: string) => void;
  signal?: AbortSignal;
}

export interface GenerateOutput {
  /** New token ids, including the tokens that spelled a matched stop string and a final EOS token. */
  tokens: number[];
  /** Decoded new text, cut before the matched stop string (EOS not included). */
  text: string;
  /** log p(token) under the model's unmodified distribution, one per token; null when not requested. */
  logprobs: number[] | null;
  finishReason: "stop" | "eos" | "length";
  stopString: string | null;
}

export interface GeneratorOptions {
  /** Most sequences decoded together (default 128). */
  maxBatch?: number;
  /** Longest sequence (prompt + new tokens); default the model's maxPositions. */
  maxContext?: number;
  /** Most prompt tokens prefilled in one forward pass (default 4096; smaller = shorter event-loop stalls). */
  prefillTokens?: number;
  /**
   * With a ParallelModel that has workers: also decode on the calling thread (default true). false keeps the
   * caller's event loop free (all sampling runs in the workers), at the cost of one core's share of throughput.
   */
  useCallingThread?: boolean;
}

/** Incremental detokenizer: exact byte streaming when the tokenizer exposes token bytes, else windowed re-decoding. */
class Detok {
  private readonly dec = new TextDecoder("utf-8");
  private prefix = 0;
  private read = 0;
  constructor(
    private readonly tok: Tokenizer & { tokenBytes?: (id: number) => Uint8Array },
    private readonly ids: number[],
  ) {}
  /** Ids the tokenizer knows (a model may have more embedding rows than the tokenizer has tokens). */
  private known(ids: number[]): number[] {
    const V = this.tok.vocabSize;
    return ids.some((i) => i >= V) ? ids.filter((i) => i < V) : ids;
  }
  /** Text added by the ids appended since the last call. */
  next(): string {
    if (this.tok.tokenBytes) {
      let s = "";
      for (; this.read < this.ids.length; this.read++) {
        const id = this.ids[this.read];
        if (id < this.tok.vocabSize) s += this.dec.decode(this.tok.tokenBytes(id), { stream: true });
      }
      return s;
    }
    const prefixText = this.tok.decode(this.known(this.ids.slice(this.prefix, this.read)));
    const full = this.tok.decode(this.known(this.ids.slice(this.prefix)));
    if (full.length > prefixText.length && !full.endsWith("\uFFFD")) {
      const delta = full.slice(prefixText.length);
      this.prefix = this.read;
      this.read = this.ids.length;
      return delta;
    }
    return "";
  }
  /** Remaining text at the end of generation. */
  flush(): string {
    if (this.tok.tokenBytes) return this.dec.decode();
    const prefixText = this.tok.decode(this.known(this.ids.slice(this.prefix, this.read)));
    const full = this.tok.decode(this.known(this.ids.slice(this.prefix)));
    this.prefix = this.read = this.ids.length;
    return full.slice(prefixText.length);
  }
}

interface Seq {
  id: number;
  /** Index of the replica holding this sequence's KV cache. */
  replica: number;
  input: GenerateInput;
  prompt: number[];
  gen: number[];
  /** Generated ids excluding a final EOS (what the text is decoded from). */
  textIds: number[];
  lps: number[];
  /** Positions held in the KV cache. */
  cacheLen: number;
  seed: number;
  detok: Detok;
  text: string;
  emitted: number;
  maxStop: number;
  done: boolean;
  resolve: (o: GenerateOutput) => void;
  reject: (e: unknown) => void;
}

let seedCounter = 0;
let seqCounter = 0;

/**
 * Continuous-batching generator over one model — a {@link Transformer} on this thread, or a {@link ParallelModel}
 * whose worker replicas each hold a share of the sequences (their KV caches and sampling run there). Weights are
 * read at every step, so after an optimizer step on the same model the next step samples from the new policy.
 */
export class BatchGenerator {
  readonly maxBatch: number;
  readonly maxContext: number;
  readonly prefillTokens: number;
  private pending: Seq[] = [];
  private active: Seq[] = [];
  private running = false;
  private closed = false;
  private readonly eos: Set<number>;
  private readonly replicas: Replica[];
  private readonly parallel: ParallelModel | null;
  private readonly ownLocal: LocalReplica | null;
  /** Replicas that receive new sequences. */
  private readonly usable: boolean[];
  /** Counters for benchmarks. */
  stats = { prefillTokens: 0, decodeTokens: 0, steps: 0, prefillMs: 0, decodeMs: 0 };

  constructor(
    model: Transformer | ParallelModel,
    readonly tokenizer: Tokenizer,
    opts: GeneratorOptions = {},
  ) {
    if (model instanceof ParallelModel) {
      this.parallel = model;
      this.ownLocal = null;
      this.replicas = model.replicas;
    } else {
      this.parallel = null;
      this.ownLocal = new LocalReplica(model);
      this.replicas = [this.ownLocal];
    }
    const skipLocal = opts.useCallingThread === false && this.replicas.length > 1;
    this.usable = this.replicas.map((r) => !(skipLocal && r instanceof LocalReplica));
    const cfg = this.currentModel.config;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 128);
    this.maxContext = Math.min(cfg.maxPositions, opts.maxContext ?? cfg.maxPositions);
    this.prefillTokens = Math.max(1, opts.prefillTokens ?? 4096);
    this.eos = new Set([...tokenizer.eosTokenIds, ...cfg.eosTokenIds]);
  }

  /**
   * Sample from another model object of the same configuration from now on (single-thread generators only; with a
   * ParallelModel update its main model's weights instead). In-flight sequences keep their caches.
   */
  setModel(model: Transformer): void {
    if (!this.ownLocal)
      throw new Error("setModel: not available on a ParallelModel generator (update its weights instead)");
    const cur = this.ownLocal.model;
    if (model.config.vocabSize !== cur.config.vocabSize || model.cacheSlotFloats(1) !== cur.cacheSlotFloats(1)) {
      throw new Error("setModel: the new model's configuration differs");
    }
    if (model.rt !== cur.rt) throw new Error("setModel: the new model lives in another runtime");
    this.ownLocal.model = model;
  }

  /** The model sampled from (the main model of a ParallelModel). */
  get currentModel(): Transformer {
    return this.parallel ? this.parallel.model : this.ownLocal!.model;
  }

  /** Generate for one request (joins the running batch). */
  generate(input: GenerateInput): Promise<GenerateOutput> {
    if (this.closed) return Promise.reject(new Error("generator is closed"));
    return new Promise<GenerateOutput>((resolve, reject) => {
      try {
        const seq = this.makeSeq(input, resolve, reject);
        if (seq) {
          this.pending.push(seq);
          this.kick();
        }
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Generate for many requests; results keep the request order. */
  generateBatch(inputs: GenerateInput[]): Promise<GenerateOutput[]> {
    return Promise.all(inputs.map((i) => this.generate(i)));
  }

  /** Reject pending work and free the KV caches (a ParallelModel itself stays open). */
  close(): void {
    this.closed = true;
    for (const s of [...this.pending, ...this.active]) this.fail(s, new Error("generator closed"));
    this.pending = [];
    this.active = [];
    if (this.ownLocal) void this.ownLocal.close();
  }

  private makeSeq(
    input: GenerateInput,
    resolve: (o: GenerateOutput) => void,
    reject: (e: unknown) => void,
  ): Seq | null {
    const p = input.params;
    if (!(p.maxTokens >= 0)) throw new Error("maxTokens must be >= 0");
    if (!(p.temperature >= 0)) throw new Error("temperature must be >= 0");
    if (!(p.topP > 0 && p.topP <= 1)) throw new Error("topP must be in (0, 1]");
    const cfg = this.currentModel.config;
    const V = cfg.vocabSize;
    let prompt = Array.from(input.tokens);
    for (const t of prompt)
      if (!(Number.isInteger(t) && t >= 0 && t < V)) throw new Error(`token id ${t} outside [0, ${V})`);
    if (prompt.length === 0) {
      const bos = this.tokenizer.bosTokenId ?? cfg.bosTokenId;
      if (bos === null) throw new Error("empty prompt and the tokenizer has no BOS token");
      prompt = [bos];
    }
    if (prompt.length > this.maxContext) {
      throw new Error(`prompt of ${prompt.length} tokens exceeds the context of ${this.maxContext} tokens`);
    }
    const seed = p.seed ?? (Date.now() ^ (++seedCounter * 0x9e3779b1)) >>> 0;
    const textIds: number[] = [];
    const seq: Seq = {
      id: ++seqCounter,
      replica: -1,
      input,
      prompt,
      gen: [],
      textIds,
      lps: [],
      cacheLen: 0,
      seed,
      detok: new Detok(this.tokenizer as Tokenizer & { tokenBytes?: (id: number) => Uint8Array }, textIds),
      text: "",
      emitted: 0,
      maxStop: p.stop.reduce((m, st) => Math.max(m, st.length), 0),
      done: false,
      resolve,
      reject,
    };
    if (p.maxTokens === 0 || prompt.length >= this.maxContext) {
      resolve({
        tokens: [],
        text: "",
        logprobs: p.logprobs === false ? null : [],
        finishReason: "length",
        stopString: null,
      });
      return null;
    }
    return seq;
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed && (this.pending.length > 0 || this.active.length > 0)) {
        this.dropAborted();
        if (this.parallel) await this.parallel.syncWeights();
        if (this.pending.length > 0 && this.active.length < this.maxBatch) await this.admit();
        if (this.active.length > 0) await this.decode();
        // Let concurrent callers enqueue and streaming callbacks run.
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (err) {
      for (const s of [...this.pending, ...this.active]) this.fail(s, err);
      this.pending = [];
      this.active = [];
    } finally {
      this.running = false;
      if (!this.closed && this.pending.length > 0) this.kick();
    }
  }

  private dropAborted(): void {
    const aborted = (s: Seq): boolean => Boolean(s.input.signal?.aborted);
    for (const s of this.pending.filter(aborted)) this.fail(s, new Error("generation aborted"));
    for (const s of this.active.filter(aborted)) this.fail(s, new Error("generation aborted"));
    this.pending = this.pending.filter((s) => !s.done);
    this.active = this.active.filter((s) => !s.done);
  }

  private release(s: Seq): void {
    if (s.replica >= 0) this.replicas[s.replica].releaseSeqs([s.id]);
    s.replica = -1;
  }

  private fail(s: Seq, err: unknown): void {
    if (s.done) return;
    s.done = true;
    this.release(s);
    s.reject(err);
  }

  /** Run `fn` on every replica that has work, workers first so they overlap with the local (synchronous) one. */
  private async onReplicas(groups: Seq[][], fn: (r: Replica, seqs: Seq[]) => Promise<SampledToken[]>): Promise<void> {
    const results = await Promise.all(groups.map((g, k) => (g.length ? fn(this.replicas[k], g) : Promise.resolve([]))));
    groups.forEach((g, k) => g.forEach((s, i) => this.accept(s, results[k][i])));
  }

  private async admit(): Promise<void> {
    const batch: Seq[] = [];
    let tokens = 0;
    while (this.pending.length > 0 && this.active.length + batch.length < this.maxBatch) {
      const s = this.pending[0];
      if (batch.length > 0 && tokens + s.prompt.length > this.prefillTokens) break;
      this.pending.shift();
      batch.push(s);
      tokens += s.prompt.length;
    }
    // Balance by live sequences per replica.
    const load = this.replicas.map(() => 0);
    for (const s of this.active) load[s.replica]++;
    const groups: Seq[][] = this.replicas.map(() => []);
    for (const s of batch) {
      let k = this.usable.indexOf(true);
      for (let j = 0; j < load.length; j++) if (this.usable[j] && load[j] < load[k]) k = j;
      s.replica = k;
      load[k]++;
      groups[k].push(s);
    }
    const t0 = performance.now();
    try {
      await this.onReplicas(groups, (r, g) =>
        r.prefillSample(
          g.map((s) => ({ id: s.id, tokens: s.prompt, params: s.input.params, seed: s.seed })),
          this.maxContext,
        ),
      );
    } catch (err) {
      for (const s of batch) this.fail(s, err);
      return;
    }
    this.stats.prefillMs += performance.now() - t0;
    this.stats.prefillTokens += tokens;
    for (const s of batch) {
      s.cacheLen = s.prompt.length;
      if (!s.done) this.active.push(s);
    }
  }

  private async decode(): Promise<void> {
    const act = this.active;
    const groups: Seq[][] = this.replicas.map(() => []);
    for (const s of act) groups[s.replica].push(s);
    const t0 = performance.now();
    await this.onReplicas(groups, (r, g) =>
      r.decodeSample(
        g.map((s) => ({ id: s.id, token: s.gen[s.gen.length - 1], pos: s.cacheLen })),
        this.maxContext,
      ),
    );
    this.stats.decodeMs += performance.now() - t0;
    this.stats.decodeTokens += act.length;
    this.stats.steps++;
    for (const s of act) s.cacheLen++;
    this.active = this.active.filter((s) => !s.done);
  }

  /** Take the sampled next token of `s` and update stop/EOS/length state. */
  private accept(s: Seq, sampled: SampledToken): void {
    if (s.done) return;
    const p = s.input.params;
    const { token, logprob } = sampled;
    s.gen.push(token);
    s.lps.push(logprob);
    if (this.eos.has(token)) {
      this.finish(s, "eos", null, -1);
      return;
    }
    s.textIds.push(token);
    const delta = s.detok.next();
    if (delta) {
      const before = s.text.length;
      s.text += delta;
      if (p.stop.length > 0) {
        const from = Math.max(0, before - s.maxStop + 1);
        let hit = -1;
        let hitStr: string | null = null;
        for (const st of p.stop) {
          if (st.length === 0) continue;
          const i = s.text.indexOf(st, from);
          if (i >= 0 && (hit < 0 || i < hit)) {
            hit = i;
            hitStr = st;
          }
        }
        if (hitStr !== null) {
          this.finish(s, "stop", hitStr, hit);
          return;
        }
      }
      this.stream(s, false);
    }
    if (s.gen.length >= p.maxTokens || s.prompt.length + s.gen.length >= this.maxContext)
      this.finish(s, "length", null, -1);
  }

  private stream(s: Seq, final: boolean, cut = -1): void {
    const cb = s.input.onText;
    if (!cb) return;
    const end =
      cut >= 0 ? cut : final ? s.text.length : Math.max(s.emitted, s.text.length - Math.max(0, s.maxStop - 1));
    if (end > s.emitted) {
      const piece = s.text.slice(s.emitted, end);
      s.emitted = end;
      try {
        cb(piece);
      } catch {
        // A failing callback must not break the batch.
      }
    }
  }

  private finish(s: Seq, reason: "stop" | "eos" | "length", stop: string | null, cut: number): void {
    if (s.done) return;
    if (reason !== "stop") s.text += s.detok.flush();
    const text = cut >= 0 ? s.text.slice(0, cut) : s.text;
    s.text = text;
    this.stream(s, true, cut >= 0 ? cut : -1);
    s.done = true;
    this.release(s);
    s.resolve({
      tokens: s.gen.slice(),
      text,
      logprobs: s.input.params.logprobs === false ? null : s.lps.slice(),
      finishReason: reason,
      stopString: stop,
    });
  }
}
