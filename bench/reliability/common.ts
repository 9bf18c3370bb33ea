/** Helpers shared by the reliability bench sections: CLI child processes, the bundled KILT sample, table rows. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Passage } from "../../src/util/types.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const QUICK = process.env.SEARCHRL_BENCH_QUICK === "1";

export interface Row {
  figure: string;
  target: string;
  measured: string;
  met: boolean;
  note?: string;
}

/** Start the real CLI (`src/cli/main.ts` through tsx, in one process so SIGKILL hits it). */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "cli", "main.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, SEARCHRL_CLI_ENTRY: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Everything the bench's child processes printed (the secrets figure scans it). */
export const CAPTURED_OUTPUT: string[] = [];

/** Collect a child's output; resolves when it exits. */
export function collect(p: ChildProcess): { done: Promise<Exited>; out: () => string; err: () => string } {
  let stdout = "";
  let stderr = "";
  p.stdout?.on("data", (d) => (stdout += d));
  p.stderr?.on("data", (d) => (stderr += d));
  p.on("close", () => CAPTURED_OUTPUT.push(stdout, stderr));
  const done = new Promise<Exited>((resolve, reject) => {
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { done, out: () => stdout, err: () => stderr };
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<Exited> {
  return collect(spawnCli(args, env)).done;
}

/** The bundled KILT sample passages (`id\ttitle   text` lines). */
export function kiltSample(): Passage[] {
  return readFileSync(
    path.join(ROOT, "data", "r1-searcher", "kilt_samples", "train_kilt_full_page_sample_100.tsv"),
    "utf8",
  )
    .split("\n")
    .filter((l) => /^\d+\t/.test(l))
    .map((l): Passage => {
      const id = l.slice(0, l.indexOf("\t"));
      const rest = l.slice(l.indexOf("\t") + 1);
      const sep = rest.indexOf("   ");
      return { id, title: rest.slice(0, sep), text: rest.slice(sep + 3), raw: l };
    });
}

/** Questions of the bundled HotpotQA sample. */
export function evalQuestions(limit = 500): Array<{ idx: number; question: string; answer: string }> {
  return readFileSync(path.join(ROOT, "data", "r1-searcher", "eval_set", "hotpotqa_500.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(0, limit)
    .map((l, i) => {
      const r = JSON.parse(l) as { question: string; answer: unknown };
      return { idx: i + 1, question: r.question, answer: String(r.answer) };
    });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
