/**
 * `searchrl metrics FILE... [--json] [--limit N]`: EM, Cover-EM, F1, precision, recall (and judge accuracy when the
 * records carry `gpt4o_output`) of evaluation-result JSONL files in the upstream format.
 */
import { z } from "zod";
import {
  formatUpstreamMetrics,
  metricsForFile,
  pyRound1,
  UPSTREAM_RECORD_LIMIT,
  type MetricsSummary,
} from "../../metrics/index.js";
import type { RegisterCommands } from "../groups.js";

const OptionsSchema = z.object({
  json: z.boolean().optional(),
  limit: z.coerce.number().int().min(0, "--limit must be >= 0").optional(),
});

function human(file: string, s: MetricsSummary): string {
  const pct = (x: number) => pyRound1(100 * x).padStart(6);
  const lines = [
    `${file}`,
    `  records    ${String(s.count).padStart(6)}`,
    `  EM         ${pct(s.em)}`,
    `  Cover-EM   ${pct(s.cem)}   (ACC_R; ${s.accNum} hits)`,
    `  F1         ${pct(s.f1)}`,
    `  precision  ${pct(s.precision)}`,
    `  recall     ${pct(s.recall)}`,
  ];
  if (s.judge !== null) lines.push(`  judge      ${pct(s.judge)}   (ACC_L; ${s.judged} verdicts, exact "True")`);
  if (s.retrievals !== null) lines.push(`  retrievals ${s.retrievals.toFixed(2).padStart(6)}   (mean per question)`);
  lines.push(`  upstream   ${formatUpstreamMetrics(s)}`);
  return lines.join("\n") + "\n";
}

export const register: RegisterCommands = (program) => {
  program
    .command("metrics")
    .description("answer metrics (EM, Cover-EM, F1, judge accuracy) of evaluation-result JSONL files")
    .argument("<files...>", "result JSONL files with question, answer, pred_ans and optional gpt4o_output")
    .option(
      "--json",
      "print one JSON object per file: file, count, em, cem, f1, precision, recall, judge (fractions; judge null when absent)",
    )
    .option("--limit <n>", `records read per file (0 = all)`, String(UPSTREAM_RECORD_LIMIT))
    .addHelpText(
      "after",
      `\nAs the upstream metric script, only the first ${UPSTREAM_RECORD_LIMIT.toLocaleString("en-US")} records of each file are read (change with --limit).\n` +
        `Scores are printed as percentages rounded to one decimal; --json prints fractions in [0, 1].\n` +
        `Judge accuracy (ACC_L) = share of records with a gpt4o_output whose value is exactly "True".`,
    )
    .action(async (files: string[], rawOpts: unknown) => {
      const parsed = OptionsSchema.safeParse(rawOpts);
      if (!parsed.success) throw new Error(`metrics: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
      const limit = parsed.data.limit ?? UPSTREAM_RECORD_LIMIT;
      for (const file of files) {
        const s = await metricsForFile(file, limit);
        if (s.count === 0) throw new Error(`${file}: no records`);
        if (parsed.data.json) {
          const row = {
            file,
            count: s.count,
            em: s.em,
            cem: s.cem,
            f1: s.f1,
            precision: s.precision,
            recall: s.recall,
            judge: s.judge,
            // searchrl result files also carry the retrieval count; upstream files do not (field left out).
            ...(s.retrievals === null ? {} : { retrievals: s.retrievals }),
          };
          process.stdout.write(JSON.stringify(row) + "\n");
        } else {
          process.stdout.write(human(file, s));
        }
      }
    });
};
