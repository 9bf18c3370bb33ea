/**
 * The rollout engine: generate until the model closes a query, retrieve, insert the documents, continue, until an
 * answer or a limit — for many trajectories at once, token-in/token-out.
 *
 * One engine = one protocol + one backend + one retriever + one mode. Trajectories share a retrieval micro-batcher
 * (one `Retriever.search` for the queries of concurrent trajectories) and, when the backend has `generateBatch`, a
 * generation micro-batcher. Errors of a backend or retriever call are retried, then mark that trajectory `error`; they
 * never reject the batch. Every trajectory can be cancelled (AbortSignal, per-trajectory timeout).
 *
 * Upstream behaviour reproduced (r1-searcher.md §1.5–1.7, §5.2, §8) and the deliberate token-in/token-out
 * differences are documented in docs/rollout.md.
 */
import { isChatBackend } from "../llm/chat/types.js";
import type { FinishReason, GenerateRequest, GenerateResult, LLMBackend, SamplingParams } from "../llm/types.js";
import type { RolloutMode } from "../protocol/types.js";
import { hashSeed } from "../util/rng.js";
import { afterLast, beforeFirst } from "../util/pystr.js";
import type { Passage, Tokenizer } from "../util/types.js";
import { MicroBatcher } from "./batcher.js";
import { runChatTrajectory } from "./chat-engine.js";
import { cooperativeYield } from "./scheduler.js";
import { recallEvents } from "./recalls.js";
import {
  ROLLOUT_DEFAULTS,
  UPSTREAM_UNKNOWN_ANSWER,
  type RolloutBatchingOptions,
  type RolloutEngineOptions,
  type RolloutItem,
  type RolloutLimits,
  type RolloutRetryOptions,
  type RunOneOptions,
  type RunRolloutsOptions,
} from "./options.js";
import type { RolloutEvent, Trajectory, TrajectoryFinish } from "./types.js";

interface RetrievalJob {
  query: string;
  k: number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error("aborted"));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason ?? new Error("aborted"));
      },
      { once: true },
    );
  });
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Text the sampled ids spell after the matched stop string (the token that completed the stop string may carry more,
 * e.g. `|>\n\n`). Found by decoding the segment's ids; "" when the decoder does not show the stop string.
 */
export function stopOverhang(tokenizer: Tokenizer, result: GenerateResult): string {
  if (result.finishReason !== "stop" || !result.stopString || result.tokens.length === 0) return "";
  // Decode a growing tail of the segment until it shows the stop string (the overhang lies in the last token).
  const stop = result.stopString;
  const n = result.tokens.length;
  for (let k = Math.min(n, 8); ; k = Math.min(n, k * 4)) {
    const decoded = tokenizer.decode(result.tokens.slice(n - k));
    const i = decoded.lastIndexOf(stop);
    if (i >= 0) return decoded.slice(i + stop.length);
    if (k === n) return "";
  }
}

/**
 * A reusable engine: holds the batchers, so concurrent `run()` calls (e.g. agent-server requests) share retrieval and
 * generation batches.
 */
export class RolloutEngine {
  readonly mode: RolloutMode;
  readonly limits: RolloutLimits;
  readonly sampling: Omit<SamplingParams, "maxTokens"> & { maxTokens?: number };
  private readonly retries: RolloutRetryOptions;
  private readonly retrievalBatchers = new Map<number, MicroBatcher<RetrievalJob, Passage[]>>();
  private readonly genBatcher: MicroBatcher<GenerateRequest, GenerateResult> | null;
  private readonly batching: RolloutBatchingOptions;
  /** Trajectories running, and how many of them wait for generation / retrieval right now (batching hints). */
  private active = 0;
  private readonly encodeCache = new EncodeCache(2048);
  private waitingGen = 0;
  private waitingRetrieval = 0;

