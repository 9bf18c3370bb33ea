/**
 * `searchrl ui --runs DIR`: the web UI for offline viewing of training runs and evaluation results (no agent).
 * The same pages are served by `searchrl serve agent`, which adds the Ask page.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { startAgentServer } from "../../server/agent.js";
import type { RegisterCommands } from "../groups.js";

const UiOptions = z.object({
  runs: z.string().min(1, "--runs is required"),
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1),
  token: z.string().min(1).optional(),
});

/** Parse a port/host/token set shared by the serving commands; exits with a clear message on a bad value. */
export function parseUiOptions(raw: Record<string, unknown>): z.infer<typeof UiOptions> {
  const r = UiOptions.safeParse(raw);
  if (!r.success) throw new Error(r.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; "));
  return r.data;
}

/** Keep the process alive until SIGINT/SIGTERM, then run `close`. */
export function waitForShutdown(close: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let closing = false;
    const stop = (sig: string) => {
      if (closing) return;
      closing = true;
      process.stderr.write(`\n${sig}: shutting down\n`);
      close().then(resolve, (err) => {
        process.stderr.write(`error while closing: ${err instanceof Error ? err.message : String(err)}\n`);
        resolve();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}

export const register: RegisterCommands = (program) => {
  program
    .command("ui")
    .description("web UI for training runs and evaluation results (curves, trajectories, comparison), without an agent")
    .requiredOption("--runs <dir>", "folder holding run folders (metrics.jsonl, samples/) and results.jsonl files")
    .option("--port <n>", "port (0 = any free port)", "8080")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--token <secret>", "require 'Authorization: Bearer <secret>' on the data routes (or set SEARCHRL_TOKEN)")
    .action(async (raw: Record<string, unknown>) => {
      const o = parseUiOptions({ ...raw, token: raw.token ?? process.env.SEARCHRL_TOKEN });
      const dir = path.resolve(o.runs);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--runs: ${dir} is not a folder`);
      if (o.host !== "127.0.0.1" && o.host !== "localhost" && o.host !== "::1" && !o.token) {
        process.stderr.write(
          `warning: listening on ${o.host} without --token: anyone who can reach it can read the runs\n`,
        );
      }
      const srv = await startAgentServer({ runsDir: dir, token: o.token ?? null, host: o.host, port: o.port });
      process.stdout.write(`searchrl ui: ${srv.url}/  (runs: ${dir})\n`);
      await waitForShutdown(() => srv.close());
    });
};
