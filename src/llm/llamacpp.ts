/**
 * Embedded GGUF backend on node-llama-cpp (CPU, `threads: 1` by default: on a 2-vCPU box more threads make decoding
 * 20-40x slower).
 *
 * Parallel trajectories run on the sequences of one llama.cpp context; node-llama-cpp puts concurrent evaluations of
 * different sequences into the same decode batch. A free sequence is picked by the longest common prefix with the
 * request, so a trajectory's next segment reuses the KV cache of its earlier segments.
 *
 * Sampling ("js" sampler, the default for vocabularies up to 65,536 tokens): every step asks llama.cpp for the raw
 * logits of the next token (`controlledEvaluate` with `generateNext.logits`, greedy sampler chain = untouched logits),
 * then samples in JS with temperature / top-k / top-p and a seeded RNG. The reported log-prob is the raw log-softmax
 * of the sampled token, as the contract asks. The "native" sampler (`evaluateWithMetadata` with `confidence`) is faster
 * for very large vocabularies, but llama.cpp reports the probability after temperature and top-p truncation, which
 * equals the raw one only for greedy decoding or temperature 1 without top-p/top-k; otherwise a warning is recorded.
 */
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { Rng, hashSeed } from "../util/rng.js";
import type { Tokenizer } from "../util/types.js";
import { sampleLogits } from "./sampling.js";
import { StopStringMatcher, stableTextLength } from "./stop.js";
import type { FinishReason, GenerateRequest, GenerateResult, LLMBackend } from "./types.js";

export interface LlamaCppBackendOptions {
  modelPath: string;
  /** Context size of each sequence (default: the model's training context, at most 4096). */
  contextSize?: number;
  /** Parallel sequences = how many trajectories generate at once (default 4). */
  sequences?: number;
  /** CPU threads (default 1). */
  threads?: number;
  /** Tokens per decode batch (default: node-llama-cpp's). */
  batchSize?: number;
  /** Use this tokenizer for the `tokenizer` property (e.g. the model's tokenizer.json); default: the GGUF vocabulary. */
  tokenizer?: Tokenizer;
  /** "auto": js for vocabularies <= 65,536, else native. */
  sampler?: "auto" | "js" | "native";
  onWarning?: (message: string) => void;
}

let llamaPromise: Promise<Llama> | null = null;

/** The process-wide CPU llama.cpp instance (prebuilt binary only, never a source build or a download). */
export async function getCpuLlama(): Promise<Llama> {
  if (!llamaPromise) {
    llamaPromise = (async () => {
      const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
      return getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
    })();
    llamaPromise.catch(() => (llamaPromise = null));
  }
  return llamaPromise;
}

/** A `Tokenizer` over a GGUF vocabulary. `encode` recognizes special-token text and adds no leading space. */
export class GgufTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  constructor(private readonly model: LlamaModel) {
    const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer
      ?.ggml?.tokens;
    let n = Array.isArray(tokens) ? tokens.length : 0;
    if (n === 0) for (const _ of model.iterateAllTokens()) n++;
    this.vocabSize = n;
    this.bosTokenId = model.tokens.bos;
    const eos = new Set<number>();
    if (model.tokens.eos !== null) eos.add(model.tokens.eos);
    if (model.tokens.eot !== null) eos.add(model.tokens.eot);
    this.eosTokenIds = [...eos];
  }
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.model.tokenize(text, true, "trimLeadingSpace") as number[];
  }
  decode(ids: readonly number[]): string {
    return this.model.detokenize(ids as Token[], false);
  }
}

