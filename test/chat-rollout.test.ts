/**
 * Chat backends in the rollout engine, against TEST DOUBLES of the providers' HTTP APIs (test/chat-doubles.ts: OpenAI
 * chat completions, Anthropic messages, Ollama's OpenAI-compatible chat; streaming and tool calls), a real BM25 index
 * and the real AI SDK provider packages: a protocol-mode and a tool-mode trajectory each, stop handling, malformed /
 * unknown tool calls, 429 with retry, keys never written anywhere.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatBackend } from "../src/llm/chat/spec.js";
import { isChatBackend } from "../src/llm/chat/types.js";
import { createBackend } from "../src/llm/factory.js";
import { getProtocol } from "../src/protocol/index.js";
import type { Retriever } from "../src/retrieval/types.js";
import { RolloutEngine, runRollouts } from "../src/rollout/engine.js";
import type { RolloutEvent, Trajectory } from "../src/rollout/types.js";
import { openTestRetriever } from "./agent-fixtures.js";
import { conversationText, startChatDouble, type ChatDouble, type Script } from "./chat-doubles.js";

const KEY = "sk-test-0123456789abcdef-SECRET";
const protocol = getProtocol("r1-searcher");
let dir: string;
let retriever: Retriever;
const doubles: ChatDouble[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-chat-"));
  retriever = await openTestRetriever(path.join(dir, "idx"));
});
afterAll(async () => {
  await retriever?.close();
  await Promise.all(doubles.map((d) => d.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function double(
  flavor: "openai" | "anthropic" | "ollama" | "google",
  script: Script,
  apiKey?: string,
): Promise<ChatDouble> {
  const d = await startChatDouble(flavor, script, apiKey !== undefined ? { apiKey } : {});
  doubles.push(d);
  return d;
}

/** The scripted protocol-mode model: search once (and "hallucinate" documents after the stop), then answer. */
const protocolScript: Script = (req) => {
  const conv = conversationText(req.body);
  if (!conv.includes("begin_of_documents|>\\n(1)"))
    return {
      text: "I need to find the capital. <|begin_of_query|> capital of France<|end_of_query|>\n\n<|begin_of_documents|>\n(1) made-up document<|end_of_documents|>",
    };
  return { text: "The documents say Paris.</think>\n<answer> Paris</answer> and some text after the answer" };
};

/** The scripted tool-mode model: call search once, then answer with the answer tags. */
const toolScript: Script = (req) => {
  const conv = conversationText(req.body);
  if (!conv.includes("Doc 1 (Title:"))
    return {
      text: "Let me search.",
      toolCalls: [{ name: "search", arguments: '{"query_list":["capital of France"]}' }],
    };
  return { text: "The search says Paris. <answer>Paris</answer>" };
};

function expectParis(t: Trajectory, mode: "protocol" | "tool"): void {
  expect(t.error).toBeUndefined();
  expect(t.finish).toBe("answer");
  expect(t.stopReasonFinal).toBe("finished");
  expect(t.answer?.trim()).toBe("Paris");
  expect(t.queries.map((q) => q.trim())).toEqual(["capital of France"]);
  expect(t.retrievals).toBe(1);
  expect(t.documents[0][0].title).toBe("Paris");
  // No token ids, marked as such.
  expect(t.chat?.mode).toBe(mode);
  expect(t.promptTokens).toEqual([]);
  expect(t.responseTokens).toEqual([]);
  expect(t.mask).toEqual([]);
  expect(t.warnings.join("\n")).toContain("no token ids");
  expect(t.chat!.usage.inputTokens).toBeGreaterThan(0);
  expect(t.chat!.usage.outputTokens).toBeGreaterThan(0);
  // The response renders in the protocol's format: it parses as an ordinary trajectory.
  const parsed = protocol.parse(t.responseText);
  expect(parsed.retrievals).toBe(1);
  expect(parsed.answer?.trim()).toBe("Paris");
  expect(t.responseText).not.toContain("made-up document");
  expect(t.responseText).not.toContain("some text after the answer");
}

function collect(): { events: RolloutEvent[]; onEvent: (e: RolloutEvent) => void } {
  const events: RolloutEvent[] = [];
  return { events, onEvent: (e) => events.push(e) };
}