  constructor(readonly opts: RolloutEngineOptions) {
    this.mode = opts.mode;
    if (isChatBackend(opts.backend) && opts.mode === "train")
      throw new Error(
        `${opts.backend.name} is a chat backend: its trajectories have no token ids, and training needs them (use a token-in/token-out backend: an OpenAI-compatible /v1/completions server with --tokenizer, a GGUF file or a checkpoint)`,
      );
    const d = ROLLOUT_DEFAULTS[opts.mode];
    this.limits = { ...d.limits, ...stripUndefined(opts.limits ?? {}) };
    this.sampling = {
      ...d.sampling,
      stop: opts.protocol.stopStrings(opts.mode),
      ...stripUndefined(opts.sampling ?? {}),
    };
    this.retries = { generate: 1, retrieve: 2, backoffMs: 200, ...stripUndefined(opts.retries ?? {}) };
    this.batching = {
      retrievalMaxBatch: 128,
      retrievalMaxWaitMs: 2,
      retrievalMaxInFlight: 2,
      generateMaxInFlight: 1,
      generateMaxBatch: 256,
      generateMaxWaitMs: 5,
      ...stripUndefined(opts.batching ?? {}),
    };
    const be = opts.backend;
    this.genBatcher = be.generateBatch
      ? new MicroBatcher<GenerateRequest, GenerateResult>((reqs) => be.generateBatch!(reqs), {
          maxBatch: this.batching.generateMaxBatch,
          maxWaitMs: this.batching.generateMaxWaitMs,
          maxInFlight: this.batching.generateMaxInFlight,
          ready: () => this.allWaiting(),
        })
      : null;
  }

  /** Batches and items sent so far (retrieval, generation). */
  stats(): { retrievalBatches: number; retrievalQueries: number; generateBatches: number; generateRequests: number } {
    let rb = 0;
    let rq = 0;
    for (const b of this.retrievalBatchers.values()) {
      rb += b.batches;
      rq += b.items;
    }
    return {
      retrievalBatches: rb,
      retrievalQueries: rq,
      generateBatches: this.genBatcher?.batches ?? 0,
      generateRequests: this.genBatcher?.items ?? 0,
    };
  }

  private retrievalBatcher(k: number): MicroBatcher<RetrievalJob, Passage[]> {
    let b = this.retrievalBatchers.get(k);
    if (!b) {
      b = new MicroBatcher<RetrievalJob, Passage[]>(
        (jobs) =>
          this.opts.retriever.search(
            jobs.map((j) => j.query),
            k,
          ),
        {
          maxBatch: this.batching.retrievalMaxBatch,
          maxWaitMs: this.batching.retrievalMaxWaitMs,
          maxInFlight: this.batching.retrievalMaxInFlight,
          ready: () => this.allWaiting(),
        },
      );
      this.retrievalBatchers.set(k, b);
    }
    return b;
  }

  /** Every running trajectory waits for generation or retrieval: nobody else can join a batch soon. */
  private allWaiting(): boolean {
    return this.active - this.waitingGen - this.waitingRetrieval <= 0;
  }

  private pokeBatchers(): void {
    this.genBatcher?.poke();
    for (const b of this.retrievalBatchers.values()) b.poke();
  }

  private async generateOnce(req: GenerateRequest): Promise<GenerateResult> {
    this.waitingGen++;
    this.pokeBatchers();
    try {
      if (this.genBatcher) return await this.genBatcher.submit(req, req.signal);
      return await this.opts.backend.generate(req);
    } finally {
      this.waitingGen--;
    }
  }

  private async retrieveOnce(query: string, k: number, signal: AbortSignal | undefined): Promise<Passage[]> {
    this.waitingRetrieval++;
    this.pokeBatchers();
    try {
      return await this.retrievalBatcher(k).submit({ query, k }, signal);
    } finally {
      this.waitingRetrieval--;
    }
  }

