/**
 * Unit tests of the agent server's pure parts: the SSE reader of the client (chunks split anywhere), the trace
 * reducer, the admission queue, the request's question, and the event translator over real protocols.
 */
import { describe, expect, it } from "vitest";
import { getProtocol } from "../src/protocol/index.js";
import type { RolloutEvent, Trajectory } from "../src/rollout/types.js";
import { agentQuestionFromMessages, agentFinishReason } from "../src/server/agent.js";
import { agentSseData } from "../src/server/agent-client.js";
import { AgentEventTranslator } from "../src/server/agent-events.js";
import { AgentQueueFullError, AgentRequestQueue } from "../src/server/agent-queue.js";
import { applyAgentEvent, buildAgentTrace, emptyAgentTrace, type AgentTraceEvent } from "../src/server/agent-trace.js";
import { passagesFromBlock } from "../src/server/agent-views.js";
import { HttpStatusError } from "../src/server/common.js";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("agentSseData", () => {
  const text =
    ': comment\n\ndata: {"a":1}\n\nevent: x\ndata: line1\ndata: line2\n\r\ndata:nospace\r\n\r\ndata: {"é":"ü😀"}\n\ndata: [DONE]\n\n';
  const expected = ['{"a":1}', "line1\nline2", "nospace", '{"é":"ü😀"}', "[DONE]"];

  it("parses a stream delivered in one piece", async () => {
    expect(await collect(agentSseData(streamOf([text])))).toEqual(expected);
  });

  it("parses the same stream split at every byte boundary", async () => {
    const bytes = new TextEncoder().encode(text);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const s = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(bytes.slice(0, cut));
          c.enqueue(bytes.slice(cut));
          c.close();
        },
      });
      expect(await collect(agentSseData(s)), `cut at ${cut}`).toEqual(expected);
    }
  });

  it("flushes a last event without a blank line", async () => {
    expect(await collect(agentSseData(streamOf(["data: a\n\ndata: b"])))).toEqual(["a", "b"]);
  });
});

describe("trace reducer", () => {
  const evs: AgentTraceEvent[] = [
    { type: "start", id: "t", question: "q?", protocol: "r1-searcher-plus", model: "m", created: 1 },
    { type: "text", id: "t", segment: "reasoning", delta: "I will " },
    { type: "text", id: "t", segment: "reasoning", delta: "search. " },
    { type: "text", id: "t", segment: "query", delta: " citibank" },
    { type: "text", id: "t", segment: "query", delta: " founded" },
    { type: "query", id: "t", index: 0, query: "citibank founded" },
    {
      type: "documents",
      id: "t",
      index: 0,
      query: "citibank founded",
      passages: [{ id: "1", title: "Citibank", text: "1812" }],
      latency_ms: 4,
    },
    { type: "text", id: "t", segment: "internal", delta: " Madison " },
    { type: "internal", id: "t", text: " Madison was president " },
    { type: "text", id: "t", segment: "answer", delta: " James" },
    { type: "answer", id: "t", text: " James Madison" },
    {
      type: "done",
      id: "t",
      finish: "answer",
      stop_reason: "finished",
      answer: " James Madison",
      retrievals: 1,
      queries: ["citibank founded"],
      usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30, inserted_tokens: 5 },
      timings: { total_ms: 9, backend_ms: 5, retrieval_ms: 4 },
      warnings: [],
    },
  ];

  it("folds events into steps: live drafts become final", () => {
    const t = buildAgentTrace(evs);
    expect(t.steps).toEqual([
      { kind: "reasoning", text: "I will search. " },
      {
        kind: "query",
        index: 0,
        query: "citibank founded",
        passages: [{ id: "1", title: "Citibank", text: "1812" }],
        latency_ms: 4,
      },
      { kind: "internal", text: " Madison was president ", complete: true },
      { kind: "answer", text: " James Madison", complete: true },
    ]);
    expect(t).toMatchObject({
      done: true,
      answer: " James Madison",
      retrievals: 1,
      finish: "answer",
      protocol: "r1-searcher-plus",
    });
  });

  it("shows a query while it is written, before the query event", () => {
    const t = emptyAgentTrace();
    for (const e of evs.slice(0, 5)) applyAgentEvent(t, e);
    expect(t.steps[1]).toEqual({ kind: "query", index: -1, query: " citibank founded" });
  });

  it("builds steps from final events alone (no text events)", () => {
    const t = buildAgentTrace(evs.filter((e) => e.type !== "text"));
    expect(t.steps.map((s) => s.kind)).toEqual(["query", "internal", "answer"]);
  });

  it("records an error", () => {
    const t = buildAgentTrace([evs[0], { type: "error", id: "t", message: "boom" }]);
    expect(t).toMatchObject({ done: true, error: "boom" });
  });
});

describe("admission queue", () => {
  it("runs up to the concurrency, queues up to the limit, refuses the rest", async () => {
    const q = new AgentRequestQueue(2, 1);
    const r1 = await q.acquire();
    const r2 = await q.acquire();
    let third = false;
    const p3 = q.acquire().then((r) => ((third = true), r));
    await expect(q.acquire()).rejects.toBeInstanceOf(AgentQueueFullError);
    expect([q.active, q.waiting]).toEqual([2, 1]);
    r1();
    r1(); // a second release is ignored
    const r3 = await p3;
    expect(third).toBe(true);
    expect([q.active, q.waiting]).toEqual([2, 0]);
    r2();
    r3();
    expect(q.active).toBe(0);
  });

  it("drops a waiter whose signal aborts", async () => {
    const q = new AgentRequestQueue(1, 4);
    const r1 = await q.acquire();
    const ac = new AbortController();
    const p = q.acquire(ac.signal);
    expect(q.waiting).toBe(1);
    ac.abort(new Error("gone"));
    await expect(p).rejects.toThrow("gone");
    expect(q.waiting).toBe(0);
    r1();
    expect(q.active).toBe(0);
  });
});

