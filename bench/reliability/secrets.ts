/**
 * Secrets: API keys planted for every web provider (Serper, Brave, Tavily, SearXNG), the page summarizer, the LLM
 * judge and the OpenAI-compatible model server must never appear in logs, errors, results, traces, run folders or the
 * UI's API. `plantKeys` puts them in the environment of the bench (so every child process of every section inherits
 * them); `secretsSection` runs evaluations that use each key, successfully and against servers that refuse it (and
 * one that echoes the Authorization header back in its error body); `secretsScan` then searches every file the bench
 * wrote, every captured output and every UI API route over its folders.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { evaluate } from "../../src/eval/index.js";
import { createOpenAIBackend } from "../../src/llm/openai.js";
import { EOS, startScriptedOpenAIServer } from "../../src/llm/testing/scripted-openai-server.js";
import { TEST_PIECES, VocabTokenizer } from "../../src/llm/testing/vocab-tokenizer.js";
import { PROTOCOLS } from "../../src/protocol/index.js";
import { createWebRetriever } from "../../src/retrieval/web/index.js";
import { startWebDoubles, type WebDoubles } from "../../src/retrieval/web/testing/web-doubles.js";
import { startAgentServer } from "../../src/server/agent.js";
import { CAPTURED_OUTPUT, collect, spawnCli, type Row } from "./common.js";
import type { ServerFixture } from "./servers.js";

export const KEYS = {
  SERPER_API_KEY: "sk-serper-PLANTED-7f3a91c2e4",
  BRAVE_API_KEY: "sk-brave-PLANTED-2b8d44e019",
  TAVILY_API_KEY: "tvly-PLANTED-9c1e7a55d3",
  SEARXNG_API_KEY: "sx-PLANTED-41f0b2c9aa",
  SEARCHRL_SUMMARY_API_KEY: "sk-summary-PLANTED-0d9e3f7b61",
  SEARCHRL_JUDGE_API_KEY: "sk-judge-PLANTED-5a6c8e1f20",
  SEARCHRL_LLM_API_KEY: "sk-llm-PLANTED-8e2d0c4b97",
  OPENAI_API_KEY: "sk-openai-PLANTED-3c7f9a1e55",
} as const;

export function plantKeys(): void {
  for (const [k, v] of Object.entries(KEYS)) process.env[k] = v;
}

/** Strings that must never be written: every key (and its base64, as a Basic-auth header would carry it). */
function needles(): string[] {
  return Object.values(KEYS).flatMap((k) => [k, Buffer.from(k).toString("base64")]);
}

const captured: string[] = [];

/** A model server that refuses every request and echoes the Authorization header it got in its error body. */
async function echoingServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `invalid key: ${req.headers.authorization ?? ""}` } }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
}

/** A judge double that answers correctly, or echoes its key back in an error when `refuse`. */
async function judgeServer(refuse: boolean): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      if (refuse) {
        res.writeHead(403, { "content-type": "application/json" });
        return res.end(JSON.stringify({ error: `key ${req.headers.authorization} is not allowed` }));
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content: "True" } }] }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
}

const hits = () => [{ title: "Paris", url: "https://example.org/paris", snippet: "Paris is the capital of France." }];