  private async withRetries<T>(
    what: string,
    attempts: number,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
    warnings: string[],
  ): Promise<T> {
    let last: unknown;
    for (let i = 0; i <= attempts; i++) {
      if (i > 0) {
        warnings.push(`${what} failed (${errMessage(last)}); retry ${i}/${attempts}`);
        await sleep(this.retries.backoffMs * 2 ** (i - 1), signal);
      }
      try {
        return await fn();
      } catch (err) {
        if (signal?.aborted) throw err;
        last = err;
      }
    }
    throw new Error(`${what} failed after ${attempts + 1} attempts: ${errMessage(last)}`);
  }

  /** The prompt text of an item. */
  promptFor(item: RolloutItem): string {
    return item.prompt ?? this.opts.protocol.buildPrompt(item.question, this.opts.promptOptions);
  }

  /** Prompt token ids (BOS added per `addBos`). Cached: the samples of a group share their prompt. */
  encodePrompt(promptText: string): number[] {
    const cached = this.encodeCache.get(promptText, "prompt");
    if (cached) return cached.slice();
    const tok = this.opts.backend.tokenizer;
    const ids = tok.encode(promptText);
    const addBos = this.opts.addBos ?? "auto";
    const bos = tok.bosTokenId;
    if (bos !== null && (addBos === true || (addBos === "auto" && ids[0] !== bos))) ids.unshift(bos);
    this.encodeCache.set(promptText, "prompt", ids);
    return ids.slice();
  }

  /** Token ids of an inserted observation (cached: samples of a group often retrieve the same documents). */
  encodeObservation(text: string): readonly number[] {
    const cached = this.encodeCache.get(text, "obs");
    if (cached) return cached;
    const ids = this.opts.backend.tokenizer.encode(text);
    this.encodeCache.set(text, "obs", ids);
    return ids;
  }

  /** Roll out one trajectory. Never rejects: failures end the trajectory with `finish: "error"` / `"aborted"`. */
  async run(item: RolloutItem, one: RunOneOptions = {}): Promise<Trajectory> {
    const k = one.sampleIndex ?? 0;
    const signals = [this.opts.signal, one.signal].filter((s): s is AbortSignal => s !== undefined);
    if (this.limits.timeoutMs > 0) signals.push(AbortSignal.timeout(this.limits.timeoutMs));
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    this.active++;
    try {
      const id = one.id ?? (k > 0 ? `${item.id}#${k}` : item.id);
      if (isChatBackend(this.opts.backend)) return await this.runChat(item, id, k, signal, one.onEvent);
      return await this.runInner(item, id, signal, one.onEvent);
    } finally {
      this.active--;
      this.pokeBatchers();
    }
  }

  /** A chat backend's trajectory (src/rollout/chat-engine.ts), sharing this engine's retrieval batches. */
  private runChat(
    item: RolloutItem,
    id: string,
    sampleIndex: number,
    signal: AbortSignal | undefined,
    onEventLocal?: (e: RolloutEvent) => void,
  ): Promise<Trajectory> {
    const backend = this.opts.backend;
    if (!isChatBackend(backend)) throw new Error("not a chat backend");
    return runChatTrajectory(
      {
        protocol: this.opts.protocol,
        backend,
        mode: this.opts.chatMode ?? backend.searchMode,
        limits: this.limits,
        sampling: {
          temperature: this.sampling.temperature,
          topP: this.sampling.topP,
          ...(this.sampling.seed !== undefined ? { seed: hashSeed(this.sampling.seed, sampleIndex) } : {}),
        },
        ...(this.opts.promptOptions ? { promptOptions: this.opts.promptOptions } : {}),
        stream: this.opts.onEvent !== undefined || onEventLocal !== undefined,
        retrieve: (q, k, s, warnings) =>
          this.withRetries("retrieval", this.retries.retrieve, s, () => this.retrieveOnce(q, k, s), warnings),
        emit: (e) => {
          for (const f of [this.opts.onEvent, onEventLocal]) {
            if (!f) continue;
            try {
              f(e);
            } catch {
              // a listener's failure must not break the rollout
            }
          }
        },
      },
      { id, group: item.group ?? item.id, question: item.question, gold: item.gold, prompt: item.prompt },
      signal,
    );
  }