describe("request question", () => {
  it("takes the text of the last user message", () => {
    expect(
      agentQuestionFromMessages([
        { role: "system", content: "be brief" },
        { role: "user", content: "first" },
        { role: "assistant", content: "x" },
        { role: "user", content: [{ type: "text", text: "second" }, { type: "image_url" }] },
      ]),
    ).toBe("second");
  });

  it("refuses a conversation without a user question", () => {
    expect(() => agentQuestionFromMessages([{ role: "system", content: "x" }])).toThrow(HttpStatusError);
    expect(() => agentQuestionFromMessages([{ role: "user", content: "   " }])).toThrow(/no text/);
  });

  it("maps finishes to OpenAI finish reasons", () => {
    expect(agentFinishReason("answer")).toBe("stop");
    expect(agentFinishReason("length")).toBe("length");
    expect(agentFinishReason("max_total_tokens")).toBe("length");
    expect(agentFinishReason("max_searches")).toBe("stop");
  });
});

describe("event translator", () => {
  for (const name of ["r1-searcher", "r1-searcher-plus"]) {
    it(`splits ${name} text into segments and rebuilds the response text`, () => {
      const p = getProtocol(name);
      const passages = [{ id: "7", title: "Citibank", text: "founded in 1812", raw: "7\tCitibank   founded in 1812" }];
      const observation = p.renderObservation(passages);
      const generated = [
        ` Let me search ${p.queryOpen} citibank`,
        ` founded${p.queryClose}`,
        ...(name.endsWith("plus") ? [" <internal> Madison ", "</internal>"] : []),
        ` so ${p.answerOpen} James`,
        ` Madison${p.answerClose}`,
      ];
      const responseText = generated[0] + generated[1] + observation + generated.slice(2).join("");
      const traj = {
        finish: "answer",
        answer: " James Madison",
        retrievals: 1,
        queries: ["citibank founded"],
        promptTokens: [1, 2, 3],
        responseTokens: [1, 2, 3, 4, 5, 6],
        mask: [1, 1, 0, 0, 1, 1],
        timings: { totalMs: 5, backendMs: 3, retrievalMs: 1 },
        warnings: [],
        stopReasonFinal: "finished",
      } as unknown as Trajectory;
      const events: RolloutEvent[] = [
        { type: "start", id: "t", question: "q", prompt: "P" },
        { type: "text", id: "t", delta: generated[0] },
        { type: "text", id: "t", delta: generated[1] },
        { type: "query", id: "t", index: 0, query: "citibank founded" },
        { type: "documents", id: "t", index: 0, query: "citibank founded", passages, latencyMs: 2, observation },
        // As the engine does: the internal event right after the text that closes the internal block.
        ...generated
          .slice(2)
          .flatMap((delta): RolloutEvent[] => [
            { type: "text", id: "t", delta },
            ...(delta === "</internal>" ? [{ type: "internal" as const, id: "t", text: " Madison " }] : []),
          ]),
        { type: "answer", id: "t", text: " James Madison" },
        { type: "done", id: "t", trajectory: traj },
      ];
      const tr = new AgentEventTranslator(p, "m");
      const out: AgentTraceEvent[] = [];
      let rebuilt = "";
      for (const e of events) {
        const r = tr.translate(e);
        out.push(...r.events);
        rebuilt += r.responseDelta;
      }
      expect(rebuilt).toBe(responseText);
      const t = buildAgentTrace(out);
      const kinds = t.steps.filter((s) => !(s.kind === "reasoning" && s.text.trim() === "")).map((s) => s.kind);
      expect(kinds).toEqual([
        "reasoning",
        "query",
        ...(name.endsWith("plus") ? ["internal"] : []),
        "reasoning",
        "answer",
      ]);
      const q = t.steps.find((s) => s.kind === "query");
      expect(q).toMatchObject({ index: 0, query: "citibank founded", latency_ms: 2 });
      expect(q && q.kind === "query" && q.passages).toEqual([{ id: "7", title: "Citibank", text: "founded in 1812" }]);
      expect(t.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, inserted_tokens: 2 });
      expect(t.answer).toBe(" James Madison");
      // Query text streamed before the query event, with the tags removed.
      expect(
        out
          .filter((e) => e.type === "text" && e.segment === "query")
          .map((e) => (e as { delta: string }).delta)
          .join(""),
      ).toBe(" citibank founded");
    });
  }

  it("passes reasoning through unsplit without a protocol", () => {
    const tr = new AgentEventTranslator(null);
    expect(tr.translate({ type: "text", id: "t", delta: "<x>" }).events).toEqual([
      { type: "text", id: "", segment: "reasoning", delta: "<x>" },
    ]);
  });
});

describe("document blocks of recorded results", () => {
  it("splits numbered items", () => {
    expect(passagesFromBlock("\n(1)A   text a\n(2)B   text b\n").map((p) => p.text)).toEqual([
      "A   text a",
      "B   text b",
    ]);
    expect(passagesFromBlock("None")).toEqual([{ id: "", title: "", text: "None" }]);
    expect(passagesFromBlock(" \n")).toEqual([]);
  });
});
