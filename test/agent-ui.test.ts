/**
 * Browser test of the Ask page against a real agent (node-llama-cpp on a GGUF the test writes, BM25 index from the
 * retrieval library): Debian's Chromium asks a question and sees the live trace, the query chip, the documents, the
 * highlighted answer and the counts; Stop aborts a long answer on the server. Screenshots: test-artifacts/ui/.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LLMBackend } from "../src/llm/types.js";
import type { Retriever } from "../src/retrieval/types.js";
import { startAgentServer, type RunningAgentServer } from "../src/server/agent.js";
import type { RolloutAgent } from "../src/server/agent-rollout.js";
import { answeringAgent, loopingAgent, openTestRetriever } from "./agent-fixtures.js";
import { launchUiBrowser, unlabeledControls, type UiBrowser } from "./ui-browser.js";
import { writeUiFixtures } from "./ui-fixtures.js";

/** Generous: the suite runs on a contended 2-core machine. */
const POLL = { timeout: 20_000 };
let dir: string;
let retriever: Retriever;
let answer: { agent: RolloutAgent; backend: LLMBackend };
let loop: { agent: RolloutAgent; backend: LLMBackend };
let server: RunningAgentServer;
let slow: RunningAgentServer;
let locked: RunningAgentServer;
let ui: UiBrowser;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-agent-ui-"));
  writeUiFixtures(path.join(dir, "runs"));
  retriever = await openTestRetriever(path.join(dir, "index"));
  answer = await answeringAgent(dir, retriever);
  loop = await loopingAgent(dir, retriever);
  server = await startAgentServer({ agent: answer.agent, runsDir: path.join(dir, "runs") });
  slow = await startAgentServer({ agent: loop.agent, limits: { maxTokens: 30_000 } });
  locked = await startAgentServer({ agent: answer.agent, token: "s3cret" });
  ui = await launchUiBrowser();
});

afterAll(async () => {
  await ui?.close();
  await server?.close();
  await slow?.close();
  await locked?.close();
  await answer?.backend.close();
  await loop?.backend.close();
  await retriever?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("web UI: Ask", () => {
  it("asks a question and shows the trace and the answer", async () => {
    const { page } = ui;
    await page.goto(`${server.url}/`);
    await page.waitForURL(/#\/ask/);
    await page.getByRole("heading", { level: 1, name: "Ask the agent" }).waitFor();
    // An agent server with --runs shows every page.
    for (const r of ["ask", "runs", "trajectories", "compare"])
      expect(await page.locator(`nav.site a[data-route="${r}"]`).isVisible()).toBe(true);
    await page.getByRole("textbox", { name: "Question" }).fill("What is the capital of France?");
    await page.getByRole("button", { name: "Ask", exact: true }).click();

    const answerBox = page.locator('[data-testid="answer"]');
    await answerBox.waitFor({ state: "visible" });
    await expect.poll(() => page.locator(".status").textContent(), POLL).toMatch(/^Done in .* with 1 retrieval\.$/);
    expect((await answerBox.locator(".answer-final").textContent())?.trim()).toBe("Paris");
    const chip = page.locator('[data-testid="query-chip"]');
    expect(await chip.count()).toBe(1);
    expect(await chip.textContent()).toBe("⌕Search 1: capital France");
    expect(await page.locator(".step-reasoning .reasoning").first().textContent()).toBe("Let me search");
    expect(await page.locator(".step-answer mark").textContent()).toBe("Paris");
    expect(await page.locator('dd[data-fact="retrievals"]').textContent()).toBe("1");
    expect(await page.locator('dd[data-fact="latency"]').textContent()).toMatch(/\d+ (ms|s)$/);
    expect(await page.locator('dd[data-fact="finish"]').textContent()).toBe("answer (finished)");
    // The documents of the query (BM25 over the test corpus), expandable with the keyboard.
    const docs = page.locator("details.docs");
    expect(await docs.locator("summary").textContent()).toMatch(/^5 documents · \d+ ms$/);
    await docs.locator("summary").focus();
    await page.keyboard.press("Enter");
    expect(await docs.locator(".doc-title").first().textContent()).toBe("Paris");
    expect(await docs.locator(".doc-text").first().textContent()).toBe(
      "Paris is the capital and largest city of France.",
    );
    expect(await unlabeledControls(page)).toEqual([]);
    await ui.shot("ask-answer");
  });

  it("asks with Ctrl+Enter and options from the keyboard", async () => {
    const { page } = ui;
    await page.goto(`${server.url}/#/ask`);
    await page.getByRole("textbox", { name: "Question" }).waitFor();
    await page.locator("details.options summary").click();
    await page.getByLabel("Max searches").fill("0");
    await page.getByRole("textbox", { name: "Question" }).fill("What is the capital of France?");
    await page.getByRole("textbox", { name: "Question" }).press("Control+Enter");
    await expect.poll(() => page.locator(".status").textContent(), POLL).toMatch(/^Done in .* with 0 retrievals\.$/);
    expect((await page.locator('[data-testid="answer"] .answer-final').textContent())?.trim()).toBe("(no answer)");
    expect(await page.locator('dd[data-fact="finish"]').textContent()).toBe("max_searches (many_retrieve)");
  });

  it("Stop cancels a long answer and the server aborts it", async () => {
    const { page } = ui;
    await page.goto(`${slow.url}/#/ask`);
    await page.getByRole("textbox", { name: "Question" }).fill("Say la forever");
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    // The reasoning text grows live.
    await page.locator(".step-reasoning .reasoning").first().waitFor();
    await expect
      .poll(async () => ((await page.locator(".step-reasoning .reasoning").first().textContent()) ?? "").length)
      .toBeGreaterThan(40);
    await ui.shot("ask-live");
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => page.locator(".status").textContent(), POLL).toBe("Stopped.");
    await expect
      .poll(
        async () =>
          (await (await fetch(`${slow.url}/health`)).json()) as {
            queue: { active: number };
            stats: { aborted: number };
          },
        { timeout: 8000 },
      )
      .toMatchObject({ queue: { active: 0 }, stats: { aborted: 1 } });
    expect(await page.getByRole("button", { name: "Ask", exact: true }).isEnabled()).toBe(true);
  });

  it("asks for the token on a protected server and then answers", async () => {
    const { page } = ui;
    await page.goto(`${locked.url}/#/ask`);
    await page.getByRole("textbox", { name: "Question" }).fill("What is the capital of France?");
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await expect
      .poll(() => page.locator(".status").textContent())
      .toMatch(/^Error: missing bearer token.*Enter the server's token/);
    await page.getByLabel("Token", { exact: true }).fill("s3cret");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("textbox", { name: "Question" }).fill("What is the capital of France?");
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await expect.poll(() => page.locator(".status").textContent(), POLL).toMatch(/^Done in/);
    expect((await page.locator('[data-testid="answer"] .answer-final').textContent())?.trim()).toBe("Paris");
  });
});