/** Streamed text deltas and inserted observations concatenate to the response (what the agent UI relies on). */
function expectEventsSpellResponse(events: RolloutEvent[], t: Trajectory): void {
  const spelled = events
    .map((e) => (e.type === "text" ? e.delta : e.type === "documents" ? (e.observation ?? "") : ""))
    .join("");
  expect(spelled).toBe(t.responseText);
}

/** One eval rollout of the test question through `backend` (the chat backend under test). */
function askCapital(backend: Parameters<typeof runRollouts>[0]["backend"], chatMode?: "tool") {
  return runRollouts({
    protocol,
    backend,
    retriever,
    mode: "eval",
    ...(chatMode ? { chatMode } : {}),
    items: [{ id: "q1", question: "What is the capital of France?" }],
  });
}

describe("chat backends: OpenAI chat completions (double)", () => {
  it("protocol mode: stops at the closing query tag, documents as the next message, stops at the answer tag", async () => {
    const d = await double("openai", protocolScript, KEY);
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url });
    expect(isChatBackend(backend)).toBe(true);
    const [t] = await askCapital(backend);
    expectParis(t, "protocol");
    expect(d.requests).toHaveLength(2);
    const [first, second] = d.requests.map((r) => r.body);
    expect(first.stop).toEqual(["<|end_of_query|>", "</answer>"]);
    expect(first.stream ?? false).toBe(false);
    const msgs = first.messages as Array<{ role: string; content: string }>;
    expect(msgs.map((m) => m.role)).toEqual(["system", "user"]);
    expect(msgs[0].content).toContain("<|begin_of_query|>"); // the local evaluation prompt's instructions
    expect(msgs[1].content).toBe("What is the capital of France?");
    const msgs2 = second.messages as Array<{ role: string; content: string }>;
    expect(msgs2.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(msgs2[2].content.endsWith("<|end_of_query|>")).toBe(true);
    expect(msgs2[3].content).toMatch(/^<\|begin_of_documents\|>\n\(1\)Paris {3}Paris is the capital/);
    expect(t.chat!.messages).toHaveLength(5);
  });

  it("protocol mode streaming: text events as they come, spelling the response", async () => {
    const d = await double("openai", protocolScript, KEY);
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url });
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol, backend, retriever, mode: "eval", onEvent });
    const t = await engine.run({ id: "s1", question: "What is the capital of France?" });
    expectParis(t, "protocol");
    expect(d.requests.every((r) => r.body.stream === true)).toBe(true);
    expect(events.filter((e) => e.type === "text").length).toBeGreaterThan(4);
    expectEventsSpellResponse(events, t);
  });

  it("tool mode: the search tool (veRL's schema), documents as tool results, answer extracted by the protocol", async () => {
    const d = await double("openai", toolScript, KEY);
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url, searchMode: "tool" });
    const [t] = await askCapital(backend);
    expectParis(t, "tool");
    const first = d.requests[0].body;
    const tools = first.tools as Array<{
      type: string;
      function: { name: string; parameters: Record<string, unknown> };
    }>;
    expect(tools.map((x) => x.function.name)).toEqual(["search"]);
    expect(tools[0].function.parameters).toMatchObject({
      type: "object",
      properties: { query_list: { type: "array", items: { type: "string" } } },
      required: ["query_list"],
    });
    const second = d.requests[1].body.messages as Array<{ role: string; content: string; tool_call_id?: string }>;
    const toolMsg = second.find((m) => m.role === "tool")!;
    expect(toolMsg.tool_call_id).toBe("call_0");
    expect(JSON.parse(toolMsg.content).result).toMatch(/^Doc 1 \(Title: Paris\)\nParis is the capital/);
  });

  it("tool mode streaming: incremental tool-call arguments", async () => {
    const d = await double("openai", toolScript, KEY);
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url });
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol, backend, retriever, mode: "eval", onEvent, chatMode: "tool" });
    const t = await engine.run({ id: "s2", question: "What is the capital of France?" });
    expectParis(t, "tool");
    expect(d.requests[0].body.stream).toBe(true);
    expectEventsSpellResponse(events, t);
  });

  it("malformed arguments and an unknown tool: error results to the model, recorded, no crash", async () => {
    const d = await double("openai", (req, n) => {
      if (n === 0) return { toolCalls: [{ name: "search", arguments: '{"query_list": ["capital of' }] };
      if (n === 1)
        return {
          toolCalls: [
            { name: "browse", arguments: '{"url":"http://example.com"}' },
            { name: "search", arguments: '{"query": "capital of France"}' },
          ],
        };
      return toolScript(req, n);
    });
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url, searchMode: "tool" });
    const [t] = await askCapital(backend);
    expect(t.finish).toBe("answer");
    expect(t.chat!.toolErrors).toBe(3);
    const w = t.warnings.join("\n");
    expect(w).toMatch(/malformed arguments for search/);
    expect(w).toMatch(/unknown tool "browse"/);
    expect(w).toMatch(/expected \{"query_list"/);
    // The model was told: each bad call got an error tool result.
    expect(d.requests).toHaveLength(4);
    const toolResults = (d.requests[3].body.messages as Array<{ role: string; content: string }>).filter(
      (m) => m.role === "tool",
    );
    expect(toolResults.slice(0, 3).every((m) => JSON.parse(m.content).error)).toBe(true);
  });

  it("streamed: a malformed call is reported once, then the model recovers", async () => {
    const d = await double("openai", (req, n) =>
      n === 0 ? { toolCalls: [{ name: "search", arguments: '{"query_list": [' }] } : toolScript(req, n),
    );
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url, searchMode: "tool" });
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol, backend, retriever, mode: "eval", onEvent });
    const t = await engine.run({ id: "m1", question: "What is the capital of France?" });
    expectParis(t, "tool");
    expect(t.chat!.toolErrors).toBe(1);
    expectEventsSpellResponse(events, t);
    const toolMsgs = (d.requests[1].body.messages as Array<{ role: string }>).filter((m) => m.role === "tool");
    expect(toolMsgs).toHaveLength(1);
  });

  it("a model that only makes invalid calls ends as tool_error with a clear message", async () => {
    const d = await double("openai", () => ({ toolCalls: [{ name: "lookup", arguments: "{}" }] }));
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url, searchMode: "tool" });
    const [t] = await runRollouts({ protocol, backend, retriever, mode: "eval", items: [{ id: "q", question: "x?" }] });
    expect(t.finish).toBe("tool_error");
    expect(t.stopReasonFinal).toBe("query_inst_error");
    expect(t.error).toMatch(/3 turns in a row with only invalid tool calls; last: .*unknown tool "lookup"/);
    expect(d.requests).toHaveLength(3);
  });

  it("429: retried after retry-after, then answers", async () => {
    const d = await double("openai", (req, n) =>
      n === 0 ? { status: 429, headers: { "retry-after-ms": "20" } } : protocolScript(req, n),
    );
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: d.url });
    const [t] = await askCapital(backend);
    expectParis(t, "protocol");
    expect(d.requests).toHaveLength(3);
  });

  it("a server that ignores stop strings: cut client-side; one that refuses them: matched client-side", async () => {
    // Ignores: the double is told no stop by a wrapper script that strips them.
    const ignoring = await double("openai", (req, n) => {
      delete req.body.stop;
      return protocolScript(req, n);
    });
    const b1 = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: ignoring.url });
    const [t1] = await askCapital(b1);
    expectParis(t1, "protocol");
    expect(t1.warnings.join("\n")).toMatch(/did not apply the stop strings/);

    const refusing = await double("openai", (req, n) =>
      req.body.stop !== undefined
        ? {
            status: 400,
            errorBody: JSON.stringify({
              error: {
                message: "Unsupported parameter: 'stop' is not supported with this model.",
                type: "invalid_request_error",
              },
            }),
          }
        : protocolScript(req, n),
    );
    const b2 = createChatBackend("openai:o4-mini", { apiKey: KEY, baseUrl: refusing.url });
    const [t2] = await askCapital(b2);
    expectParis(t2, "protocol");
    expect(t2.warnings.join("\n")).toMatch(/refuses stop sequences; matching them client-side/);
  });

  it("keys are never written: a rejected key is redacted from the error, the trajectory and the console", async () => {
    const d = await double("openai", protocolScript, "sk-the-right-key-000");
    const logged: string[] = [];
    const spy =
      (orig: (...a: unknown[]) => void) =>
      (...a: unknown[]) => {
        logged.push(a.map(String).join(" "));
        void orig;
      };
    const saved = { warn: console.warn, error: console.error, log: console.log, info: console.info };
    const savedWrite = process.stderr.write.bind(process.stderr);
    console.warn = spy(saved.warn);
    console.error = spy(saved.error);
    console.log = spy(saved.log);
    console.info = spy(saved.info);
    (process.stderr as { write: unknown }).write = (s: string) => (logged.push(String(s)), true);
    let t: Trajectory;
    try {
      const backend = await createBackend("openai:gpt-4o-mini", {
        chat: { apiKey: KEY, baseUrl: d.url, maxRetries: 0 },
        onWarning: (w) => logged.push(w),
      });
      [t] = await askCapital(backend);
    } finally {
      Object.assign(console, saved);
      (process.stderr as { write: unknown }).write = savedWrite;
    }
    expect(d.requests[0].headers.authorization).toBe(`Bearer ${KEY}`); // sent to its own provider only
    expect(t.finish).toBe("error");
    expect(t.error).toMatch(/HTTP 401/);
    expect(t.error).toContain("***");
    expect(JSON.stringify(t)).not.toContain(KEY);
    expect(logged.join("\n")).not.toContain(KEY);
  });

  it("training refuses a chat backend; generate() refuses raw prompts", async () => {
    const backend = createChatBackend("openai:gpt-4o-mini", { apiKey: KEY, baseUrl: "http://127.0.0.1:9/v1" });
    expect(() => new RolloutEngine({ protocol, backend, retriever, mode: "train" })).toThrow(/no token ids/);
    await expect(
      backend.generate({ tokens: [], text: "x", params: { temperature: 0, topP: 1, maxTokens: 4, stop: [] } }),
    ).rejects.toThrow(/chat backend/);
  });
});

