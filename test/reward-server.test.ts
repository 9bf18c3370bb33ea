/** The reward server over loopback: real HTTP, real scoring, the OpenRLHF remote-reward contract. */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOLS } from "../src/protocol/index.js";
import { GoldTable } from "../src/reward/index.js";
import { startRewardServer, type RunningRewardServer } from "../src/server/reward.js";

const r1 = PROTOCOLS["r1-searcher"];
const plus = PROTOCOLS["r1-searcher-plus"];
const dir = mkdtempSync(path.join(tmpdir(), "searchrl-reward-server-"));
const ROWS = [
  { question: "Who wrote Hamlet?", answer: "William Shakespeare" },
  { question: "What is the capital of France?", answer: "Paris" },
];
const gold = GoldTable.fromRows(ROWS);
const DOCS = r1.renderDocumentBlock([
  { id: "1", title: "Hamlet", text: "Hamlet is a tragedy written by William Shakespeare." },
]);
const GOOD =
  " I should search. <|begin_of_query|> Hamlet author " +
  DOCS +
  "So.</think>\n\n<answer> William Shakespeare </answer>";
const qwenText = (q: string, sol: string) => r1.buildPrompt(q) + sol + "<|endoftext|>";

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = { "content-type": "application/json" },
) {
  const res = await fetch(url + "/get_reward", {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("reward server (r1-searcher-qwen)", () => {
  let srv: RunningRewardServer;
  const log = path.join(dir, "qwen.jsonl");
  beforeAll(async () => {
    srv = await startRewardServer({ preset: "r1-searcher-qwen", gold, logFile: log });
  });
  afterAll(async () => srv.close());

  it("scores one query per request like OpenRLHF, and empty batches", async () => {
    const r = await post(srv.url, { query: [qwenText("Who wrote Hamlet?", GOOD)] });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      rewards: [1],
      scores: [1],
      extra_logs: { correct: [1], format_ok: [1], retrievals: [1] },
    });
    const e = await post(srv.url, { query: [], prompts: [], labels: [] });
    expect(e).toEqual({
      status: 200,
      json: { rewards: [], scores: [], extra_logs: { correct: [], format_ok: [], retrievals: [] } },
    });
  });

  it("labels override the gold table; empty labels fall back to it", async () => {
    const unknownQ = qwenText("Who painted the Mona Lisa?", " x</think>\n\n<answer>Leonardo da Vinci</answer>");
    const r = await post(srv.url, {
      query: [unknownQ, qwenText("Who wrote Hamlet?", GOOD)],
      prompts: ["", ""],
      labels: ["Leonardo da Vinci", ""],
    });
    expect(r.status).toBe(200);
    expect(r.json.rewards).toEqual([1, 1]);
  });

  it("unknown question → 422 naming it (not 500)", async () => {
    const r = await post(srv.url, { query: [qwenText("Who painted the Mona Lisa?", GOOD)] });
    expect(r.status).toBe(422);
    expect(r.json.error).toMatch(/unknown question.*Who painted the Mona Lisa\?/);
    expect(r.json.code).toBe("unknown_question");
  });

  it("malformed bodies, wrong types, wrong media types → 400/415 JSON", async () => {
    const bad = await post(srv.url, "{not json");
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/JSON/i);
    const wrong = await post(srv.url, { query: "text" });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toMatch(/query/);
    expect((await post(srv.url, { query: [1, 2] })).status).toBe(400);
    expect((await post(srv.url, {})).status).toBe(400);
    expect((await post(srv.url, [1])).status).toBe(400);
    const mismatch = await post(srv.url, { query: ["a", "b"], labels: ["x"] });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error).toMatch(/labels has 1 entries, query has 2/);
    const text = await post(srv.url, "query=1", { "content-type": "text/plain" });
    expect(text.status).toBe(400);
    expect(text.json.error).toMatch(/invalid body/);
    const media = await post(srv.url, "<q/>", { "content-type": "application/xml" });
    expect(media.status).toBe(415);
    expect(media.json.error).toMatch(/content-type/);
    const health = await fetch(srv.url + "/health").then((r) => r.json());
    expect(health).toMatchObject({ status: "ok", preset: "r1-searcher-qwen", questions: 2, groupSize: null });
  });

  it("a 10 MB body is handled cleanly", async () => {
    const huge = qwenText(
      "Who wrote Hamlet?",
      " " + "word ".repeat(2_000_000) + "</think>\n\n<answer>William Shakespeare</answer>",
    );
    expect(huge.length).toBeGreaterThan(10_000_000);
    const r = await post(srv.url, { query: [huge] });
    expect(r.status).toBe(200);
    expect(r.json.rewards).toEqual([1]);
  });

  it("concurrent requests are all answered and logged (one line per query)", async () => {
    const before = readFileSync(log, "utf8").trim().split("\n").length;
    const sols = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? GOOD : " x</think>\n\n<answer>Paris</answer>"));
    const rs = await Promise.all(
      sols.map((s, i) =>
        post(srv.url, { query: [qwenText(i % 4 < 2 ? "Who wrote Hamlet?" : "What is the capital of France?", s)] }),
      ),
    );
    rs.forEach((r, i) => {
      expect(r.status).toBe(200);
      const hamlet = i % 4 < 2;
      // GOOD for the France question has F1 0 and no format problem → 0; "Paris" for Hamlet → 0
      expect(r.json.rewards).toEqual([i % 2 === 0 ? (hamlet ? 1 : 0) : hamlet ? 0 : 1]);
    });
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines.length - before).toBe(40);
    const rec = JSON.parse(lines[0]);
    expect(Object.keys(rec)).toEqual(["question", "solution", "score", "finished"]);
    expect(rec.question).toBe("Who wrote Hamlet?");
    expect(rec.finished).toBe("1");
    expect(rec.solution.endsWith("</answer><|endoftext|>")).toBe(true);
  });
});

