/**
 * `searchrl quickstart [--out DIR] [--seed N] [--preset small|small-entity|tiny|micro] [--config FILE]`: the whole method end to end
 * on this machine (src/quickstart). Re-running with the same --out resumes: finished stages are skipped, an
 * interrupted training stage continues from its checkpoint. Ctrl-C stops after the current step with a checkpoint.
 */
import { Option } from "commander";
import { setMaxListeners } from "node:events";
import path from "node:path";
import { z } from "zod";
import {
  QUICKSTART_PRESET_NAMES,
  QUICKSTART_STAGES,
  runQuickstart,
  type QuickstartStage,
} from "../../quickstart/index.js";
import { readConfigFile } from "../../train/index.js";
import type { RegisterCommands } from "../groups.js";

const Flags = z.object({
  out: z.string().min(1),
  seed: z.coerce.number().int("--seed must be an integer").nonnegative("--seed must be >= 0").optional(),
  preset: z.string().optional(),
  config: z.string().optional(),
  until: z.enum(QUICKSTART_STAGES as unknown as [QuickstartStage, ...QuickstartStage[]]).optional(),
  redo: z.array(z.enum(QUICKSTART_STAGES as unknown as [QuickstartStage, ...QuickstartStage[]])).optional(),
  quiet: z.boolean().optional(),
  json: z.boolean().optional(),
});

export const register: RegisterCommands = (program) => {
  program
    .command("quickstart")
    .description(
      "run R1-Searcher and R1-Searcher++ end to end on a synthetic world with the built-in model: world, index, " +
        "tokenizer, pre-training, RL stages 1 and 2, SFT cold start + RL++, evaluation, report.html",
    )
    .option("--out <dir>", "output folder (re-run with the same folder to resume)", "quickstart")
    .option("--seed <n>", "seed of the world and of every stage (default 1)")
    .addOption(
      new Option(
        "--preset <name>",
        "small (default, the benchmark), small-entity (fame per entity: the previous default), tiny, micro (tests)",
      ).choices(QUICKSTART_PRESET_NAMES),
    )
    .option("--config <file>", "JSON/YAML overrides deep-merged over the preset (see docs/quickstart.md)")
    .addOption(new Option("--until <stage>", "stop after this stage").choices([...QUICKSTART_STAGES]))
    .addOption(
      new Option("--redo <stage...>", "run these stages (and all later ones) again").choices([...QUICKSTART_STAGES]),
    )
    .option("--quiet", "no progress lines (stage lines only)")
    .option("--json", "print results.json's claims and systems as JSON on stdout at the end")
    .action(async (raw: Record<string, unknown>) => {
      const r = Flags.safeParse(raw);
      if (!r.success) throw new Error(r.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; "));
      const o = r.data;
      const overrides = o.config
        ? ((await readConfigFile(path.resolve(o.config))) as Record<string, unknown>)
        : undefined;
      if (
        overrides !== undefined &&
        (typeof overrides !== "object" || overrides === null || Array.isArray(overrides))
      ) {
        throw new Error(`${o.config}: expected an object of quickstart config overrides`);
      }
      const ac = new AbortController();
      // every rollout and evaluation listens to the same signal
      setMaxListeners(0, ac.signal);
      const onSig = (sig: string) => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write(`${sig}: stopping after the current step (run the same command again to resume)\n`);
        ac.abort();
      };
      process.on("SIGINT", onSig);
      process.on("SIGTERM", onSig);
      try {
        const run = await runQuickstart({
          out: o.out,
          seed: o.seed,
          preset: o.preset,
          overrides,
          until: o.until,
          redo: o.redo,
          quiet: o.quiet,
          signal: ac.signal,
        });
        if (o.json && run.results) {
          process.stdout.write(
            JSON.stringify({ claims: run.results.claims, systems: run.results.systems }, null, 2) + "\n",
          );
        } else if (run.results) {
          const c = run.results.claims;
          process.stdout.write(
            `R1-Searcher beats both baselines: ${c.r1BeatsBaselines.pass ? "yes" : "no"} ` +
              `(Cover-EM ${(100 * c.r1BeatsBaselines.r1).toFixed(1)} vs ${(100 * c.r1BeatsBaselines.noSearch).toFixed(1)} no search, ${(100 * c.r1BeatsBaselines.naiveRag).toFixed(1)} naive RAG)\n` +
              `R1-Searcher++ ≥30% fewer retrievals at ≤2 points lower accuracy: ${c.plusFewerRetrievals.pass ? "yes" : "no"} ` +
              `(${c.plusFewerRetrievals.plusRetrievals.toFixed(2)} vs ${c.plusFewerRetrievals.r1Retrievals.toFixed(2)} retrievals, ` +
              `${(100 * c.plusFewerRetrievals.reduction).toFixed(1)}% fewer; Cover-EM ${(100 * c.plusFewerRetrievals.plusCem).toFixed(1)} vs ${(100 * c.plusFewerRetrievals.r1Cem).toFixed(1)})\n` +
              `RL is the teacher (R1-Searcher ≥${c.rlIsTheTeacher.threshold} points above the pre-trained model with the same prompt): ${c.rlIsTheTeacher.pass ? "yes" : "no"} ` +
              `(Cover-EM ${(100 * c.rlIsTheTeacher.r1Cem).toFixed(1)} vs ${(100 * c.rlIsTheTeacher.pretrainedCem).toFixed(1)}, ${c.rlIsTheTeacher.gain >= 0 ? "+" : ""}${c.rlIsTheTeacher.gain.toFixed(1)} points)\n` +
              `report: ${path.join(run.out, "report.html")}\n` +
              `ask the trained agents in the browser: the \`serve agent\` lines of ${path.join(run.out, "configs", "commands.sh")}\n`,
          );
        }
        if (run.stopped) process.exitCode = ac.signal.aborted ? 130 : 0;
      } finally {
        process.off("SIGINT", onSig);
        process.off("SIGTERM", onSig);
      }
    });
};
