/**
 * Test fixture: a bigram "language model" (a V×V logit table, p(next | prev) = softmax(W[prev])) in plain JS with exact
 * gradients and AdamW, implementing `TrainablePolicy`, plus a character tokenizer. It lets the trainer loops be unit
 * tested in milliseconds; the end-to-end tests use the built-in transformer.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import type { Tokenizer } from "../../util/types.js";
import { Rng } from "../../util/rng.js";
import type { ScoringModel, SequenceLossFn, SequenceScores, TokenSequence, TrainablePolicy } from "../policy.js";

/** Characters → ids; id 0 = BOS, id 1 = EOS. */
export class CharTokenizer implements Tokenizer {
  readonly bosTokenId = 0;
  readonly eosTokenIds = [1];
  private readonly index: Map<string, number>;
  constructor(readonly alphabet: string) {
    this.index = new Map([...alphabet].map((c, i) => [c, i + 2]));
  }
  get vocabSize(): number {
    return this.alphabet.length + 2;
  }
  encode(text: string): number[] {
    return [...text].map((c) => {
      const id = this.index.get(c);
      if (id === undefined) throw new Error(`CharTokenizer: no id for ${JSON.stringify(c)}`);
      return id;
    });
  }
  decode(ids: readonly number[]): string {
    return ids.map((i) => (i >= 2 ? this.alphabet[i - 2] : "")).join("");
  }
}

function logSoftmaxRow(w: Float64Array, off: number, v: number, out: Float64Array): void {
  let m = -Infinity;
  for (let j = 0; j < v; j++) m = Math.max(m, w[off + j]);
  let s = 0;
  for (let j = 0; j < v; j++) s += Math.exp(w[off + j] - m);
  const lse = m + Math.log(s);
  for (let j = 0; j < v; j++) out[j] = w[off + j] - lse;
}

export class TabularPolicy implements TrainablePolicy {
  readonly V: number;
  W: Float64Array;
  private G: Float64Array;
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;
  readonly betas: [number, number];
  constructor(
    readonly tokenizer: Tokenizer,
    opts: {
      seed?: number;
      init?: Float64Array;
      betas?: [number, number];
      maxGradNorm?: number;
      weightDecay?: number;
    } = {},
  ) {
    this.V = tokenizer.vocabSize;
    this.W = opts.init ? Float64Array.from(opts.init) : new Float64Array(this.V * this.V);
    if (!opts.init && opts.seed !== undefined) {
      const r = new Rng(opts.seed);
      for (let i = 0; i < this.W.length; i++) this.W[i] = r.normal() * 0.01;
    }
    this.G = new Float64Array(this.W.length);
    this.m = new Float64Array(this.W.length);
    this.v = new Float64Array(this.W.length);
    this.betas = opts.betas ?? [0.9, 0.95];
    this.maxGradNorm = opts.maxGradNorm ?? 1.0;
    this.weightDecay = opts.weightDecay ?? 0;
  }
  private readonly maxGradNorm: number;
  private readonly weightDecay: number;

  /** Probability row p(· | prev). */
  probs(prev: number): Float64Array {
    const row = new Float64Array(this.V);
    logSoftmaxRow(this.W, prev * this.V, this.V, row);
    return row.map(Math.exp);
  }

  async logprobs(batch: readonly TokenSequence[], opts: { entropy?: boolean } = {}): Promise<SequenceScores[]> {
    const row = new Float64Array(this.V);
    return batch.map((s) => {
      const n = s.tokens.length - s.start;
      const logp = new Float32Array(n);
      const ent = opts.entropy ? new Float32Array(n) : undefined;
      for (let k = 0; k < n; k++) {
        const t = s.start + k;
        logSoftmaxRow(this.W, s.tokens[t - 1] * this.V, this.V, row);
        logp[k] = row[s.tokens[t]];
        if (ent) {
          let h = 0;
          for (let j = 0; j < this.V; j++) h -= Math.exp(row[j]) * row[j];
          ent[k] = h;
        }
      }
      return ent ? { logp, entropy: ent } : { logp };
    });
  }