  private async runInner(
    item: RolloutItem,
    id: string,
    signal: AbortSignal | undefined,
    onEventLocal?: (e: RolloutEvent) => void,
  ): Promise<Trajectory> {
    const t0 = performance.now();
    const { protocol, backend } = this.opts;
    const tok = backend.tokenizer;
    const mode = this.mode;
    const L = this.limits;
    const emit = (e: RolloutEvent): void => {
      for (const f of [this.opts.onEvent, onEventLocal]) {
        if (!f) continue;
        try {
          f(e);
        } catch {
          // a listener's failure must not break the rollout
        }
      }
    };
    const warnings: string[] = [];
    const warnOnce = (w: string): void => {
      if (!warnings.includes(w)) warnings.push(w);
    };
    let promptText = "";
    let promptTokens: number[] = [];
    let responseText = "";
    const responseTokens: number[] = [];
    /** prompt + response ids: the sequence the next segment continues. */
    let seqTokens: number[] = [];
    const mask: number[] = [];
    const logprobs: number[] = [];
    const queries: string[] = [];
    const documents: Passage[][] = [];
    let retrievals = 0;
    let turns = 0;
    let backendMs = 0;
    let retrievalMs = 0;
    let finish: TrajectoryFinish = "eos";
    let stopReasonFinal: string | undefined;
    let answer: string | null = null;
    let error: string | undefined;
    const feedParser = recallEvents(protocol, emit, id);
    /** Retrieve for query `q` and insert the observation after the sampled closing tag (`overhang` = sampled text after it). */
    const doRetrieval = async (q: string, overhang: string): Promise<void> => {
      const index = queries.length;
      queries.push(q);
      emit({ type: "query", id, index, query: q });
      const r0 = performance.now();
      const passages = await this.withRetries(
        "retrieval",
        this.retries.retrieve,
        signal,
        () => this.retrieveOnce(q, L.topK, signal),
        warnings,
      );
      const latencyMs = performance.now() - r0;
      // A batch resolves many trajectories at once: continue in time slices so the event loop stays responsive.
      await cooperativeYield();
      retrievalMs += latencyMs;
      let observation = protocol.renderObservation(passages);
      if (overhang) {
        if (observation.startsWith(overhang)) observation = observation.slice(overhang.length);
        else
          warnOnce(
            `sampled text after the closing query tag (${JSON.stringify(overhang)}) is kept before the inserted documents`,
          );
      }
      const obsTokens = this.encodeObservation(observation);
      for (const t of obsTokens) {
        responseTokens.push(t);
        seqTokens.push(t);
        mask.push(0);
        logprobs.push(Number.NaN);
      }
      responseText += observation;
      feedParser(observation);
      retrievals++;
      documents.push(passages);
      emit({ type: "documents", id, index, query: q, passages, latencyMs, observation });
    };

    try {
      // Many trajectories start together: build and encode the prompts in time slices.
      await cooperativeYield();
      promptText = this.promptFor(item);
      promptTokens = this.encodePrompt(promptText);
      seqTokens = promptTokens.slice();
      emit({ type: "start", id, question: item.question, prompt: promptText });
      for (;;) {
        if (signal?.aborted) throw signal.reason ?? new Error("aborted");
        if (retrievals >= L.maxSearches && L.atLimit === "stop") {
          finish = "max_searches";
          stopReasonFinal = "many_retrieve";
          break;
        }
        const budget = L.maxTotalTokens - responseTokens.length;
        if (budget <= 0) {
          finish = "max_total_tokens";
          stopReasonFinal = mode === "eval" ? "shot_down" : undefined;
          break;
        }
        const params: SamplingParams = {
          ...this.sampling,
          maxTokens: Math.min(L.segmentMaxTokens, budget),
          stop: this.sampling.stop,
          seed: this.sampling.seed === undefined ? undefined : hashSeed(this.sampling.seed, id, turns),
        };
        let streamed = "";
        const req: GenerateRequest = {
          // The live sequence (not copied per turn; it only grows after the call returns, and backends copy it).
          tokens: seqTokens,
          text: promptText + responseText,
          params,
          signal,
          onText: (delta) => {
            if (delta === "") return;
            streamed += delta;
            emit({ type: "text", id, delta });
            feedParser(delta);
          },
        };
        let attempt = 0;
        const res = await this.withRetries(
          "generation",
          this.retries.generate,
          signal,
          () => {
            if (attempt++ > 0 && streamed !== "") {
              warnOnce(
                "a generation was retried after part of it was streamed: the text events of the failed attempt were already sent",
              );
              streamed = "";
            }
            return this.generateOnce(req);
          },
          warnings,
        );
        await cooperativeYield();
        turns++;
        backendMs += res.backendMs;
        if (!res.tokenIdsExact) warnOnce("token ids re-tokenized from text by the backend (not exact)");
        // Generated text not streamed yet (non-streaming backends, or a backend that streamed less).
        const rest = res.text.startsWith(streamed) ? res.text.slice(streamed.length) : "";
        if (!res.text.startsWith(streamed)) warnOnce("streamed text differs from the final segment text");
        if (rest) {
          emit({ type: "text", id, delta: rest });
          feedParser(rest);
        }
        const overhang = stopOverhang(tok, res);
        const suffix = res.finishReason === "stop" && res.stopString ? res.stopString + overhang : "";
        if (suffix) {
          emit({ type: "text", id, delta: suffix });
          feedParser(suffix);
        }
        responseText += res.text + suffix;
        for (let i = 0; i < res.tokens.length; i++) {
          responseTokens.push(res.tokens[i]);
          seqTokens.push(res.tokens[i]);
          mask.push(1);
          logprobs.push(res.logprobs && i < res.logprobs.length ? res.logprobs[i] : Number.NaN);
        }
        if (res.logprobs === null && this.sampling.logprobs !== false) warnOnce("backend returned no log-probs");

        const seg = res.text;
        const stoppedOnQuery = res.finishReason === "stop" && res.stopString === protocol.queryClose;
        const stoppedOnAnswer = res.finishReason === "stop" && res.stopString === protocol.answerClose;
        const limitSegment = retrievals >= L.maxSearches; // only reachable with atLimit "final-segment"

        if (mode === "eval") {
          if (stoppedOnAnswer && seg.includes(protocol.answerOpen)) {
            finish = "answer";
            stopReasonFinal = "finished";
            answer = beforeFirst(afterLast(seg, protocol.answerOpen), protocol.answerClose);
            break;
          }
          if (!(stoppedOnQuery && seg.includes(protocol.queryOpen))) {
            finish = endFinish(res.finishReason);
            stopReasonFinal = "shot_down";
            break;
          }
          const q = protocol.extractQuery(seg, mode);
          if (q === null) {
            finish = "empty_query";
            stopReasonFinal = "query_inst_error";
            break;
          }
          if (limitSegment) {
            finish = "max_searches";
            stopReasonFinal = "many_retrieve";
            break;
          }
          await doRetrieval(q, overhang);
          continue;
        }

        // Training mode.
        if (!stoppedOnQuery) {
          answer = protocol.extractAnswer(responseText);
          finish = answer !== null ? "answer" : endFinish(res.finishReason);
          break;
        }
        const q = protocol.extractQuery(seg, mode);
        if (q === null) {
          if (!seg.includes(protocol.queryOpen)) warnOnce("a query was closed without an opening tag");
          finish = "empty_query";
          answer = protocol.extractAnswer(responseText);
          break;
        }
        if (limitSegment) {
          finish = "max_searches";
          answer = protocol.extractAnswer(responseText);
          break;
        }
        await doRetrieval(q, overhang);
      }
    } catch (err) {
      if (signal?.aborted) {
        finish = "aborted";
        error = errMessage(signal.reason ?? err);
      } else {
        finish = "error";
        error = errMessage(err);
      }
      if (mode === "eval") stopReasonFinal = stopReasonFinal ?? "error";
      emit({ type: "error", id, message: error });
    }

    feedParser("", true);
    if (answer !== null) emit({ type: "answer", id, text: answer });
    const trajectory: Trajectory = {
      id,
      group: item.group ?? item.id,
      question: item.question,
      ...(item.gold !== undefined ? { gold: item.gold } : {}),
      protocol: protocol.name,
      promptText,
      promptTokens,
      responseText,
      responseTokens,
      mask,
      logprobs,
      retrievals,
      queries,
      documents,
      answer,
      finish,
      ...(mode === "eval" && stopReasonFinal !== undefined ? { stopReasonFinal } : {}),
      ...(error !== undefined ? { error } : {}),
      turns,
      timings: { totalMs: performance.now() - t0, backendMs, retrievalMs },
      warnings,
    };
    emit({ type: "done", id, trajectory });
    return trajectory;
  }
}

