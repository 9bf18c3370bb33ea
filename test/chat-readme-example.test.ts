/**
 * The README's AI SDK example (the code block after `<!-- chat-example -->`), run as written through the public entry
 * point, with `generateText` of the real AI SDK and a real BM25 index; the OpenAI API is a TEST DOUBLE
 * (test/chat-doubles.ts: chat completions with tool calls) reached through OPENAI_BASE_URL. Also `answerWithSearch`.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { answerWithSearch, getProtocol, openRetriever, searchTool } from "../src/index.js";
import { buildIndex } from "../src/retrieval/index.js";
import { AGENT_CORPUS } from "./agent-fixtures.js";
import { conversationText, startChatDouble, type ChatDouble, type Script } from "./chat-doubles.js";

const ROOT = path.resolve(__dirname, "..");
const KEY = "sk-readme-example-key-1234";
let dir: string;
let index: string;
let double: ChatDouble;

/** Calls the search tool once, then answers from the tool result. */
const model: Script = (req) => {
  const conv = conversationText(req.body);
  const m = /Doc 1 \(Title: ([A-Za-z ]+)\)/.exec(conv);
  if (!m) return { toolCalls: [{ name: "search", arguments: '{"query_list":["capital of France"]}' }] };
  return { text: `The first document is about ${m[1]}. <answer>${m[1]}</answer>` };
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-readme-chat-"));
  index = path.join(dir, "idx");
  await buildIndex({ corpus: AGENT_CORPUS, out: index, bm25: true, progress: false });
  double = await startChatDouble("openai", model, { apiKey: KEY });
});

afterAll(async () => {
  await double?.close();
  rmSync(dir, { recursive: true, force: true });
});

function readmeExample(): string {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const at = readme.indexOf("<!-- chat-example");
  expect(at).toBeGreaterThan(0);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(m).not.toBeNull();
  return m![1];
}

describe("README: a chat model in your AI SDK app", () => {
  it("runs as written: generateText calls searchTool over the index and answers", async () => {
    const code = readmeExample()
      .replace('from "searchrl"', `from ${JSON.stringify(path.join(ROOT, "src", "index.ts"))}`)
      .replace('"./idx"', JSON.stringify(index));
    const out = path.join(ROOT, "test-artifacts", "readme-chat-example.ts");
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, code);
    const logged: unknown[][] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void logged.push(a));
    vi.stubEnv("OPENAI_API_KEY", KEY);
    vi.stubEnv("OPENAI_BASE_URL", double.url);
    try {
      await import(/* @vite-ignore */ out);
    } finally {
      spy.mockRestore();
      vi.unstubAllEnvs();
    }
    expect(logged).toEqual([["Paris", 2]]);
    const [first, second] = double.requests.map((r) => r.body);
    expect((first.tools as Array<{ function: { name: string } }>)[0].function.name).toBe("search");
    const toolMsg = (second.messages as Array<{ role: string; content: string }>).find((x) => x.role === "tool")!;
    const result = JSON.parse(toolMsg.content) as { result: string };
    expect(result.result.split("\n\n")).toHaveLength(3); // topK 3
    expect(result.result).toMatch(/^Doc 1 \(Title: Paris\)\nParis is the capital/);
  });

  it("answerWithSearch: the same loop in one call, with the searches it made", async () => {
    const retriever = await openRetriever(index);
    try {
      const r = await answerWithSearch({
        model: createOpenAI({ apiKey: KEY, baseURL: double.url }).chat("gpt-4o-mini"),
        retriever,
        protocol: getProtocol("r1-searcher"),
        question: "What is the capital of France?",
      });
      expect(r.answer).toBe("Paris");
      expect(r.searches.map((s) => s.query)).toEqual(["capital of France"]);
      expect(r.searches[0].passages[0].title).toBe("Paris");
      expect(r.steps).toBe(2);
      expect(r.usage.inputTokens).toBeGreaterThan(0);
      // The tool object is an ordinary AI SDK tool: its execute returns the recipe's result shape.
      const t = searchTool(retriever, { topK: 1 });
      const res = (await t.execute!({ query_list: ["Berlin"] }, { toolCallId: "x", messages: [] })) as {
        result: string;
      };
      expect(res.result).toBe("Doc 1 (Title: Berlin)\nBerlin is the capital of Germany.");
    } finally {
      await retriever.close();
    }
  });
});