  async accumulateGradients(batch: readonly TokenSequence[], lossFn: SequenceLossFn): Promise<{ loss: number }> {
    const scores = await this.logprobs(batch);
    const { loss, grad } = lossFn(scores.map((s) => s.logp));
    const row = new Float64Array(this.V);
    batch.forEach((s, i) => {
      const g = grad[i];
      for (let k = 0; k < g.length; k++) {
        if (g[k] === 0) continue;
        const t = s.start + k;
        const prev = s.tokens[t - 1];
        logSoftmaxRow(this.W, prev * this.V, this.V, row);
        // d logp(y) / d W[prev][j] = 1[j = y] − p_j
        for (let j = 0; j < this.V; j++)
          this.G[prev * this.V + j] += g[k] * ((j === s.tokens[t] ? 1 : 0) - Math.exp(row[j]));
      }
    });
    return { loss };
  }

  gradNorm(): number {
    let s = 0;
    for (const g of this.G) s += g * g;
    return Math.sqrt(s);
  }

  async step({ lr }: { lr: number }): Promise<{ gradNorm: number }> {
    const norm = this.gradNorm();
    const scale = this.maxGradNorm > 0 && norm > this.maxGradNorm ? this.maxGradNorm / (norm + 1e-6) : 1;
    this.t++;
    const [b1, b2] = this.betas;
    for (let i = 0; i < this.W.length; i++) {
      const g = this.G[i] * scale;
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      const mh = this.m[i] / (1 - b1 ** this.t);
      const vh = this.v[i] / (1 - b2 ** this.t);
      this.W[i] -= lr * (mh / (Math.sqrt(vh) + 1e-8) + this.weightDecay * this.W[i]);
    }
    this.G.fill(0);
    return { gradNorm: norm };
  }

  zeroGrad(): void {
    this.G.fill(0);
  }

  async save(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, "tabular.json"), JSON.stringify({ V: this.V, W: Array.from(this.W) }));
  }
  async loadWeights(dir: string): Promise<void> {
    const j = JSON.parse(await fsp.readFile(path.join(dir, "tabular.json"), "utf8")) as { W: number[] };
    this.W = Float64Array.from(j.W);
  }
  async saveOptimizer(dir: string): Promise<string | null> {
    await fsp.writeFile(
      path.join(dir, "tabular-optim.json"),
      JSON.stringify({ t: this.t, m: Array.from(this.m), v: Array.from(this.v) }),
    );
    return "tabular-optim.json";
  }
  async loadOptimizer(dir: string, file: string): Promise<void> {
    const j = JSON.parse(await fsp.readFile(path.join(dir, file), "utf8")) as { t: number; m: number[]; v: number[] };
    this.t = j.t;
    this.m = Float64Array.from(j.m);
    this.v = Float64Array.from(j.v);
  }
  async frozenCopy(): Promise<ScoringModel> {
    return new TabularPolicy(this.tokenizer, { init: this.W });
  }

  /** Sample a continuation (ancestral sampling, temperature 1) until EOS or `maxTokens`. */
  sample(prefix: readonly number[], maxTokens: number, rng: Rng): { tokens: number[]; logprobs: number[] } {
    const out: number[] = [];
    const lps: number[] = [];
    let prev = prefix[prefix.length - 1];
    for (let i = 0; i < maxTokens; i++) {
      const p = this.probs(prev);
      let u = rng.next();
      let y = p.length - 1;
      for (let j = 0; j < p.length; j++) {
        u -= p[j];
        if (u < 0) {
          y = j;
          break;
        }
      }
      out.push(y);
      lps.push(Math.log(p[y]));
      if (this.tokenizer.eosTokenIds.includes(y)) break;
      prev = y;
    }
    return { tokens: out, logprobs: lps };
  }
}
