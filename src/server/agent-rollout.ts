/**
 * The real search agent behind the agent server: the rollout engine (src/rollout) over an LLM backend, a retriever
 * and a protocol, in evaluation mode by default (greedy, stops on the answer's closing tag). Requests with the same
 * limits share one engine, so concurrent requests share retrieval (and, with a batching backend, generation) batches.
 */
import type { LLMBackend, SamplingParams } from "../llm/types.js";
import type { PromptOptions, ResponseProtocol, RolloutMode } from "../protocol/types.js";
import type { Retriever } from "../retrieval/types.js";
import { RolloutEngine, ROLLOUT_DEFAULTS, type RolloutLimits } from "../rollout/index.js";
import type { RolloutEvent } from "../rollout/types.js";
import type { SearchAgent, SearchAgentRunOptions } from "./agent.js";

export interface RolloutAgentOptions {
  backend: LLMBackend;
  retriever: Retriever;
  protocol: ResponseProtocol;
  /** The id `/v1/models` lists (default: the backend's name). */
  modelId?: string;
  /** Rollout mode (default "eval": greedy, stops on the answer's closing tag, upstream evaluation limits). */
  mode?: RolloutMode;
  promptOptions?: PromptOptions;
  /** Sampling defaults (requests may override temperature, top_p and seed). */
  sampling?: Partial<SamplingParams>;
  /** Base limits (requests set maxSearches, the token budget and top-k within the server's caps). */
  limits?: Partial<RolloutLimits>;
  /** Close the backend and the retriever when the agent closes (default true). */
  closeComponents?: boolean;
}

let seq = 0;

export class RolloutAgent implements SearchAgent {
  readonly modelId: string;
  readonly protocol: ResponseProtocol;
  private readonly engines = new Map<string, RolloutEngine>();
  private readonly mode: RolloutMode;

  constructor(private readonly opts: RolloutAgentOptions) {
    this.modelId = opts.modelId ?? opts.backend.name;
    this.protocol = opts.protocol;
    this.mode = opts.mode ?? "eval";
  }

  /** An engine for these per-request settings (cached; the most recent 16 are kept). */
  private engineFor(o: SearchAgentRunOptions): RolloutEngine {
    const sampling: Partial<SamplingParams> = { ...(this.opts.sampling ?? {}) };
    if (o.temperature !== undefined) sampling.temperature = o.temperature;
    if (o.topP !== undefined) sampling.topP = o.topP;
    if (o.seed !== undefined) sampling.seed = o.seed;
    const limits: Partial<RolloutLimits> = {
      ...(this.opts.limits ?? {}),
      maxSearches: o.maxSearches,
      maxTotalTokens: o.maxTokens,
    };
    if (o.topK !== undefined) limits.topK = o.topK;
    const key = JSON.stringify([sampling, limits]);
    let engine = this.engines.get(key);
    if (engine) {
      this.engines.delete(key);
      this.engines.set(key, engine);
      return engine;
    }
    engine = new RolloutEngine({
      protocol: this.opts.protocol,
      backend: this.opts.backend,
      retriever: this.opts.retriever,
      mode: this.mode,
      sampling,
      limits,
      ...(this.opts.promptOptions ? { promptOptions: this.opts.promptOptions } : {}),
    });
    this.engines.set(key, engine);
    if (this.engines.size > 16) this.engines.delete(this.engines.keys().next().value as string);
    return engine;
  }

  async *run(question: string, o: SearchAgentRunOptions): AsyncGenerator<RolloutEvent> {
    const engine = this.engineFor(o);
    const id = `req-${Date.now().toString(36)}-${(++seq).toString(36)}`;
    const queue: RolloutEvent[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown = null;
    const done = engine
      .run({ id, question }, { id, signal: o.signal, onEvent: (e) => (queue.push(e), wake?.()) })
      .then(
        () => undefined,
        (err: unknown) => {
          failure = err;
        },
      )
      .finally(() => {
        finished = true;
        wake?.();
      });
    for (;;) {
      while (queue.length > 0) yield queue.shift() as RolloutEvent;
      if (finished) break;
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
    await done;
    if (failure) throw failure;
  }

  describe(): Record<string, unknown> {
    const d = ROLLOUT_DEFAULTS[this.mode];
    return {
      backend: this.opts.backend.name,
      retriever: this.opts.retriever.name,
      mode: this.mode,
      defaults: {
        ...d.sampling,
        ...(this.opts.sampling ?? {}),
        segment_max_tokens: this.opts.limits?.segmentMaxTokens ?? d.limits.segmentMaxTokens,
      },
    };
  }

  async close(): Promise<void> {
    if (this.opts.closeComponents === false) return;
    await Promise.allSettled([this.opts.backend.close(), this.opts.retriever.close()]);
  }
}

/** The real agent: rollout engine + backend + retriever + protocol. */
export function createRolloutAgent(opts: RolloutAgentOptions): RolloutAgent {
  return new RolloutAgent(opts);
}