describe("chat backends: Anthropic messages (double)", () => {
  it("protocol mode: stop_sequence reported by the server", async () => {
    const d = await double("anthropic", protocolScript, KEY);
    const backend = createChatBackend("anthropic:claude-3-5-haiku-latest", { apiKey: KEY, baseUrl: d.url });
    const [t] = await askCapital(backend);
    expectParis(t, "protocol");
    expect(d.requests[0].headers["x-api-key"]).toBe(KEY);
    expect(d.requests[0].body.stop_sequences).toEqual(["<|end_of_query|>", "</answer>"]);
    expect(typeof d.requests[0].body.system === "string" || Array.isArray(d.requests[0].body.system)).toBe(true);
  });

  it("protocol mode with R1-Searcher++: its system prompt, <external> queries, <document> blocks, recalled facts", async () => {
    const plus = getProtocol("r1-searcher-plus");
    const d = await double(
      "anthropic",
      (req) =>
        conversationText(req.body).includes("<document>\\n(1)")
          ? { text: "So it is Paris.</think>\n<answer>Paris</answer>" }
          : {
              text: "<internal>France is in Europe.</internal> <external>capital of France</external>\n\n<document>fake</document>",
            },
      KEY,
    );
    const backend = createChatBackend("anthropic:claude-3-5-haiku-latest", { apiKey: KEY, baseUrl: d.url });
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol: plus, backend, retriever, mode: "eval", onEvent });
    const t = await engine.run({ id: "p1", question: "What is the capital of France?" });
    expect(t.finish).toBe("answer");
    expect(t.answer).toBe("Paris");
    expect(t.queries).toEqual(["capital of France"]);
    expect(t.documents[0][0].title).toBe("Paris");
    expect(d.requests[0].body.stop_sequences).toEqual(["</external>", "</answer>"]);
    expect(JSON.stringify(d.requests[0].body.system)).toContain("<internal>");
    expect(events.filter((e) => e.type === "internal").map((e) => (e as { text: string }).text)).toEqual([
      "France is in Europe.",
    ]);
    expect(plus.parse(t.responseText).retrievals).toBe(1);
    expect(t.responseText).not.toContain("fake");
  });

  it("tool mode, streamed: tool_use with input_json_delta, tool_result back", async () => {
    const d = await double("anthropic", toolScript, KEY);
    const backend = createChatBackend("anthropic:claude-3-5-haiku-latest", { apiKey: KEY, baseUrl: d.url });
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol, backend, retriever, mode: "eval", onEvent, chatMode: "tool" });
    const t = await engine.run({ id: "a2", question: "What is the capital of France?" });
    expectParis(t, "tool");
    expectEventsSpellResponse(events, t);
    const msgs = d.requests[1].body.messages as Array<{ role: string; content: Array<Record<string, unknown>> }>;
    const result = msgs
      .flatMap((m) => (Array.isArray(m.content) ? m.content : []))
      .find((p) => p.type === "tool_result");
    expect(result?.tool_use_id).toBe("toolu_0");
  });

  it("tool mode: a tool_use whose input is not an object is answered with an error", async () => {
    const d = await double("anthropic", (req, n) =>
      n === 0 ? { toolCalls: [{ name: "search", arguments: '"capital of France"' }] } : toolScript(req, n),
    );
    const backend = createChatBackend("anthropic:claude-3-5-haiku-latest", { apiKey: KEY, baseUrl: d.url });
    const [t] = await askCapital(backend, "tool");
    expect(t.finish).toBe("answer");
    expect(t.chat!.toolErrors).toBe(1);
  });
});

