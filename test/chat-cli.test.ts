/**
 * A chat model through the commands, against a TEST DOUBLE of the OpenAI chat completions API (test/chat-doubles.ts,
 * standing in for the paid API): `searchrl eval --llm openai:gpt-4o-mini` in protocol mode and in tool mode over every
 * shipped evaluation set against a local BM25 index (resumable, the two modes never mixed in one file), and
 * `searchrl serve agent --llm openai:gpt-4o-mini` answering through the web UI (Chromium).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli/main.js";
import { BUNDLED_EVAL_DATASETS, type EvalRecord } from "../src/eval/index.js";
import { buildIndex } from "../src/retrieval/index.js";
import type { Passage } from "../src/util/types.js";
import { AGENT_CORPUS } from "./agent-fixtures.js";
import { conversationText, startChatDouble, type ChatDouble, type Script } from "./chat-doubles.js";
import { launchUiBrowser } from "./ui-browser.js";

const ROOT = path.resolve(__dirname, "..");
const KEY = "sk-cli-test-key-9876543210";
let dir: string;
let index: string;
let double: ChatDouble;

/** The question of a request (the first user message). */
function questionOf(body: Record<string, unknown>): string {
  const msgs = body.messages as Array<{ role: string; content: unknown }>;
  const u = msgs.find((m) => m.role === "user");
  return typeof u?.content === "string" ? u.content : "";
}

/**
 * A generic "model": searches once with the question, then answers with the title of the first document it got back
 * (protocol mode: `(1)Title   text`; tool mode: `Doc 1 (Title: Title)`).
 */
const genericModel: Script = (req) => {
  const conv = conversationText(req.body);
  const baseline = /^Answer the question/.exec(questionOf(req.body));
  if (baseline) {
    // The baselines' prompt: answer at once (naive RAG: with the first document's title).
    const d = /Documents:\\n\(1\)(.*?) {3}/.exec(conv);
    return { text: `<answer>${d ? d[1] : "unknown"}</answer>` };
  }
  const q = questionOf(req.body).replace(/[<>|]/g, " ");
  if (req.body.tools) {
    const m = /Doc 1 \(Title: ([^)\\]*)\)/.exec(conv);
    if (!m) return { toolCalls: [{ name: "search", arguments: JSON.stringify({ query_list: [q] }) }], cost: 0.0001 };
    return { text: `<answer>${m[1]}</answer>`, cost: 0.0001 };
  }
  const m = /<\|begin_of_documents\|>\\n\(1\)(.*?) {3}/.exec(conv);
  if (!m) return { text: `Search. <|begin_of_query|>${q}<|end_of_query|>`, cost: 0.0001 };
  return { text: `</think>\n<answer>${m[1]}</answer>`, cost: 0.0001 };
};

async function runCli(args: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  (process.stdout as { write: unknown }).write = (s: string) => (chunks.push(String(s)), true);
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(["node", "searchrl", ...args]);
  } finally {
    (process.stdout as { write: unknown }).write = write;
  }
  return chunks.join("");
}

function records(file: string): EvalRecord[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EvalRecord);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-chat-cli-"));
  const kilt = readFileSync(
    path.join(ROOT, "data", "r1-searcher", "kilt_samples", "train_kilt_full_page_sample_100.tsv"),
    "utf8",
  )
    .split("\n")
    .filter((l) => /^\d+\t/.test(l))
    .map((l): Passage => {
      const [id, rest] = [l.slice(0, l.indexOf("\t")), l.slice(l.indexOf("\t") + 1)];
      const sep = rest.indexOf("   ");
      return { id, title: rest.slice(0, sep), text: rest.slice(sep + 3), raw: l };
    });
  index = path.join(dir, "index");
  await buildIndex({
    corpus: [...kilt, ...AGENT_CORPUS.map((p) => ({ ...p, id: `9${p.id}` }))],
    out: index,
    bm25: true,
    progress: false,
  });
  double = await startChatDouble("openai", genericModel, { apiKey: KEY });
  process.env.OPENAI_API_KEY = KEY;
});