describe("reward server options", () => {
  it("413 above the body limit; compat pairs for stage 1", async () => {
    const srv = await startRewardServer({
      preset: "r1-searcher-llama-stage1",
      gold,
      bodyLimit: 1024 * 1024,
      compatPairs: true,
    });
    try {
      const big = await post(srv.url, { query: ["x".repeat(2 * 1024 * 1024)] });
      expect(big.status).toBe(413);
      expect(big.json.error).toMatch(/too large/);
      const text = r1.buildPrompt("Who wrote Hamlet?", { variant: "train-chat" }) + GOOD + "<|eot_id|>";
      const r = await post(srv.url, { query: [text] });
      expect(r.json.rewards).toEqual([[2, 0]]);
    } finally {
      await srv.close();
    }
  });
  it("rejects group mode for presets without group rewards", async () => {
    await expect(startRewardServer({ preset: "r1-searcher-qwen", groupSize: 4 })).rejects.toThrow(
      /group-reward presets only/,
    );
  });
});

describe("reward server group mode (r1-searcher-plus)", () => {
  const docs = plus.renderObservation([{ id: "1", title: "Hamlet", text: "by William Shakespeare" }]);
  const resp = (n: number, answer: string) => {
    let s = " plan.";
    for (let i = 0; i < n; i++) s += ` <external> q${i} </external>${docs}ok.`;
    return s + `</think>\n\n<answer>${answer}</answer>`;
  };
  const text = (q: string, n: number, a: string) => plus.buildPrompt(q) + resp(n, a) + "<|im_end|>";

  it("holds single-sample requests until the group is complete, then applies the group reward", async () => {
    const warnings: string[] = [];
    const srv = await startRewardServer({
      preset: "r1-searcher-plus",
      gold,
      groupSize: 4,
      groupTimeoutMs: 30_000,
      onWarning: (m) => warnings.push(m),
    });
    try {
      const q = "Who wrote Hamlet?";
      const samples: Array<[number, string]> = [
        [1, "William Shakespeare"],
        [3, "William Shakespeare"],
        [2, "Marlowe"],
        [0, "Bacon"],
      ];
      let done = 0;
      const ps = samples.map(([n, a]) => post(srv.url, { query: [text(q, n, a)] }).then((r) => (done++, r)));
      // an interleaved sample of another question does not disturb the group
      const other = post(srv.url, { query: [text("What is the capital of France?", 0, "Paris")] });
      const rs = await Promise.all(ps);
      expect(done).toBe(4);
      // correct: retrievals 1 and 3 → σ² = 1 → min(2·1, 2) = 2 for the 1-retrieval sample
      expect(rs.map((r) => r.json.rewards)).toEqual([[3], [1], [0], [0]]);
      expect(rs[0].json.extra_logs).toEqual({ correct: [1], format_ok: [1], retrievals: [1] });
      const h = await fetch(srv.url + "/health").then((r) => r.json());
      expect(h).toMatchObject({ groupSize: 4, pendingGroups: 1, pendingSamples: 1 });
      // a batched request with a whole group is answered at once
      const batch = await post(srv.url, { query: samples.map(([n, a]) => text(q, n, a)) });
      expect(batch.json.rewards).toEqual([3, 1, 0, 0]);
      // the lone France sample is scored when the server closes
      await srv.close();
      expect((await other).json.rewards).toEqual([1]);
      expect(warnings.some((w) => /1\/4 samples after server close/.test(w))).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it("scores a partial group after the timeout with a warning; unknown questions are not held", async () => {
    const warnings: string[] = [];
    const srv = await startRewardServer({
      preset: "r1-searcher-plus",
      gold,
      groupSize: 16,
      groupTimeoutMs: 300,
      onWarning: (m) => warnings.push(m),
    });
    try {
      const t0 = Date.now();
      const rs = await Promise.all([
        post(srv.url, { query: [text("Who wrote Hamlet?", 0, "William Shakespeare")] }),
        post(srv.url, { query: [text("Who wrote Hamlet?", 2, "William Shakespeare")] }),
      ]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(rs.map((r) => r.json.rewards)).toEqual([[1 + 2], [1]]);
      expect(warnings.some((w) => /2\/16 samples after 300 ms/.test(w))).toBe(true);
      const unknown = await post(srv.url, { query: [text("Who painted the Mona Lisa?", 0, "Leonardo")] });
      expect(unknown.status).toBe(422);
    } finally {
      await srv.close();
    }
  });
});

describe("searchrl serve reward (CLI)", () => {
  it("starts, loads --data, answers, and stops on SIGTERM", async () => {
    const data = path.join(dir, "gold.jsonl");
    writeFileSync(data, ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const root = path.resolve(__dirname, "..");
    const p = spawn(
      path.join(root, "node_modules", ".bin", "tsx"),
      [
        path.join(root, "src", "cli", "main.ts"),
        "serve",
        "reward",
        "--preset",
        "r1-searcher-qwen",
        "--data",
        data,
        "--port",
        "0",
      ],
      {
        cwd: root,
        env: { ...process.env, SEARCHRL_CLI_ENTRY: "1" },
      },
    );
    let out = "";
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start line; stderr: ${err}`)), 30_000);
      p.stdout.on("data", (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)\/get_reward/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
    });
    expect(out).toContain("preset r1-searcher-qwen, 2 questions");
    const r = await post(url, { query: [qwenText("Who wrote Hamlet?", GOOD)] });
    expect(r.json.rewards).toEqual([1]);
    const code = await new Promise<number | null>((resolve) => {
      p.on("close", resolve);
      p.kill("SIGTERM");
    });
    expect(code).toBe(0);
  });
});
