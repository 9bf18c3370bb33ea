/**
 * The built-in model as an {@link LLMBackend}: continuous-batching KV-cache sampling on the wasm engine
 * (src/model/generate.ts). Concurrent `generate` calls are batched together automatically; `generateBatch` submits a
 * whole batch at once. The backend samples from the live weights of its {@link Transformer}: when the trainer passes
 * the model it trains, every optimizer step is picked up at the next decode step for free; otherwise
 * {@link BuiltinBackend.updateWeights} copies new weights in (one memcpy).
 */
import { BatchGenerator, type GenerateInput } from "../model/generate.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { BpeTokenizer } from "../model/tokenizer/bpe.js";
import { type HfTokenizer, loadTokenizer } from "../model/tokenizer/hf.js";
import { ParallelModel } from "../model/parallel.js";
import type { Transformer } from "../model/transformer.js";
import { getRuntime } from "../model/runtime.js";
import type { GenerateRequest, GenerateResult, LLMBackend, Tokenizer } from "./types.js";

export interface BuiltinBackendOptions {
  /** Model folder (config.json + safetensors + tokenizer.json) to load. */
  checkpointDir?: string;
  /**
   * An in-memory model (used as is: its weights are sampled live). A {@link ParallelModel} spreads the sequences over
   * its worker replicas (all cores); its workers pick up the main model's new weights before the next step.
   */
  model?: Transformer | ParallelModel;
  /** With checkpointDir: worker replicas to start besides this thread (default 0). */
  workers?: number;
  /** Tokenizer for `model` (default: loaded from checkpointDir). */
  tokenizer?: Tokenizer;
  /** Most sequences decoded together (default 128). */
  maxBatch?: number;
  /** Longest sequence, prompt + new tokens (default: the model's maxPositions). */
  maxContext?: number;
  /** Most prompt tokens prefilled per forward pass (default 4096). */
  prefillTokens?: number;
  /** With a ParallelModel: also decode on this thread (default true; false keeps the event loop free). */
  useCallingThread?: boolean;
  /** XNNPACK threads for a model loaded from checkpointDir (default 1; see runtime.ts). */
  threads?: number;
}

export interface BuiltinBackend extends LLMBackend {
  /** The sampled model (the main model of a ParallelModel). */
  readonly model: Transformer;
  /** Copy weights from another model of the same configuration (or a flat weight array) into the sampling model. */
  updateWeights(source: Transformer | Float32Array): void;
  /** Sample from a different model object from now on (same configuration and runtime). */
  setModel(model: Transformer): void;
  /** Decode/prefill counters since creation. */
  readonly stats: { prefillTokens: number; decodeTokens: number; steps: number; prefillMs: number; decodeMs: number };
}

/**
 * Our own byte-level BPE implementation of a loaded tokenizer.json when it is one (same ids on a probe text): it
 * streams text from token bytes exactly and is faster than re-decoding windows through the generic library.
 */
function nativeByteLevel(hf: HfTokenizer): BpeTokenizer | null {
  try {
    const name = (id: number | null): string | null => (id === null ? null : (hf.idToToken(id) ?? null));
    const bpe = BpeTokenizer.fromJson(hf.json, {
      bos: name(hf.bosTokenId),
      eos: hf.eosTokenIds.map((e) => name(e)).filter((x): x is string => x !== null),
    });
    const probe = "Probe: héllo wörld 123, 'quotes' <|endoftext|> 日本 😀\n\n  end";
    const a = bpe.encode(probe);
    const b = hf.encode(probe);
    if (a.length !== b.length || a.some((x, i) => x !== b[i]) || bpe.vocabSize !== hf.vocabSize) return null;
    if (bpe.eosTokenIds.length !== hf.eosTokenIds.length) return null;
    return bpe;
  } catch {
    return null;
  }
}

/** Create the built-in backend from a checkpoint folder or an in-memory model + tokenizer. */
export async function createBuiltinBackend(opts: BuiltinBackendOptions): Promise<BuiltinBackend> {
  let model: Transformer | ParallelModel | undefined = opts.model;
  let tokenizer = opts.tokenizer;
  let owned = false;
  if (!model) {
    if (!opts.checkpointDir) throw new Error("createBuiltinBackend: give checkpointDir or model");
    const rt = await getRuntime({ threads: opts.threads });
    const loaded = await loadCheckpoint(opts.checkpointDir, { runtime: rt });
    model = opts.workers ? await ParallelModel.create(loaded, { workers: opts.workers }) : loaded;
    owned = true;
  }
  const main = model instanceof ParallelModel ? model.model : model;
  if (!tokenizer) {
    if (!opts.checkpointDir) throw new Error("createBuiltinBackend: a tokenizer is required with an in-memory model");
    const hf = await loadTokenizer(opts.checkpointDir);
    tokenizer = nativeByteLevel(hf) ?? hf;
  }
  if (tokenizer.vocabSize > main.config.vocabSize) {
    throw new Error(`tokenizer has ${tokenizer.vocabSize} tokens, the model only ${main.config.vocabSize}`);
  }
  const gen = new BatchGenerator(model, tokenizer, {
    maxBatch: opts.maxBatch,
    maxContext: opts.maxContext,
    prefillTokens: opts.prefillTokens,
    useCallingThread: opts.useCallingThread,
  });
  const tok = tokenizer;
  const toInput = (req: GenerateRequest): GenerateInput => ({
    tokens: req.tokens,
    params: {
      temperature: req.params.temperature,
      topP: req.params.topP,
      topK: req.params.topK,
      maxTokens: req.params.maxTokens,
      stop: req.params.stop,
      seed: req.params.seed,
      logprobs: req.params.logprobs,
    },
    onText: req.onText,
    signal: req.signal,
  });
  const run = async (req: GenerateRequest): Promise<GenerateResult> => {
    const t0 = performance.now();
    const out = await gen.generate(toInput(req));
    return {
      tokens: out.tokens,
      text: out.text,
      logprobs: out.logprobs,
      finishReason: out.finishReason,
      stopString: out.stopString,
      tokenIdsExact: true,
      backendMs: performance.now() - t0,
    };
  };
  let closed = false;
  const backend: BuiltinBackend = {
    name: `builtin:${opts.checkpointDir ?? "memory"}`,
    tokenizer: tok,
    maxConcurrency: gen.maxBatch,
    get model() {
      return gen.currentModel;
    },
    get stats() {
      return gen.stats;
    },
    generate: run,
    generateBatch: (reqs) => Promise.all(reqs.map(run)),
    updateWeights(source) {
      const m = gen.currentModel;
      if (source instanceof Float32Array) m.setWeights(source);
      else m.copyWeightsFrom(source);
    },
    setModel(m) {
      gen.setModel(m);
    },
    async close() {
      if (closed) return;
      closed = true;
      gen.close();
      if (owned) {
        if (model instanceof ParallelModel) await model.close();
        gen.currentModel.dispose();
      }
    },
  };
  return backend;
}
