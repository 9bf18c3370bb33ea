/**
 * Browser tests of the viewer (`searchrl ui --runs DIR`): Debian's Chromium driven by playwright-core opens the runs
 * page (overlaid curves), a run, the trajectory browser with filters, and the comparison; screenshots are saved under
 * test-artifacts/ui/. The Ask page (a live trace from a real agent) is tested in test/agent-ui.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentServer, type RunningAgentServer } from "../src/server/agent.js";
import { launchUiBrowser, unlabeledControls, type UiBrowser } from "./ui-browser.js";
import { writeUiFixtures } from "./ui-fixtures.js";

/** Generous: the suite runs on a contended 2-core machine. */
const POLL = { timeout: 20_000 };
let root: string;
let server: RunningAgentServer;
let ui: UiBrowser;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), "searchrl-ui-"));
  writeUiFixtures(root);
  server = await startAgentServer({ runsDir: root });
  ui = await launchUiBrowser();
});

afterAll(async () => {
  await ui?.close();
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("web UI (viewer)", () => {
  it("opens on the runs page and overlays the curves of several runs", async () => {
    const { page } = ui;
    await page.goto(`${server.url}/`);
    await page.waitForURL(/#\/runs/);
    await page.getByRole("heading", { level: 1, name: "Training runs" }).waitFor();
    await page.locator("figure.chart").first().waitFor();
    const captions = await page.locator("figure.chart figcaption").allTextContents();
    for (const t of [
      "Reward (mean)",
      "Accuracy",
      "Retrievals per answer",
      "Response length (tokens)",
      "KL to the reference",
    ])
      expect(captions).toContain(t);
    // Both runs are drawn in every chart.
    const reward = page.locator("figure.chart", { hasText: "Reward (mean)" });
    expect(await reward.locator("path.series").count()).toBe(2);
    expect(await reward.locator('path.series[data-series="r1-plus-rl"]').count()).toBe(1);
    await expect
      .poll(() => page.locator("ul.legend li").allTextContents(), POLL)
      .toEqual(["r1-plus-rl", "r1-searcher-rl"]);
    // The Ask link is hidden: this server has no agent.
    expect(await page.locator('nav.site a[data-route="ask"]').isVisible()).toBe(false);
    await ui.shot("runs-overlay");

    // Keyboard: the chart reads out values with the arrow keys.
    await reward.locator("svg").focus();
    await page.keyboard.press("ArrowRight");
    await expect
      .poll(() => reward.locator(".readout").textContent())
      .toMatch(/^step 1: r1-plus-rl [\d.]+ · r1-searcher-rl [\d.]+$/);
    await page.keyboard.press("End");
    await expect.poll(() => reward.locator(".readout").textContent(), POLL).toMatch(/^step 30:/);

    // Unchecking a run removes its curve.
    await page.getByLabel("Overlay r1-plus-rl").uncheck();
    await expect
      .poll(() => page.locator("figure.chart", { hasText: "Reward (mean)" }).locator("path.series").count())
      .toBe(1);
    expect(await unlabeledControls(page)).toEqual([]);
  });

  it("shows one run with its curves, samples and checkpoints", async () => {
    const { page } = ui;
    await page.goto(`${server.url}/#/runs/r1-searcher-rl`);
    await page.getByRole("heading", { level: 1, name: "r1-searcher-rl" }).waitFor();
    await page.locator("section", { hasText: "Checkpoints" }).waitFor(); // the last section drawn
    expect(await page.locator("figure.chart").count()).toBeGreaterThanOrEqual(5);
    expect(await page.locator(".step-links a").allTextContents()).toEqual(["step 10", "step 20"]);
    expect(await page.locator("text=step-000020 (latest)").count()).toBe(1);
    await ui.shot("run-detail");
    await page.locator(".step-links a", { hasText: "step 20" }).click();
    await page.waitForURL(/#\/trajectories\?source=run/);
    await page.locator("article.record").first().waitFor();
    expect(await page.locator("article.record").count()).toBe(8);
  });

  it("browses sampled trajectories with filters and the trace rendering", async () => {
    const { page } = ui;
    await page.goto(`${server.url}/#/trajectories?source=${encodeURIComponent("run:r1-plus-rl@10")}`);
    await page.locator("article.record").first().waitFor();
    expect(await page.locator("article.record").count()).toBe(8);
    // Filter to wrong answers with the form (keyboard-usable selects and a submit button).
    await page.getByLabel("Correctness").selectOption("false");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/correct=false/);
    await page.locator(".status", { hasText: "trajectories match" }).waitFor();
    const status = await page.locator(".status").textContent();
    const n = Number(/^(\d+) of 8/.exec(status ?? "")?.[1]);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(8);
    expect(await page.locator("article.record").count()).toBe(n);
    expect(await page.locator("article.record .badge.ok").count()).toBe(0);

    // Open a trace: query chips, expandable documents, a recalled fact, the highlighted answer.
    const rec = page.locator("article.record").first();
    await rec.locator("summary", { hasText: "Trace" }).click();
    const chip = rec.locator('[data-testid="query-chip"]').first();
    await chip.waitFor();
    expect(await chip.textContent()).toMatch(/Search 1: /);
    const docs = rec.locator("details.docs").first();
    expect(await docs.locator("summary").textContent()).toBe("2 documents");
    expect(await docs.locator(".doc-text").first().isVisible()).toBe(false);
    await docs.locator("summary").focus();
    await page.keyboard.press("Enter");
    expect(await docs.locator(".doc-text").first().isVisible()).toBe(true);
    expect(await rec.locator(".step-internal").count()).toBe(1);
    expect(await rec.locator(".step-answer mark").textContent()).toBe("Unknown Person");
    await ui.shot("trajectories-filtered");
    expect(await unlabeledControls(page)).toEqual([]);
  });

  it("browses evaluation results and compares two of them side by side", async () => {
    const { page } = ui;
    const a = "results:evals/model-a/results.jsonl";
    const b = "results:evals/model-b/results.jsonl";
    await page.goto(`${server.url}/#/trajectories?source=${encodeURIComponent(b)}&dataset=bamboogle`);
    await page.locator("article.record").first().waitFor();
    expect(await page.locator("article.record").count()).toBe(2);

    await page.goto(`${server.url}/#/compare`);
    await page.getByLabel("Left (A)").selectOption(a);
    await page.getByLabel("Right (B)").selectOption(b);
    await page.getByLabel("Only questions where the answers or verdicts differ").check();
    await page.getByRole("button", { name: "Compare" }).click();
    await page.locator("section.pair").first().waitFor();
    expect(await page.locator("section.pair").count()).toBe(2);
    const first = page.locator("section.pair").first();
    expect(await first.locator(".badge.ok").count()).toBe(1);
    expect(await first.locator(".badge.bad").count()).toBe(1);
    await first.locator("summary", { hasText: "Trace" }).first().click();
    await ui.shot("compare");
    expect(await unlabeledControls(page)).toEqual([]);
  });

  it("is keyboard navigable from the main menu", async () => {
    const { page } = ui;
    await page.goto(`${server.url}/#/runs`);
    await page.getByRole("heading", { level: 1, name: "Training runs" }).waitFor();
    await page.locator("#main:not([aria-busy])").waitFor();
    await page.locator('nav.site a[data-route="trajectories"]').focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Trajectories" }).waitFor();
    expect(await page.locator('nav.site a[aria-current="page"]').textContent()).toBe("Trajectories");
    // Focus moved to the new page's heading.
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName), POLL).toBe("H1");
  });
});
