/**
 * Reliability figures (docs/reliability.md): fuzzed trajectories through every parser and reward preset, bad HTTP
 * input on every server route, load on the retrieval and reward servers (client in its own process), the agent server
 * under bursts, kill -9 at random moments during index build / train / sft / eval / quickstart, forged tags in
 * retrieved passages, and planted API keys. Prints one table (markdown) with the target and the measured figure.
 *
 *   npm run bench:reliability                  (SEARCHRL_BENCH_QUICK=1: smaller counts)
 *   npm run bench:reliability -- fuzz load     (only some sections: fuzz, input, load, agent, forged, secrets, kill,
 *                                               or one kill -9 job: kill:index, kill:eval, kill:train, kill:sft,
 *                                               kill:quickstart)
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { QUICK, type Row } from "./reliability/common.js";
import { runFuzz } from "./reliability/fuzz.js";
import { agentBurstSection, badInputSection, loadSection, serverFixture } from "./reliability/servers.js";
import { forgedSection } from "./reliability/forged.js";
import { plantKeys, secretsScan, secretsSection } from "./reliability/secrets.js";
import { killSection } from "./reliability/kill.js";

const ALL = ["fuzz", "input", "load", "agent", "forged", "secrets", "kill"] as const;
const args = process.argv.slice(2);
// kill:JOB runs one kill -9 job (index, eval, train, sft, quickstart)
const killJobs = args.filter((a) => a.startsWith("kill:")).map((a) => a.slice(5));
const wanted = new Set([
  ...args.filter((a) => (ALL as readonly string[]).includes(a)),
  ...(killJobs.length ? ["kill"] : []),
]);
const run = (s: (typeof ALL)[number]) => wanted.size === 0 || wanted.has(s);

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-reliability-"));
  const rows: Row[] = [];
  const t0 = Date.now();
  const say = (s: string) => process.stderr.write(`[reliability ${((Date.now() - t0) / 1000).toFixed(0)} s] ${s}\n`);
  // planted API keys in every child process of every section; scanned for at the end
  if (run("secrets")) plantKeys();
  try {
    if (run("fuzz")) {
      const n = QUICK ? 10_000 : 100_000;
      say(`fuzz: ${n} trajectories`);
      const f = runFuzz(n);
      rows.push({
        figure: `fuzz: ${f.trajectories} random/malformed trajectories × 3 protocols (parse, incremental parse) × 4 reward presets (response and full-text items)`,
        target: "0 crashes, every reward inside the preset's range",
        measured: `${f.crashes} crashes, ${f.outOfRange} rewards out of range (${f.parses} parses, ${f.rewards} rewards, ${(f.ms / 1000).toFixed(0)} s)`,
        met: f.crashes === 0 && f.outOfRange === 0,
        ...(f.examples.length ? { note: f.examples.join("; ") } : {}),
      });
    }
    const needServers = run("input") || run("load") || run("agent") || run("forged") || run("secrets");
    const fx = needServers ? await serverFixture(dir) : null;
    try {
      if (fx && run("input")) {
        say("bad HTTP input");
        rows.push(...(await badInputSection(fx)));
      }
      if (fx && run("load")) {
        say("load");
        rows.push(...(await loadSection(fx)));
      }
      if (fx && run("agent")) {
        say("agent server bursts");
        rows.push(...(await agentBurstSection(fx)));
      }
      if (fx && run("forged")) {
        say("forged tags");
        rows.push(...(await forgedSection(fx)));
      }
      if (fx && run("secrets")) {
        say("secrets");
        rows.push(...(await secretsSection(fx)));
      }
    } finally {
      await fx?.retriever.close();
    }
    if (run("kill")) {
      say("kill -9 loops");
      rows.push(...(await killSection(dir, say, killJobs)));
    }
    if (run("secrets")) {
      say("secrets: scanning every output");
      rows.push(await secretsScan(dir));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [
    `searchrl reliability (${QUICK ? "quick" : "full"} run, ${os.cpus().length} CPUs, node ${process.version}, ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    "",
    "| figure | target | measured | met |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| ${esc(r.figure)} | ${esc(r.target)} | ${esc(r.measured)} | ${r.met ? "yes" : "**no**"} |`),
  ];
  const notes = rows.filter((r) => r.note);
  if (notes.length) lines.push("", ...notes.map((r) => `- ${r.figure}: ${r.note}`));
  const missed = rows.filter((r) => !r.met);
  lines.push(
    "",
    missed.length === 0
      ? `All ${rows.length} figures met.`
      : `${missed.length} of ${rows.length} figures missed: ${missed.map((r) => r.figure).join("; ")}.`,
  );
  process.stdout.write(lines.join("\n") + "\n");
  if (missed.length > 0) process.exitCode = 1;
}

await main();