export async function secretsSection(fx: ServerFixture): Promise<Row[]> {
  const tok = new VocabTokenizer(TEST_PIECES);
  const llm = await startScriptedOpenAIServer({
    tokenizer: tok,
    flavor: "text",
    script: (prompt) =>
      prompt.includes("<|begin_of_documents|>")
        ? ` so.</think>\n\n<answer> Paris </answer>${EOS}`
        : ` Let me search <|begin_of_query|> capital of France<|end_of_query|>`,
  });
  const echo = await echoingServer();
  const judges = [await judgeServer(false), await judgeServer(true)];
  const doubles: Record<string, WebDoubles> = {};
  const providers = [
    ["serper", "SERPER_API_KEY", "/serper/search"],
    ["brave", "BRAVE_API_KEY", "/brave/res/v1/web/search"],
    ["tavily", "TAVILY_API_KEY", "/tavily/search"],
    ["searxng", "SEARXNG_API_KEY", "/searxng"],
  ] as const;
  let runs = 0;
  let errors = 0;
  try {
    for (const [name, env] of providers) doubles[name] = await startWebDoubles({ hits, key: KEYS[env] });
    // a second set of doubles that expects other keys: every call with the planted key is refused
    const refusing = await startWebDoubles({ hits, key: "some-other-key" });
    const questions = [{ idx: 1, question: "What is the capital of France?", answer: "Paris" }];
    for (const [name, env, route] of providers) {
      for (const [label, base, judge, llmUrl] of [
        ["ok", doubles[name].url, judges[0].url, llm.url],
        ["refused", refusing.url, judges[1].url, echo.url],
      ] as const) {
        for (const pipeline of ["snippets", "paper"] as const) {
          const events: unknown[] = [];
          const retriever = createWebRetriever(name, {
            provider: { endpoint: base + route, apiKey: KEYS[env], attempts: 1 },
            pipeline,
            ...(pipeline === "paper"
              ? { summarizer: { baseUrl: `${base}/llm/v1`, apiKey: KEYS.SEARCHRL_SUMMARY_API_KEY } }
              : {}),
            cacheDir: path.join(fx.dir, "secrets", `cache-${name}-${label}-${pipeline}`),
          });
          const backend = createOpenAIBackend({
            baseUrl: llmUrl,
            model: "m",
            apiKey: KEYS.SEARCHRL_LLM_API_KEY,
            attempts: 1,
            onWarning: (w) => captured.push(w),
          });
          try {
            const r = await evaluate({
              backend,
              protocol: PROTOCOLS["r1-searcher"],
              retriever,
              items: questions,
              judge: { baseUrl: judge, apiKey: KEYS.SEARCHRL_JUDGE_API_KEY, attempts: 1 },
              outFile: path.join(fx.dir, "secrets", `eval-${name}-${label}-${pipeline}`, "results.jsonl"),
              onEvent: (e) => events.push(e),
            });
            runs++;
            errors += r.summary.failed;
            captured.push(JSON.stringify(r), JSON.stringify(events), JSON.stringify(await retriever.info()));
          } catch (err) {
            errors++;
            captured.push(String(err), err instanceof Error ? (err.stack ?? "") : "");
          } finally {
            await retriever.close();
          }
        }
      }
    }
    await refusing.close();
    // the CLI: web:searxng (its URL from the environment), the judge and the model server keys from the environment
    const out = path.join(fx.dir, "secrets", "cli-eval", "results.jsonl");
    const data = path.join(fx.dir, "secrets", "q.jsonl");
    const { writeFileSync, mkdirSync } = await import("node:fs");
    mkdirSync(path.dirname(data), { recursive: true });
    writeFileSync(data, JSON.stringify(questions[0]) + "\n");
    for (const llmUrl of [llm.url, echo.url]) {
      const r = await collect(
        spawnCli(
          [
            "eval",
            "--dataset",
            data,
            "--llm",
            `${llmUrl}#m`,
            "--retriever",
            "web:searxng",
            "--judge",
            judges[llmUrl === llm.url ? 0 : 1].url,
            "--out",
            out,
            "--cache-dir",
            path.join(fx.dir, "secrets", "cli-cache"),
            "--no-resume",
            "--debug",
          ],
          { SEARXNG_URL: doubles.searxng.url + "/searxng" },
        ),
      ).done;
      runs++;
      if (r.code !== 0) errors++;
    }
  } finally {
    for (const d of Object.values(doubles)) await d.close();
    for (const j of judges) await j.close();
    await echo.close();
    await llm.close();
  }
  return [
    {
      figure: `secrets: ${runs} evaluations with planted keys (4 web providers × snippets/paper, summarizer, judge, model server; accepted and refused, one server echoing the key)`,
      target: "(scanned with every other output at the end of the bench)",
      measured: `${runs} runs, ${errors} failed questions/runs (the refused ones, by design)`,
      met: runs > 0,
    },
  ];
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile() && st.size < 64 * 1024 * 1024) out.push(p);
  }
  return out;
}

/** Search every file under `dir`, all captured output and the UI API over `dir` for the planted keys. */
export async function secretsScan(dir: string): Promise<Row> {
  const keys = needles();
  const found: string[] = [];
  const files = walk(dir);
  for (const f of files) {
    const buf = readFileSync(f);
    for (const k of keys) if (buf.includes(k)) found.push(`${path.relative(dir, f)} holds ${k.slice(0, 12)}…`);
  }
  const texts = [...CAPTURED_OUTPUT, ...captured];
  for (const t of texts) for (const k of keys) if (t.includes(k)) found.push(`output holds ${k.slice(0, 12)}…`);
  // the UI's API over the bench folders (runs, results, trajectories)
  const ui = await startAgentServer({ runsDir: dir });
  let routes = 0;
  try {
    const get = async (p: string) => {
      routes++;
      const t = await (await fetch(ui.url + p)).text();
      for (const k of keys) if (t.includes(k)) found.push(`UI API ${p} holds ${k.slice(0, 12)}…`);
      return t;
    };
    await get("/api/info");
    const runs = JSON.parse(await get("/api/runs")) as { runs: Array<{ name: string }> };
    for (const r of runs.runs) {
      const name = encodeURIComponent(r.name);
      await get(`/api/runs/${name}`);
      await get(`/api/runs/${name}/metrics`);
      const s = JSON.parse(await get(`/api/runs/${name}/samples`)) as { steps?: number[] };
      for (const step of (s.steps ?? []).slice(0, 3)) await get(`/api/runs/${name}/samples/${step}`);
    }
    const results = JSON.parse(await get("/api/results")) as { results: Array<{ name: string }> };
    for (const r of results.results) await get(`/api/results/${encodeURIComponent(r.name)}`);
  } finally {
    await ui.close();
  }
  return {
    figure: `secrets: ${Object.keys(KEYS).length} planted keys searched in ${files.length} files of the bench's folders (run folders, results, caches, checkpoints), ${texts.length} captured logs/errors/results/traces and ${routes} UI API responses`,
    target: "never appear",
    measured: `${found.length} occurrences`,
    met: found.length === 0,
    ...(found.length ? { note: [...new Set(found)].slice(0, 5).join("; ") } : {}),
  };
}
