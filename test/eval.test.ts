/**
 * Evaluation end to end: a BM25 index built by the retrieval module over the bundled KILT sample plus two passages,
 * a GGUF model written by the test (scripted to search once and answer "Paris") on node-llama-cpp, the `searchrl eval`
 * command, resuming, the no-retrieval / naive-RAG baselines, and an LLM judge (a local test double of an
 * OpenAI-compatible chat API, standing in for the paid judge).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli/main.js";
import { evaluate, loadEvalItems, resolveEvalDataset, type EvalRecord } from "../src/eval/index.js";
import { createLlamaCppBackend, type LlamaCppBackend } from "../src/llm/llamacpp.js";
import { R1_SCRIPT, writeScriptedGguf } from "../src/llm/testing/scripted-gguf.js";
import { metricsForFile } from "../src/metrics/index.js";
import { getProtocol } from "../src/protocol/index.js";
import { buildIndex, openRetriever } from "../src/retrieval/index.js";
import type { Retriever } from "../src/retrieval/types.js";
import type { Passage } from "../src/util/types.js";

let dir: string;
let gguf: string;
let indexDir: string;
let dataFile: string;
let backend: LlamaCppBackend;
let retriever: Retriever;
let judge: http.Server;
let judgeUrl: string;
const judgeRequests: string[] = [];

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

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-eval-"));
  gguf = path.join(dir, "r1.gguf");
  writeScriptedGguf(gguf, R1_SCRIPT);
  const kilt = readFileSync(
    path.join(__dirname, "..", "data", "r1-searcher", "kilt_samples", "train_kilt_full_page_sample_100.tsv"),
    "utf8",
  )
    .split("\n")
    .filter((l) => /^\d+\t/.test(l))
    .map((l): Passage => {
      const [id, rest] = [l.slice(0, l.indexOf("\t")), l.slice(l.indexOf("\t") + 1)];
      const sep = rest.indexOf("   ");
      return { id, title: rest.slice(0, sep), text: rest.slice(sep + 3), raw: l };
    });
  const passages: Passage[] = [
    ...kilt,
    {
      id: "9001",
      title: "Paris",
      text: "Paris is the capital and most populous city of France.",
      raw: "9001\tParis   Paris is the capital and most populous city of France.",
    },
    {
      id: "9002",
      title: "Lyon",
      text: "Lyon is the third largest city of France.",
      raw: "9002\tLyon   Lyon is the third largest city of France.",
    },
  ];
  indexDir = path.join(dir, "index");
  await buildIndex({ corpus: passages, out: indexDir, progress: false });
  dataFile = path.join(dir, "qa.jsonl");
  writeFileSync(
    dataFile,
    [
      { idx: 1, question: "What is the capital of France?", answer: "Paris", gen_text_store: "" },
      { idx: 2, question: "Which French city is the capital?", answer: "paris", gen_text_store: "" },
      { idx: 3, question: "Which city is third largest in France?", answer: "Lyon", gen_text_store: "" },
    ]
      .map((r) => JSON.stringify(r))
      .join("\n") + "\n",
  );
  backend = await createLlamaCppBackend({ modelPath: gguf, sequences: 2, contextSize: 2048 });
  retriever = await openRetriever(indexDir);
  judge = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const body = JSON.parse(raw) as { messages: Array<{ content: string }> };
      const prompt = body.messages[0].content;
      judgeRequests.push(prompt);
      const gold = /Golden Answer: (.*)\n/.exec(prompt)![1];
      const pred = /Predicted Answer: (.*)\n/.exec(prompt)![1];
      const verdict = pred.toLowerCase().includes(gold.toLowerCase()) ? "True" : "False";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "x",
          object: "chat.completion",
          choices: [{ index: 0, message: { role: "assistant", content: verdict }, finish_reason: "stop" }],
        }),
      );
    });
  });
  await new Promise<void>((r) => judge.listen(0, "127.0.0.1", r));
  judgeUrl = `http://127.0.0.1:${(judge.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await backend?.close();
  await retriever?.close();
  await new Promise<void>((r) => judge.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function readRecords(file: string): EvalRecord[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EvalRecord);
}

describe("searchrl eval", () => {
  it("evaluates with a BM25 index and a GGUF model, writes upstream records, agrees with the metrics module, resumes", async () => {
    const out = path.join(dir, "run1", "results.jsonl");
    const args = [
      "eval",
      "--dataset",
      dataFile,
      "--llm",
      gguf,
      "--retriever",
      indexDir,
      "--out",
      out,
      "--judge",
      judgeUrl,
      "--top-k",
      "2",
      "--json",
      "--quiet",
      "--limit",
      "2",
    ];
    const first = JSON.parse(await runCli(args));
    expect(first).toMatchObject({ count: 2, ran: 2, resumed: 0, failed: 0 });
    const second = JSON.parse(await runCli([...args.slice(0, -2), "--limit", "3"]));
    expect(second).toMatchObject({ count: 3, ran: 1, resumed: 2 });
    const recs = readRecords(out);
    expect(recs).toHaveLength(3);
    for (const r of recs) {
      expect(Object.keys(r)).toEqual(
        expect.arrayContaining([
          "question",
          "answer",
          "pred_ans",
          "stop_reason_final",
          "gen_text_store",
          "gpt4o_output",
          "idx",
          "dataset",
          "retrievals",
          "queries",
          "prompt_tokens",
          "response_tokens",
          "timings",
          "em",
          "cem",
          "f1",
        ]),
      );
      expect(r.pred_ans).toBe(" Paris");
      expect(r.stop_reason_final).toBe("finished");
      expect(r.retrievals).toBe(1);
      expect(r.queries).toEqual([" capital France"]);
      expect(r.gen_text_store).toContain("<|begin_of_documents|>\n(1)Paris   Paris is the capital");
      expect(r.dataset).toBe("qa");
    }
    expect(recs.map((r) => r.em)).toEqual([1, 1, 0]);
    expect(recs.map((r) => r.gpt4o_output)).toEqual(["True", "True", "False"]);
    // questions are judged concurrently: find the request of the first question, whatever its arrival order
    expect(judgeRequests.filter((r) => r.includes("Question: What is the capital of France?\n"))).toHaveLength(1);
    expect(judgeRequests.find((r) => r.includes("Question: What is the capital of France?\n"))).toContain(
      "Question: What is the capital of France?\nGolden Answer: Paris\nPredicted Answer:  Paris\n    ",
    );
    const m = await metricsForFile(out);
    expect(second.em).toBeCloseTo(m.em, 12);
    expect(second.cem).toBeCloseTo(m.cem, 12);
    expect(second.f1).toBeCloseTo(m.f1, 12);
    expect(second.judge).toBeCloseTo(2 / 3, 12);
    expect(second.retrievals_mean).toBe(1);
    const summary = JSON.parse(readFileSync(path.join(dir, "run1", "results.summary.json"), "utf8"));
    expect(summary).toMatchObject({
      count: 3,
      em: m.em,
      cem: m.cem,
      f1: m.f1,
      retrievals_mean: 1,
      dataset: "qa",
      mode: "search",
    });
    // The human-readable form prints the same numbers.
    const human = await runCli(args.filter((a) => a !== "--json"));
    expect(human).toMatch(/EM\s+66\.7/);
    expect(human).toMatch(/retrievals\s+1\.00/);
  });

  it("runs on a bundled evaluation set with the upstream prompt", async () => {
    const out = path.join(dir, "bamboogle.jsonl");
    const res = JSON.parse(
      await runCli([
        "eval",
        "--dataset",
        "bamboogle",
        "--limit",
        "2",
        "--llm",
        gguf,
        "--retriever",
        indexDir,
        "--top-k",
        "1",
        "--out",
        out,
        "--json",
        "--quiet",
      ]),
    );
    expect(res.count).toBe(2);
    const recs = readRecords(out);
    const { items } = await loadEvalItems(resolveEvalDataset("bamboogle").file, 2);
    expect(recs.map((r) => r.question).sort()).toEqual(items.map((i) => i.question).sort());
    expect(existsSync(out.replace(/\.jsonl$/, ".summary.json"))).toBe(true);
  });

  it("rejects bad options with a clear message", async () => {
    await expect(
      runCli(["eval", "--dataset", "nope", "--llm", gguf, "--retriever", indexDir, "--out", path.join(dir, "x.jsonl")]),
    ).rejects.toThrow(/neither a bundled set/);
    await expect(
      runCli(["eval", "--dataset", dataFile, "--llm", gguf, "--out", path.join(dir, "x.jsonl")]),
    ).rejects.toThrow(/--retriever is required/);
    await expect(
      runCli([
        "eval",
        "--dataset",
        dataFile,
        "--llm",
        gguf,
        "--retriever",
        indexDir,
        "--out",
        path.join(dir, "x.jsonl"),
        "--top-p",
        "3",
      ]),
    ).rejects.toThrow(/--top-p must be <= 1/);
  });
});

describe("evaluate(): baselines", () => {
  it("no-retrieval and naive-RAG baselines with caller-supplied prompts", async () => {
    const protocol = getProtocol("r1-searcher");
    const items = [
      { idx: 1, question: "What is the capital of France?", answer: "Paris" },
      { idx: 2, question: "Third largest city in France?", answer: "Lyon" },
    ];
    const prompts: string[] = [];
    const direct = await evaluate({
      backend,
      protocol,
      items,
      mode: "no-retrieval",
      baselinePrompt: "Question: {question}\nAnswer in {answer_open} {answer_close}\n",
      onEvent: (e) => e.type === "start" && prompts.push(e.prompt),
    });
    expect(prompts[0]).toBe("Question: What is the capital of France?\nAnswer in <answer> </answer>\n");
    expect(direct.records.map((r) => [r.pred_ans, r.retrievals, r.stop_reason_final])).toEqual([
      [" Paris", 0, "finished"],
      [" Paris", 0, "finished"],
    ]);
    expect(direct.summary.em).toBe(0.5);
    expect(direct.summary.retrievalsMean).toBe(0);

    const ragPrompts: string[] = [];
    const rag = await evaluate({
      backend,
      protocol,
      retriever,
      items,
      mode: "naive-rag",
      ragTopK: 2,
      baselinePrompt: (q, ps) => `Documents:\n${ps.map((p) => p.title).join("\n")}\nQuestion: ${q}\n`,
      onEvent: (e) => e.type === "start" && ragPrompts.push(e.prompt),
    });
    expect(rag.records.every((r) => r.retrievals === 1)).toBe(true);
    expect(ragPrompts.some((p) => p.startsWith("Documents:\nParis\n"))).toBe(true);
    expect(ragPrompts.some((p) => p.includes("Lyon"))).toBe(true);
    // The searching model beats nothing here (it always answers Paris), but the three modes produce comparable numbers.
    expect(rag.summary.count).toBe(2);
  });
});
