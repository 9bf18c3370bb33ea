/**
 * Remote reward server implementing OpenRLHF's contract (ecosystem-contracts.md §3): `POST /get_reward` with
 * `{"query": [...], "prompts"?: [...], "labels"?: [...]}` → `{"rewards": [...], "scores": [...], "extra_logs": {...}}`.
 * Thin: validation + `scoreBatch` from src/reward. Unknown questions are a 422 JSON error naming them (never a 500).
 *
 * Group mode (`groupSize` N, for group-reward presets): the responses of one question are held until N samples have
 * arrived (over any number of requests), then scored together; after `groupTimeoutMs` a partial group is scored and a
 * warning is written. A client must therefore send the N samples of a question concurrently (OpenRLHF does) or in one
 * request.
 */
import { promises as fsp } from "node:fs";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  getRewardPreset,
  resolveRewardItem,
  scoreBatch,
  UnknownQuestionError,
  type GoldLookup,
  type RewardItem,
  type RewardPresetName,
  type RewardResult,
  type ScoreBatchOptions,
} from "../reward/index.js";
import { createServer, HttpStatusError, listen, requireBearerToken, validate } from "./common.js";

export interface RewardServerOptions {
  preset: RewardPresetName | string;
  /** Gold answers for requests without `labels`. */
  gold?: GoldLookup;
  /** Append one JSON line per scored query: `{question, solution, score, finished}` (upstream log format). */
  logFile?: string;
  /** Group mode: hold the samples of a question until this many arrived (group-reward presets only). */
  groupSize?: number;
  /** Group mode: score a partial group after this long (default 60 s) and warn. */
  groupTimeoutMs?: number;
  /** Return `[reward, 0]` pairs in `rewards` (the upstream Llama stage-1 server's shape). */
  compatPairs?: boolean;
  /** Reward for unknown questions instead of a 422 error. */
  unknownReward?: number;
  /** Maximum request body in bytes (default 16 MiB; larger → 413). */
  bodyLimit?: number;
  /** Passed to `scoreBatch` (split markers, EOS/pad, R1-Searcher++ options). */
  score?: Omit<ScoreBatchOptions, "gold" | "unknownReward">;
  /** Warnings (partial groups, log failures); default: stderr. */
  onWarning?: (message: string) => void;
  /** Request logging to stderr. */
  logger?: boolean;
  /** Require `Authorization: Bearer TOKEN` on every route but `/health` (default none: OpenRLHF sends no header). */
  token?: string | null;
}

const LabelSchema = z.union([z.string(), z.array(z.string()), z.boolean(), z.null()]);
const RewardRequestSchema = z
  .object({
    query: z.array(z.string()),
    prompts: z.array(z.string()).nullable().optional(),
    labels: z.array(LabelSchema).nullable().optional(),
  })
  .loose();

export type RewardRequest = z.infer<typeof RewardRequestSchema>;

export interface RewardResponse {
  rewards: Array<number | [number, number]>;
  scores: number[];
  extra_logs: { correct: number[]; format_ok: number[]; retrievals: number[] };
}

interface Waiter {
  item: RewardItem;
  resolve: (r: RewardResult) => void;
  reject: (e: unknown) => void;
}

interface PendingGroup {
  waiters: Waiter[];
  timer: NodeJS.Timeout;
  started: number;
}