afterAll(async () => {
  delete process.env.OPENAI_API_KEY;
  await double?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("searchrl eval --llm openai:gpt-4o-mini (double)", () => {
  for (const chatMode of ["protocol", "tool"] as const) {
    it(`${chatMode} mode over every shipped evaluation set, resumable`, async () => {
      for (const ds of Object.keys(BUNDLED_EVAL_DATASETS)) {
        const out = path.join(dir, `${chatMode}-${ds}.jsonl`);
        const args = [
          "eval",
          "--dataset",
          ds,
          "--llm",
          "openai:gpt-4o-mini",
          "--llm-base-url",
          double.url,
          "--chat-mode",
          chatMode,
          "--retriever",
          index,
          "--out",
          out,
          "--limit",
          "3",
          "--quiet",
          "--json",
        ];
        const summary = JSON.parse(await runCli(args)) as Record<string, unknown>;
        expect(summary).toMatchObject({
          count: 3,
          ran: 3,
          failed: 0,
          chat_mode: chatMode,
          run_kind: `chat ${chatMode} mode`,
        });
        expect(summary.cost_usd).toBeCloseTo(chatMode === "tool" ? 0.0006 : 0.0006, 6);
        const recs = records(out);
        expect(recs).toHaveLength(3);
        for (const r of recs) {
          expect(r.chat_mode).toBe(chatMode);
          expect(r.stop_reason_final).toBe("finished");
          expect(r.retrievals).toBe(1);
          expect(r.prompt_tokens).toBeGreaterThan(0);
          expect(r.pred_ans.length).toBeGreaterThan(0);
        }
        const file = JSON.parse(readFileSync(out.replace(/\.jsonl$/, ".summary.json"), "utf8"));
        expect(file).toMatchObject({
          run_kind: `chat ${chatMode} mode`,
          chat_mode: chatMode,
          backend: "openai:gpt-4o-mini",
        });
        // A rerun resumes (nothing asked again).
        const before = double.requests.length;
        const again = JSON.parse(await runCli(args)) as Record<string, unknown>;
        expect(again).toMatchObject({ ran: 0, resumed: 3, count: 3 });
        expect(double.requests.length).toBe(before);
      }
    });
  }

  it("the baselines with a chat model: no-retrieval and naive-rag", async () => {
    for (const mode of ["no-retrieval", "naive-rag"]) {
      const out = path.join(dir, `baseline-${mode}.jsonl`);
      const summary = JSON.parse(
        await runCli([
          "eval",
          "--dataset",
          "bamboogle",
          "--llm",
          "openai:gpt-4o-mini",
          "--llm-base-url",
          double.url,
          "--mode",
          mode,
          ...(mode === "naive-rag" ? ["--retriever", index] : []),
          "--out",
          out,
          "--limit",
          "2",
          "--quiet",
          "--json",
        ]),
      ) as Record<string, unknown>;
      expect(summary).toMatchObject({ count: 2, failed: 0, chat_mode: "protocol" });
      for (const r of records(out)) {
        expect(r.stop_reason_final).toBe("finished");
        expect(r.retrievals).toBe(mode === "naive-rag" ? 1 : 0);
        expect(r.pred_ans).not.toBe(mode === "naive-rag" ? "unknown" : "");
      }
    }
  });

  it("refuses to mix a tool-mode run into a protocol-mode results file", async () => {
    const out = path.join(dir, "protocol-bamboogle.jsonl");
    await expect(
      runCli([
        "eval",
        "--dataset",
        "bamboogle",
        "--llm",
        "openai:gpt-4o-mini",
        "--llm-base-url",
        double.url,
        "--chat-mode",
        "tool",
        "--retriever",
        index,
        "--out",
        out,
        "--limit",
        "3",
        "--quiet",
      ]),
    ).rejects.toThrow(/holds records of a chat protocol mode run and this is a chat tool mode run/);
  });

  it("prints which mode ran, with the reported usage and cost", async () => {
    const out = path.join(dir, "text-summary.jsonl");
    const text = await runCli([
      "eval",
      "--dataset",
      "bamboogle",
      "--llm",
      "openai:gpt-4o-mini",
      "--llm-base-url",
      double.url,
      "--retriever",
      index,
      "--out",
      out,
      "--limit",
      "2",
      "--quiet",
    ]);
    expect(text).toMatch(
      /llm +openai:gpt-4o-mini: chat protocol mode, no token ids; this run \d+ input \+ \d+ output tokens, \$0\.0004/,
    );
  });
});

describe("searchrl serve agent --llm openai:gpt-4o-mini (double)", () => {
  it("answers through the web UI", async () => {
    const agentDouble = await startChatDouble(
      "openai",
      (req) => {
        const conv = conversationText(req.body);
        if (!conv.includes("begin_of_documents|>\\n(1)"))
          return { text: "I should look it up. <|begin_of_query|> capital of France<|end_of_query|>" };
        return { text: "The documents say Paris.</think>\n<answer>Paris</answer>" };
      },
      { apiKey: KEY },
    );
    const p = spawn(
      path.join(ROOT, "node_modules", ".bin", "tsx"),
      [
        path.join(ROOT, "src", "cli", "main.ts"),
        "serve",
        "agent",
        "--llm",
        "openai:gpt-4o-mini",
        "--retriever",
        index,
        "--protocol",
        "r1-searcher",
        "--port",
        "0",
      ],
      {
        cwd: ROOT,
        env: { ...process.env, SEARCHRL_CLI_ENTRY: "1", OPENAI_API_KEY: KEY, OPENAI_BASE_URL: agentDouble.url },
      },
    );
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => p.on("close", resolve));
    const ui = await launchUiBrowser();
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no start line; stdout: ${out} stderr: ${err}`)), 45_000);
        const check = () => {
          const m = /searchrl agent: (http:\/\/\S+)\/v1\/chat\/completions/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]);
          }
        };
        p.stdout.on("data", check);
        void exited.then(() => reject(new Error(`exited early; stderr: ${err}`)));
      });
      expect(out).toContain("model openai:gpt-4o-mini");
      const { page } = ui;
      await page.goto(`${url}/`);
      await page.getByRole("textbox", { name: "Question" }).fill("What is the capital of France?");
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      const answerBox = page.locator('[data-testid="answer"]');
      await answerBox.waitFor({ state: "visible" });
      await expect
        .poll(() => page.locator(".status").textContent(), { timeout: 20_000 })
        .toMatch(/^Done in .* with 1 retrieval\.$/);
      expect((await answerBox.locator(".answer-final").textContent())?.trim()).toBe("Paris");
      expect(await page.locator('[data-testid="query-chip"]').textContent()).toBe("⌕Search 1: capital of France");
      expect(await page.locator("details.docs .doc-title").first().textContent()).toBe("Paris");
      await ui.shot("ask-chat-model");
      // The server streamed from the chat API (the UI's request is a streaming one).
      expect(agentDouble.requests.some((r) => r.body.stream === true)).toBe(true);
      expect(out + err).not.toContain(KEY);
    } finally {
      await ui.close();
      p.kill("SIGTERM");
      await exited;
      await agentDouble.close();
    }
  });
});
