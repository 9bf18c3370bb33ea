/**
 * Launches Debian's Chromium (never a downloaded browser) through playwright-core for the UI tests, with a fresh
 * profile; fails with a clear message when Chromium is missing. Screenshots go to test-artifacts/ui/.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const ARTIFACTS = path.resolve(__dirname, "..", "test-artifacts", "ui");

export function findChromium(): string {
  let exe = "";
  try {
    exe = execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
  } catch {
    /* not on PATH */
  }
  if (!exe && existsSync("/usr/bin/chromium")) exe = "/usr/bin/chromium";
  if (!exe) {
    throw new Error(
      "Chromium is not installed, so the browser tests cannot run. Install Debian's package: `apt-get install -y chromium` " +
        "(.ci/run does this); the tests never download a browser.",
    );
  }
  return exe;
}

export interface UiBrowser {
  context: BrowserContext;
  page: Page;
  /** Save a full-page screenshot under test-artifacts/ui/NAME.png; returns its path. */
  shot(name: string, page?: Page): Promise<string>;
  close(): Promise<void>;
}

export async function launchUiBrowser(): Promise<UiBrowser> {
  const executablePath = findChromium();
  const profile = mkdtempSync(path.join(os.tmpdir(), "searchrl-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    page,
    async shot(name: string, p: Page = page) {
      const file = path.join(ARTIFACTS, `${name}.png`);
      await p.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      if (errors.length > 0) throw new Error(`uncaught errors in the page: ${errors.join("; ")}`);
    },
  };
}

/** Every form control on the page has an accessible label (a <label>, aria-label or aria-labelledby). */
export async function unlabeledControls(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll("input, select, textarea"))) {
      const c = el as HTMLInputElement;
      if (c.type === "hidden" || c.closest("[hidden]")) continue;
      const labelled =
        (c.labels && c.labels.length > 0) || c.getAttribute("aria-label") || c.getAttribute("aria-labelledby");
      if (!labelled) out.push(c.outerHTML.slice(0, 120));
    }
    return out;
  });
}
