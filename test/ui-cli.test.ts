/** `searchrl ui --runs DIR` spawned as a real process: serves the pages and data routes without an agent. */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeUiFixtures } from "./ui-fixtures.js";

const ROOT = path.resolve(__dirname, "..");
let dir: string;

function run(args: string[]) {
  const p = spawn(path.join(ROOT, "node_modules", ".bin", "tsx"), [path.join(ROOT, "src", "cli", "main.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, SEARCHRL_CLI_ENTRY: "1" },
  });
  let out = "";
  let err = "";
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => p.on("close", resolve));
  return { p, exited, output: () => ({ out, err }) };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-ui-cli-"));
  writeUiFixtures(dir);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("searchrl ui (CLI)", () => {
  it("serves runs and results without an agent and stops on SIGTERM", async () => {
    const r = run(["ui", "--runs", dir, "--port", "0"]);
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start line: ${JSON.stringify(r.output())}`)), 45_000);
      r.p.stdout.on("data", () => {
        const m = /searchrl ui: (http:\/\/\S+?)\/ /.exec(r.output().out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
    });
    const info = (await (await fetch(`${url}/api/info`)).json()) as any;
    expect(info).toMatchObject({ mode: "viewer", runs: true });
    const runs = (await (await fetch(`${url}/api/runs`)).json()) as any;
    expect(runs.runs).toHaveLength(2);
    const results = (await (await fetch(`${url}/api/results`)).json()) as any;
    expect(results.results).toHaveLength(2);
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(chat.status).toBe(404);
    expect((await fetch(`${url}/`)).status).toBe(200);
    r.p.kill("SIGTERM");
    expect(await r.exited).toBe(0);
  });

  it("refuses a missing runs folder", async () => {
    const r = run(["ui", "--runs", path.join(dir, "nope"), "--port", "0"]);
    expect(await r.exited).toBe(1);
    expect(r.output().err).toMatch(/--runs: .* is not a folder/);
  });
});
