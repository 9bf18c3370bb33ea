/**
 * Turns the rollout engine's event stream (`RolloutEvent`, src/rollout/types.ts) into the agent server's trace
 * events (agent-trace.ts): generated text is split into reasoning / query / internal / answer pieces with the
 * protocol's incremental parser, passages lose their raw corpus line, and the final trajectory becomes a `done`
 * summary with usage and timings. It also rebuilds the response text as it grows (generated text plus the
 * document blocks the environment inserts), which the OpenAI stream carries as `reasoning_content`.
 */
import type { IncrementalParser, ResponseProtocol, SegmentEvent } from "../protocol/types.js";
import type { RolloutEvent, Trajectory } from "../rollout/types.js";
import type { Passage } from "../util/types.js";
import type { AgentPassage, AgentSegmentKind, AgentTraceEvent, AgentUsage } from "./agent-trace.js";

export interface TranslatedEvent {
  /** Trace events this rollout event produces (zero or more, in order). */
  events: AgentTraceEvent[];
  /** Response text this rollout event adds (generated text, or an inserted document block). */
  responseDelta: string;
}

export function toAgentPassage(p: Passage): AgentPassage {
  const out: AgentPassage = { id: p.id, title: p.title, text: p.text };
  if (typeof p.score === "number" && Number.isFinite(p.score)) out.score = p.score;
  return out;
}

export function agentTrajectoryUsage(t: Trajectory): AgentUsage {
  if (t.chat) {
    // A chat model: no token ids, the provider's reported usage (documents are part of its input tokens).
    const p = t.chat.usage.inputTokens ?? 0;
    const c = t.chat.usage.outputTokens ?? 0;
    return {
      prompt_tokens: p,
      completion_tokens: c,
      total_tokens: t.chat.usage.totalTokens ?? p + c,
      inserted_tokens: 0,
    };
  }
  let generated = 0;
  for (const m of t.mask) if (m === 1) generated++;
  const inserted = t.responseTokens.length - generated;
  return {
    prompt_tokens: t.promptTokens.length,
    completion_tokens: generated,
    total_tokens: t.promptTokens.length + generated,
    inserted_tokens: inserted,
  };
}

const TEXT_KINDS: ReadonlySet<string> = new Set<AgentSegmentKind>(["reasoning", "query", "internal", "answer"]);

export class AgentEventTranslator {
  private readonly parser: IncrementalParser | null;
  private id = "";
  /** Response text so far (generated text and inserted document blocks). */
  responseText = "";
  /** Response text since the last inserted document block: where a query's closing tag would be. */
  private sinceObservation = "";

  constructor(
    private readonly protocol: ResponseProtocol | null,
    private readonly modelId = "",
  ) {
    this.parser = protocol ? protocol.createParser() : null;
  }

  private segments(chunk: string, final = false): AgentTraceEvent[] {
    if (!this.parser) {
      return chunk === "" ? [] : [{ type: "text", id: this.id, segment: "reasoning", delta: chunk }];
    }
    const evs: SegmentEvent[] = final ? this.parser.finish() : this.parser.push(chunk);
    const out: AgentTraceEvent[] = [];
    for (const e of evs) {
      if (e.type !== "delta" || e.text === "" || !TEXT_KINDS.has(e.kind)) continue;
      const segment = e.kind as AgentSegmentKind;
      const prev = out[out.length - 1];
      if (prev && prev.type === "text" && prev.segment === segment) prev.delta += e.text;
      else out.push({ type: "text", id: this.id, segment, delta: e.text });
    }
    return out;
  }

  /** Append response text (generated or inserted) and return the text events it completes. */
  private feed(text: string): AgentTraceEvent[] {
    if (text === "") return [];
    this.responseText += text;
    this.sinceObservation += text;
    return this.segments(text);
  }

  translate(ev: RolloutEvent): TranslatedEvent {
    const before = this.responseText.length;
    const events: AgentTraceEvent[] = [];
    switch (ev.type) {
      case "start":
        this.id = ev.id;
        events.push({
          type: "start",
          id: ev.id,
          question: ev.question,
          protocol: this.protocol?.name ?? "",
          model: this.modelId,
          created: Math.floor(Date.now() / 1000),
        });
        break;
      case "text":
        events.push(...this.feed(ev.delta));
        break;
      case "query": {
        // The rollout engine's text events include the closing query tag (the stop string); a source that cut it
        // from the text gets it back here, so the parser closes the query segment.
        const p = this.protocol;
        if (p) {
          const open = this.sinceObservation.lastIndexOf(p.queryOpen);
          if (open >= 0 && !this.sinceObservation.slice(open).includes(p.queryClose))
            events.push(...this.feed(p.queryClose));
        }
        events.push({ type: "query", id: ev.id, index: ev.index, query: ev.query });
        break;
      }
      case "documents": {
        // The inserted text: exact from the engine when given, else the protocol's rendering.
        const obs = ev.observation ?? (this.protocol ? this.protocol.renderObservation(ev.passages) : "");
        events.push(...this.feed(obs));
        this.sinceObservation = "";
        events.push({
          type: "documents",
          id: ev.id,
          index: ev.index,
          query: ev.query,
          passages: ev.passages.map(toAgentPassage),
          latency_ms: ev.latencyMs,
        });
        break;
      }
      case "internal":
        events.push({ type: "internal", id: ev.id, text: ev.text });
        break;
      case "answer":
        events.push({ type: "answer", id: ev.id, text: ev.text });
        break;
      case "done": {
        events.push(...this.segments("", true));
        const t = ev.trajectory;
        events.push({
          type: "done",
          id: ev.id,
          finish: t.finish,
          stop_reason: t.stopReasonFinal ?? null,
          answer: t.answer,
          retrievals: t.retrievals,
          queries: t.queries.slice(),
          usage: agentTrajectoryUsage(t),
          timings: {
            total_ms: t.timings.totalMs,
            backend_ms: t.timings.backendMs,
            retrieval_ms: t.timings.retrievalMs,
          },
          warnings: t.warnings.slice(),
          ...(t.error ? { error: t.error } : {}),
        });
        break;
      }
      case "error":
        events.push({ type: "error", id: ev.id, message: ev.message });
        break;
    }
    return { events, responseDelta: this.responseText.slice(before) };
  }
}