/** A small LRU of tokenizations (insertion-ordered Map; the oldest entry goes first). */
class EncodeCache {
  private readonly map = new Map<string, number[]>();
  constructor(private readonly capacity: number) {}
  get(text: string, kind: string): number[] | undefined {
    const key = kind + "\u0000" + text;
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(text: string, kind: string, ids: number[]): void {
    const key = kind + "\u0000" + text;
    this.map.set(key, ids);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }
}

function endFinish(r: FinishReason): TrajectoryFinish {
  return r === "length" ? "length" : "eos";
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Default number of trajectories in flight for a backend. */
export function defaultRolloutConcurrency(backend: LLMBackend): number {
  if (backend.generateBatch) return 64;
  return backend.maxConcurrency ?? 16;
}

/**
 * Roll out every item `samplesPerItem` times with bounded concurrency. Results are in item order, samples of an item
 * contiguous (ids `item#k` when `samplesPerItem > 1`). Never rejects for a failed trajectory (see `finish`/`error`).
 */
export async function runRollouts(opts: RunRolloutsOptions): Promise<Trajectory[]> {
  const engine = new RolloutEngine(opts);
  const n = Math.max(1, opts.samplesPerItem ?? 1);
  const jobs: Array<{ item: RolloutItem; k: number }> = [];
  for (const item of opts.items) for (let k = 0; k < n; k++) jobs.push({ item, k });
  const limit = Math.max(1, opts.concurrency ?? defaultRolloutConcurrency(opts.backend));
  const out = new Array<Trajectory>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const j = next++;
      const { item, k } = jobs[j];
      out[j] = await engine.run(item, { sampleIndex: k, id: n > 1 ? `${item.id}#${k}` : item.id });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

/** Roll out one item once. */
export async function runTrajectory(
  opts: RolloutEngineOptions & { item: RolloutItem; sampleIndex?: number; id?: string },
): Promise<Trajectory> {
  return new RolloutEngine(opts).run(opts.item, { sampleIndex: opts.sampleIndex, id: opts.id });
}

/** Create a reusable engine (share it between concurrent requests to batch their retrievals and generations). */
export function createRolloutEngine(opts: RolloutEngineOptions): RolloutEngine {
  return new RolloutEngine(opts);
}

/** `pred_ans` as upstream evaluation writes it: the answer of a `finished` trajectory, else "I don't know.". */
export function upstreamPredAnswer(t: Trajectory): string {
  return t.stopReasonFinal === "finished" && t.answer !== null ? t.answer : UPSTREAM_UNKNOWN_ANSWER;
}
