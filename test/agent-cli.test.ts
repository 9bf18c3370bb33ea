/**
 * `searchrl serve agent` spawned as a real process: over a GGUF (node-llama-cpp) and over a built-in checkpoint
 * (the built-in model with random weights, written by the test with src/model), each with a BM25 index built by the
 * retrieval library; plus option validation.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { R1_SCRIPT, writeScriptedGguf } from "../src/llm/testing/scripted-gguf.js";
import { saveCheckpoint, trainBpe, Transformer } from "../src/model/index.js";
import { getProtocol } from "../src/protocol/index.js";
import { buildIndex } from "../src/retrieval/index.js";
import { agentSseData } from "../src/server/agent-client.js";
import { AGENT_CORPUS } from "./agent-fixtures.js";
import { writeUiFixtures } from "./ui-fixtures.js";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
let dir: string;
let gguf: string;
let index: string;
let checkpoint: string;

function startCli(args: string[], env: Record<string, string> = {}) {
  const p = spawn(TSX, [path.join(ROOT, "src", "cli", "main.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, SEARCHRL_CLI_ENTRY: "1", ...env },
  });
  let out = "";
  let err = "";
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => p.on("close", resolve));
  const url = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start line; stdout: ${out} stderr: ${err}`)), 45_000);
      const check = () => {
        const m = re.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      };
      p.stdout.on("data", check);
      void exited.then(() => reject(new Error(`exited early; stderr: ${err}`)));
      check();
    });
  return { p, url, exited, output: () => ({ out, err }) };
}

async function stop(p: ChildProcessWithoutNullStreams, exited: Promise<number | null>): Promise<number | null> {
  p.kill("SIGTERM");
  return exited;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-agent-cli-"));
  writeUiFixtures(path.join(dir, "runs"));
  gguf = path.join(dir, "answer.gguf");
  writeScriptedGguf(gguf, R1_SCRIPT);
  index = path.join(dir, "index");
  await buildIndex({ corpus: AGENT_CORPUS, out: index, bm25: true, progress: false });
  // A tiny built-in model with random weights and a byte-level BPE tokenizer trained here.
  const p = getProtocol("r1-searcher");
  const tok = trainBpe([p.buildPrompt("What is the capital of France?"), ...AGENT_CORPUS.map((x) => x.text)], {
    vocabSize: 400,
    specialTokens: ["<|endoftext|>"],
    addedTokens: ["<|begin_of_query|>", "<|end_of_query|>", "<answer>", "</answer>"],
  });
  const model = await Transformer.create(
    {
      vocabSize: tok.vocabSize,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 1,
      numHeads: 2,
      maxPositions: 2048,
      eosTokenIds: [...tok.eosTokenIds],
    },
    { seed: 1 },
  );
  checkpoint = path.join(dir, "checkpoint");
  await saveCheckpoint(model, checkpoint, { tokenizerJson: tok.toJson() });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("searchrl serve agent (CLI)", () => {
  it("serves a GGUF model with a BM25 index, the UI and runs, behind a token, and stops on SIGTERM", async () => {
    const cli = startCli(
      [
        "serve",
        "agent",
        "--llm",
        gguf,
        "--retriever",
        index,
        "--protocol",
        "r1-searcher",
        "--port",
        "0",
        "--runs",
        path.join(dir, "runs"),
        "--top-k",
        "2",
      ],
      { SEARCHRL_TOKEN: "tok" },
    );
    const url = await cli.url(/searchrl agent: (http:\/\/\S+)\/v1\/chat\/completions/);
    const auth = { authorization: "Bearer tok", "content-type": "application/json" };
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ messages: [{ role: "user", content: "What is the capital of France?" }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.choices[0].message.content).toBe(" Paris");
    expect(body.trace.steps[1].passages.map((p: any) => p.title)).toEqual(["Paris", expect.any(String)]);
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    const runs = (await (await fetch(`${url}/api/runs`, { headers: auth })).json()) as any;
    expect(runs.runs.map((r: any) => r.name)).toEqual(["r1-plus-rl", "r1-searcher-rl"]);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("searchrl");
    expect(cli.output().out).toContain("protocol r1-searcher");
    expect(await stop(cli.p, cli.exited)).toBe(0);
  });

  it("serves a built-in checkpoint (random weights): the stream completes with a trace", async () => {
    const cli = startCli([
      "serve",
      "agent",
      "--llm",
      checkpoint,
      "--retriever",
      index,
      "--protocol",
      "r1-searcher",
      "--port",
      "0",
      "--max-tokens",
      "48",
      "--segment-tokens",
      "24",
      "--temperature",
      "1",
      // a checkpoint trained on a short prompt (as the quickstart's) is served with that prompt
      "--template",
      "Question: {question}\nAnswer: <think>",
    ]);
    const url = await cli.url(/searchrl agent: (http:\/\/\S+)\/v1\/chat\/completions/);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        messages: [{ role: "user", content: "What is the capital of France?" }],
        stream: true,
        seed: 3,
      }),
    });
    expect(res.status).toBe(200);
    const datas: string[] = [];
    for await (const d of agentSseData(res.body!)) datas.push(d);
    expect(datas[datas.length - 1]).toBe("[DONE]");
    const events = datas
      .slice(0, -1)
      .map((d) => JSON.parse(d))
      .filter((c) => c.trace_event)
      .map((c) => c.trace_event);
    expect(events[0].type).toBe("start");
    const done = events.find((e) => e.type === "done");
    expect(done).toBeDefined();
    expect(["eos", "length", "max_total_tokens", "answer", "empty_query", "max_searches"]).toContain(done.finish);
    expect(done.usage.completion_tokens).toBeGreaterThan(0);
    expect(done.usage.completion_tokens).toBeLessThanOrEqual(48);
    // the template replaced the protocol's long instruction prompt (hundreds of characters)
    expect(done.usage.prompt_tokens).toBeGreaterThan(0);
    expect(done.usage.prompt_tokens).toBeLessThan(60);
    const health = (await (await fetch(`${url}/health`)).json()) as any;
    expect(health.agent.backend).toMatch(/^builtin:/);
    expect(await stop(cli.p, cli.exited)).toBe(0);
  });

  it("refuses bad options with a clear message", async () => {
    const base = ["serve", "agent", "--retriever", index, "--port", "0"];
    const cases: Array<[string[], RegExp]> = [
      [["--llm", gguf, "--protocol", "nope"], /--protocol: must be one of r1-searcher, r1-searcher-plus, search-r1/],
      [["--llm", path.join(dir, "missing.gguf"), "--protocol", "r1-searcher"], /GGUF file not found/],
      [["--llm", gguf, "--protocol", "r1-searcher", "--max-searches", "-2"], /--max-searches/],
      [
        ["--llm", gguf, "--protocol", "r1-searcher", "--template", "no placeholder"],
        /--template must contain \{question\}/,
      ],
    ];
    const runs = cases.map(([args]) => startCli([...base, ...args]));
    for (let i = 0; i < cases.length; i++) {
      expect(await runs[i].exited).toBe(1);
      expect(runs[i].output().err).toMatch(cases[i][1]);
    }
  });
});