describe("chat backends: Ollama chat (double of its OpenAI-compatible endpoint)", () => {
  it("protocol mode and tool mode through the ollama: spec, no key", async () => {
    const d = await double("ollama", (req, n) => (req.body.tools ? toolScript(req, n) : protocolScript(req, n)));
    const backend = await createBackend("ollama:qwen2.5:7b", {
      chat: { env: { OLLAMA_HOST: d.url.replace(/\/v1$/, "") } },
    });
    expect(backend.name).toBe("ollama:qwen2.5:7b");
    const item = { id: "q1", question: "What is the capital of France?" };
    const [p] = await runRollouts({ protocol, backend, retriever, mode: "eval", items: [item] });
    expectParis(p, "protocol");
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol, backend, retriever, mode: "eval", chatMode: "tool", onEvent });
    const t = await engine.run(item);
    expectParis(t, "tool");
    expectEventsSpellResponse(events, t);
    expect(d.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(d.requests[0].body.model).toBe("qwen2.5:7b");
  });
});

describe("chat backends: Gemini (double)", () => {
  it("protocol mode (JSON) and tool mode (streamed functionCall)", async () => {
    const d = await double("google", (req, n) => (req.body.tools ? toolScript(req, n) : protocolScript(req, n)), KEY);
    const backend = createChatBackend("gemini:gemini-2.0-flash", { apiKey: KEY, baseUrl: d.url });
    const item = { id: "q1", question: "What is the capital of France?" };
    const [p] = await runRollouts({ protocol, backend, retriever, mode: "eval", items: [item] });
    expectParis(p, "protocol");
    expect(d.requests[0].path).toBe("/v1beta/models/gemini-2.0-flash:generateContent");
    expect(d.requests[0].headers["x-goog-api-key"]).toBe(KEY);
    const { events, onEvent } = collect();
    const engine = new RolloutEngine({ protocol, backend, retriever, mode: "eval", chatMode: "tool", onEvent });
    const t = await engine.run(item);
    expectParis(t, "tool");
    expectEventsSpellResponse(events, t);
  });
});

describe("chat specs", () => {
  it("needs the provider's key variable, names it, and never sends an OpenAI key to another server", async () => {
    expect(() => createChatBackend("openai:gpt-4o-mini", { env: {} })).toThrow(/OPENAI_API_KEY/);
    expect(() => createChatBackend("anthropic:claude", { env: {} })).toThrow(/ANTHROPIC_API_KEY/);
    expect(() => createChatBackend("google:gemini-2.0-flash", { env: {} })).toThrow(/GOOGLE_GENERATIVE_AI_API_KEY/);
    const d = await double("openai", protocolScript);
    const b = createChatBackend(`openai-compatible:${d.url}#my-model`, { env: { OPENAI_API_KEY: KEY } });
    const [t] = await askCapital(b);
    expectParis(t, "protocol");
    expect(d.requests[0].headers.authorization).toBeUndefined();
    expect(() => createChatBackend("openai-compatible:my-model")).toThrow(/server URL/);
  });
});