interface SeqSlot {
  seq: LlamaContextSequence;
  busy: boolean;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class LlamaCppBackend implements LLMBackend {
  readonly name: string;
  readonly tokenizer: Tokenizer;
  readonly maxConcurrency: number;
  private readonly slots: SeqSlot[];
  private readonly waiters: Array<() => void> = [];
  private readonly useJsSampler: boolean;
  private readonly warned = new Set<string>();
  private calls = 0;

  private constructor(
    private readonly opts: LlamaCppBackendOptions,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    readonly contextSize: number,
  ) {
    this.name = `llama.cpp:${opts.modelPath}`;
    this.tokenizer = opts.tokenizer ?? new GgufTokenizer(model);
    const seqs: SeqSlot[] = [];
    while (context.sequencesLeft > 0) seqs.push({ seq: context.getSequence(), busy: false });
    this.slots = seqs;
    this.maxConcurrency = seqs.length;
    const vocab = new GgufTokenizer(model).vocabSize;
    const mode = opts.sampler ?? "auto";
    this.useJsSampler = mode === "js" || (mode === "auto" && vocab <= 65_536);
  }

  static async load(opts: LlamaCppBackendOptions): Promise<LlamaCppBackend> {
    const llama = await getCpuLlama();
    const model = await llama.loadModel({ modelPath: opts.modelPath, gpuLayers: 0 });
    try {
      const sequences = Math.max(1, opts.sequences ?? 4);
      const contextSize = opts.contextSize ?? Math.min(model.trainContextSize || 2048, 4096);
      const context = await model.createContext({
        contextSize: contextSize * sequences,
        sequences,
        threads: opts.threads ?? 1,
        ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
      });
      return new LlamaCppBackend(opts, model, context, Math.floor(context.contextSize / sequences));
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }

  private warn(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.opts.onWarning?.(msg);
  }

  /** Take the free sequence sharing the longest prefix with `tokens` (waits when all are busy). */
  private async acquire(tokens: readonly number[], signal?: AbortSignal): Promise<SeqSlot> {
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error("aborted");
      let best: SeqSlot | null = null;
      let bestLen = -1;
      for (const s of this.slots) {
        if (s.busy) continue;
        const len = commonPrefix(s.seq.contextTokens, tokens);
        if (len > bestLen) {
          best = s;
          bestLen = len;
        }
      }
      if (best) {
        best.busy = true;
        return best;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private release(slot: SeqSlot): void {
    slot.busy = false;
    const w = this.waiters.shift();
    if (w) w();
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    if (req.tokens.length === 0)
      throw new Error(`${this.name}: empty prompt (at least one token, e.g. BOS, is needed)`);
    const slot = await this.acquire(req.tokens, req.signal);
    const t0 = performance.now();
    try {
      const res = await this.run(slot.seq, req);
      res.backendMs = performance.now() - t0;
      return res;
    } catch (err) {
      // Leave no half-evaluated state behind.
      await slot.seq.clearHistory().catch(() => {});
      throw err;
    } finally {
      this.release(slot);
    }
  }

  private async run(seq: LlamaContextSequence, req: GenerateRequest): Promise<GenerateResult> {
    const p = req.params;
    const room = this.contextSize - req.tokens.length;
    if (room <= 0) {
      return {
        tokens: [],
        text: "",
        logprobs: [],
        finishReason: "length",
        stopString: null,
        tokenIdsExact: true,
        backendMs: 0,
      };
    }
    const maxNew = Math.min(p.maxTokens, room);
    // Align the sequence's KV cache with the request: keep the common prefix, evaluate the rest (at least 1 token).
    const common = Math.min(commonPrefix(seq.contextTokens, req.tokens), req.tokens.length - 1);
    if (seq.nextTokenIndex > common) await seq.eraseContextTokenRanges([{ start: common, end: seq.nextTokenIndex }]);
    const pending = req.tokens.slice(common) as Token[];
    const matcher = new StopStringMatcher(p.stop);
    const tail = req.tokens.slice(-8) as Token[];
    const out: number[] = [];
    const lps: number[] = [];
    let text = "";
    let emitted = 0;
    let finishReason: FinishReason = "length";
    let stopString: string | null = null;
    const seed = p.seed ?? hashSeed(Date.now(), ++this.calls);
    const rng = new Rng(seed);
    const eog = (t: number): boolean => this.model.isEogToken(t as Token);

    const onToken = (token: number, logprob: number): boolean => {
      out.push(token);
      lps.push(logprob);
      if (eog(token)) {
        finishReason = "eos";
        return true;
      }
      const prevLen = text.length;
      text = this.model.detokenize(out as Token[], false, tail);
      const m = matcher.find(text, Math.min(prevLen, text.length));
      if (m) {
        text = text.slice(0, m.index);
        finishReason = "stop";
        stopString = m.stop;
        return true;
      }
      if (req.onText) {
        const upto = Math.min(matcher.safeLength(text), stableTextLength(text));
        if (upto > emitted) {
          req.onText(text.slice(emitted, upto));
          emitted = upto;
        }
      }
      return out.length >= maxNew;
    };

    if (this.useJsSampler) {
      let input: Token[] = pending;
      for (;;) {
        if (req.signal?.aborted) throw req.signal.reason ?? new Error("aborted");
        const items = input.map((t, i) =>
          i === input.length - 1 ? ([t, { generateNext: { logits: true } }] as const) : t,
        );
        const res = await seq.controlledEvaluate(items as Parameters<LlamaContextSequence["controlledEvaluate"]>[0]);
        const logitsMap = res[input.length - 1]?.next?.logits;
        if (!logitsMap) throw new Error(`${this.name}: llama.cpp returned no logits`);
        const ids = new Int32Array(logitsMap.size);
        const vals = new Float64Array(logitsMap.size);
        let k = 0;
        for (const [tok, v] of logitsMap) {
          ids[k] = tok;
          vals[k] = v;
          k++;
        }
        const s = sampleLogits(vals, { temperature: p.temperature, topP: p.topP, topK: p.topK }, rng);
        if (onToken(ids[s.index], s.logprob)) break;
        input = [ids[s.index] as Token];
      }
    } else {
      const exactLp = !(p.temperature > 0) || (p.temperature === 1 && p.topP >= 1 && !(p.topK && p.topK > 0));
      if (!exactLp && p.logprobs !== false) {
        this.warn(
          `${this.name}: native sampler: log-probs are of the temperature/top-p processed distribution, not the raw one`,
        );
      }
      const gen = seq.evaluateWithMetadata(
        pending,
        { confidence: true },
        {
          temperature: p.temperature,
          topP: p.topP,
          ...(p.topK ? { topK: p.topK } : {}),
          seed,
          yieldEogToken: true,
        },
      );
      for await (const r of gen) {
        if (req.signal?.aborted) {
          await gen.return();
          throw req.signal.reason ?? new Error("aborted");
        }
        if (onToken(r.token, Math.log(r.confidence))) {
          await gen.return();
          break;
        }
      }
    }
    if (req.onText && text.length > emitted) req.onText(text.slice(emitted));
    return {
      tokens: out,
      text,
      logprobs: p.logprobs === false ? null : lps,
      finishReason,
      stopString,
      tokenIdsExact: true,
      backendMs: 0,
    };
  }

  async close(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

/** Load a GGUF file into a backend. */
export async function createLlamaCppBackend(opts: LlamaCppBackendOptions): Promise<LlamaCppBackend> {
  return LlamaCppBackend.load(opts);
}
