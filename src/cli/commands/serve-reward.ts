/** `searchrl serve reward`: the OpenRLHF-compatible remote reward server (`POST /get_reward`, `GET /health`). */
import { z } from "zod";
import { loadGoldTable, REWARD_PRESET_NAMES, type GoldLookup } from "../../reward/index.js";
import { startRewardServer } from "../../server/reward.js";
import type { RegisterCommands } from "../groups.js";

const num = (what: string) =>
  z.coerce.number({ error: `${what} must be a number` }).refine(Number.isFinite, `${what} must be finite`);

const OptionsSchema = z.object({
  preset: z.enum(REWARD_PRESET_NAMES as unknown as [string, ...string[]], {
    error: `--preset must be one of ${REWARD_PRESET_NAMES.join(", ")}`,
  }),
  data: z.string().optional(),
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1),
  token: z.string().min(1, "--token must not be empty").optional(),
  log: z.string().optional(),
  groupSize: z.coerce.number().int().min(1, "--group-size must be >= 1").optional(),
  groupTimeout: num("--group-timeout").pipe(z.number().positive("--group-timeout must be > 0")),
  compatPairs: z.boolean().optional(),
  unknownReward: num("--unknown-reward").optional(),
  bodyLimitMb: num("--body-limit-mb").pipe(z.number().positive()),
  eos: z.string().optional(),
  pad: z.string().optional(),
  split: z.enum(["qwen-base", "llama3.1-chat", "qwen2.5-chat"]).optional(),
  eta: num("--eta").pipe(z.number().nonnegative()).optional(),
  groupVariant: z.enum(["two-variance", "std"]).optional(),
});

export const register: RegisterCommands = (_program, groups) => {
  groups.serve
    .command("reward")
    .description("remote reward server for OpenRLHF (POST /get_reward, GET /health)")
    .requiredOption("--preset <name>", `reward preset: ${REWARD_PRESET_NAMES.join(", ")}`)
    .option(
      "--data <file>",
      "gold answers: JSONL rows with question and answer (looked up by the upstream normalized question)",
    )
    .option("--port <n>", "port", "1278")
    .option("--host <host>", "host (loopback by default; see --token before exposing it)", "127.0.0.1")
    .option(
      "--token <secret>",
      "require 'Authorization: Bearer <secret>' on every route but /health (or set SEARCHRL_REWARD_TOKEN; default none: OpenRLHF clients send no header)",
    )
    .option("--log <file>", "append one JSON line per scored query: {question, solution, score, finished}")
    .option(
      "--group-size <n>",
      "group mode (r1-searcher-plus): hold a question's samples until N arrived, then score them together",
    )
    .option(
      "--group-timeout <sec>",
      "group mode: score a partial group after this many seconds (a warning is printed)",
      "60",
    )
    .option("--compat-pairs", "return [reward, 0] pairs like the upstream Llama stage-1 server (old OpenRLHF fork)")
    .option("--unknown-reward <x>", "reward for questions missing from --data instead of a 422 error")
    .option("--body-limit-mb <mb>", "largest accepted request body in MiB (larger → 413)", "16")
    .option("--eos <s>", "EOS string stripped/appended before the prompt split (default: the preset's)")
    .option("--pad <s>", "pad string stripped before the prompt split (default: the preset's)")
    .option("--split <style>", "prompt split markers: qwen-base, llama3.1-chat, qwen2.5-chat (default: the preset's)")
    .option("--eta <x>", "r1-searcher-plus: group reward clip η (default 2)")
    .option("--group-variant <v>", "r1-searcher-plus: two-variance = min(2σ², η) (default) or std = min(σ, η)")
    .addHelpText(
      "after",
      '\nRequests: {"query": [full decoded text, ...], "prompts"?: [...], "labels"?: [...]} → {"rewards", "scores", "extra_logs"}.\n' +
        'Gold answers come from "labels" when sent (non-empty), otherwise from --data. Unknown questions get a 422 JSON error naming them.',
    )
    .action(async (raw: unknown) => {
      const parsed = OptionsSchema.safeParse(raw);
      if (!parsed.success)
        throw new Error(
          `serve reward: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
        );
      const o = parsed.data;
      if (!["127.0.0.1", "localhost", "::1"].includes(o.host) && !(o.token ?? process.env.SEARCHRL_REWARD_TOKEN))
        process.stderr.write(`warning: listening on ${o.host} without --token: anyone who can reach it can use it\n`);
      let gold: GoldLookup | undefined;
      if (o.data) gold = await loadGoldTable(o.data);
      else process.stderr.write("[reward] no --data: gold answers must come from request labels\n");
      const server = await startRewardServer({
        preset: o.preset,
        gold,
        logFile: o.log,
        groupSize: o.groupSize,
        groupTimeoutMs: o.groupTimeout * 1000,
        compatPairs: o.compatPairs,
        unknownReward: o.unknownReward,
        bodyLimit: Math.round(o.bodyLimitMb * 1024 * 1024),
        score: {
          eos: o.eos,
          pad: o.pad,
          split: o.split,
          plus: {
            ...(o.eta !== undefined ? { eta: o.eta } : {}),
            ...(o.groupVariant ? { groupVariant: o.groupVariant } : {}),
          },
        },
        host: o.host,
        port: o.port,
        token: o.token ?? process.env.SEARCHRL_REWARD_TOKEN ?? null,
      });
      process.stdout.write(
        `reward server: preset ${o.preset}, ${gold?.size ?? 0} questions${o.groupSize ? `, group size ${o.groupSize}` : ""}, listening on ${server.url}/get_reward\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void server.close().then(resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
};