/** Serialized JSONL appends (one line per scored query). */
class LogWriter {
  private chain: Promise<void> = Promise.resolve();
  private fh: fsp.FileHandle | null = null;
  constructor(
    private readonly file: string,
    private readonly warn: (m: string) => void,
  ) {}
  write(lines: string): Promise<void> {
    this.chain = this.chain.then(async () => {
      try {
        this.fh ??= await fsp.open(this.file, "a");
        await this.fh.write(lines);
      } catch (err) {
        this.warn(`reward log ${this.file}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    return this.chain;
  }
  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = null;
  }
}

/** Build the reward server (routes registered, not listening). */
export function createRewardServer(opts: RewardServerOptions): FastifyInstance {
  const preset = getRewardPreset(opts.preset);
  if (opts.groupSize !== undefined) {
    if (!Number.isInteger(opts.groupSize) || opts.groupSize < 1)
      throw new Error(`groupSize must be a positive integer, got ${opts.groupSize}`);
    if (!preset.usesGroups)
      throw new Error(`groupSize applies to group-reward presets only (${preset.name} scores each sample alone)`);
  }
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`[reward] warning: ${m}\n`));
  const scoreOpts: ScoreBatchOptions = { ...(opts.score ?? {}), gold: opts.gold, unknownReward: opts.unknownReward };
  const log = opts.logFile ? new LogWriter(opts.logFile, warn) : null;
  const groupSize = opts.groupSize ?? 0;
  const groupTimeoutMs = opts.groupTimeoutMs ?? 60_000;
  const pending = new Map<string, PendingGroup>();

  const app = createServer({ bodyLimit: opts.bodyLimit, logger: opts.logger });
  requireBearerToken(app, opts.token);

  function score(items: RewardItem[]): RewardResult[] {
    try {
      return scoreBatch(preset.name, items, scoreOpts);
    } catch (err) {
      if (err instanceof UnknownQuestionError)
        throw new HttpStatusError(422, err.message, { questions: err.questions }, "unknown_question");
      throw err;
    }
  }

  async function writeLog(results: RewardResult[]): Promise<void> {
    if (!log || results.length === 0) return;
    let s = "";
    for (const r of results)
      s +=
        JSON.stringify({
          question: r.question,
          solution: r.solution,
          score: r.reward,
          finished: r.finished ? "1" : "0",
        }) + "\n";
    await log.write(s);
  }

  function flush(key: string, reason: "full" | "timeout" | "close"): void {
    const g = pending.get(key);
    if (!g) return;
    pending.delete(key);
    clearTimeout(g.timer);
    if (reason !== "full") {
      warn(
        `group ${JSON.stringify(key.slice(0, 120))}: scoring ${g.waiters.length}/${groupSize} samples after ${reason === "timeout" ? `${groupTimeoutMs} ms` : "server close"}`,
      );
    }
    let results: RewardResult[];
    try {
      results = scoreBatch(
        preset.name,
        g.waiters.map((w) => ({ ...w.item, group: key })),
        scoreOpts,
      );
    } catch (err) {
      for (const w of g.waiters) w.reject(err);
      return;
    }
    void writeLog(results).then(() => g.waiters.forEach((w, i) => w.resolve(results[i])));
  }

  function enqueue(key: string, item: RewardItem): Promise<RewardResult> {
    return new Promise<RewardResult>((resolve, reject) => {
      let g = pending.get(key);
      if (!g) {
        g = { waiters: [], timer: setTimeout(() => flush(key, "timeout"), groupTimeoutMs), started: Date.now() };
        g.timer.unref?.();
        pending.set(key, g);
      }
      g.waiters.push({ item, resolve, reject });
      if (g.waiters.length >= groupSize) flush(key, "full");
    });
  }

  app.post("/get_reward", async (req): Promise<RewardResponse> => {
    const body = validate(RewardRequestSchema, req.body);
    const n = body.query.length;
    if (body.prompts && body.prompts.length !== n)
      throw new HttpStatusError(
        400,
        `invalid body: prompts has ${body.prompts.length} entries, query has ${n}`,
        undefined,
        "invalid_request",
      );
    if (body.labels && body.labels.length !== n)
      throw new HttpStatusError(
        400,
        `invalid body: labels has ${body.labels.length} entries, query has ${n}`,
        undefined,
        "invalid_request",
      );
    const items: RewardItem[] = body.query.map((text, i) => {
      const label = body.labels?.[i];
      const gold =
        label === null || label === undefined || label === ""
          ? undefined
          : label === true
            ? "yes"
            : label === false
              ? "no"
              : label;
      const prompt = body.prompts?.[i];
      return { text, ...(prompt ? { prompt } : {}), ...(gold !== undefined ? { gold } : {}) };
    });

    let results: RewardResult[];
    if (groupSize > 0 && n > 0) {
      const resolved = items.map((it) => resolveRewardItem(preset.name, it, scoreOpts));
      const unknown = resolved.filter((r) => r.gold === undefined).map((r) => r.question);
      if (unknown.length > 0 && opts.unknownReward === undefined) {
        const e = new UnknownQuestionError([...new Set(unknown)]);
        throw new HttpStatusError(422, e.message, { questions: e.questions }, "unknown_question");
      }
      results = await Promise.all(
        items.map(async (it, i) => {
          if (resolved[i].gold !== undefined) return enqueue(resolved[i].group, it);
          const [r] = score([it]); // unknown question scored with unknownReward, never held
          await writeLog([r]);
          return r;
        }),
      );
    } else {
      results = score(items);
      await writeLog(results);
    }
    return {
      rewards: results.map((r) => (opts.compatPairs ? ([r.reward, 0] as [number, number]) : r.reward)),
      scores: results.map((r) => r.score),
      extra_logs: {
        correct: results.map((r) => (r.correct ? 1 : 0)),
        format_ok: results.map((r) => (r.formatOk ? 1 : 0)),
        retrievals: results.map((r) => r.retrievals),
      },
    };
  });

  app.get("/health", async () => ({
    status: "ok",
    preset: preset.name,
    questions: opts.gold?.size ?? 0,
    groupSize: groupSize || null,
    pendingGroups: pending.size,
    pendingSamples: [...pending.values()].reduce((a, g) => a + g.waiters.length, 0),
  }));

  // preClose runs before the server waits for in-flight requests, so held samples are answered (not deadlocked).
  app.addHook("preClose", async () => {
    for (const key of [...pending.keys()]) flush(key, "close");
  });
  app.addHook("onClose", async () => {
    await log?.close();
  });
  return app;
}

export interface RunningRewardServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Create and listen (port 0 = ephemeral). */
export async function startRewardServer(
  opts: RewardServerOptions & { host?: string; port?: number },
): Promise<RunningRewardServer> {
  const app = createRewardServer(opts);
  const url = await listen(app, opts.host ?? "127.0.0.1", opts.port ?? 0);
  return { url, app, close: () => app.close() };
}
