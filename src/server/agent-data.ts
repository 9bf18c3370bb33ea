/**
 * JSON routes over a folder of training runs and evaluation results (docs/run-format.md), read by the web UI:
 *
 *   GET /api/runs                              runs found under the folder, with their latest metrics
 *   GET /api/runs/:name                        one run: summary, config, checkpoints, sample steps
 *   GET /api/runs/:name/metrics[?since=STEP]   metrics lines (only steps after `since`)
 *   GET /api/runs/:name/samples                the steps that have sampled trajectories
 *   GET /api/runs/:name/samples/:step          sampled trajectories of a step (filters below)
 *   GET /api/results                           evaluation result files found under the folder, with their summary
 *   GET /api/results/:name                     result rows (filters below)
 *   GET /api/compare?a=SOURCE&b=SOURCE         two sources joined on the question (filters below + `only=differ`)
 *
 * Filters: `correct=true|false`, `reward_min`, `reward_max`, `retrievals_min`, `retrievals_max`, `dataset`, `q` (text in
 * the question), `offset`, `limit`. A SOURCE is `run:NAME@STEP` or `results:NAME`.
 *
 * Names are never joined onto paths: the folder is walked (symbolic links are not followed) and a name must be one the
 * walk found; every file read is checked to resolve inside the folder.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { getProtocol, PROTOCOL_NAMES } from "../protocol/index.js";
import type { ResponseProtocol } from "../protocol/types.js";
import { HttpStatusError, validate } from "./common.js";
import {
  agentRecordFromResult,
  agentRecordFromSample,
  type AgentTraceRecord,
  type ProtocolResolver,
} from "./agent-views.js";

export interface AgentDataOptions {
  runsDir: string;
  /** Protocol lookup for splitting recorded responses (default: the protocol registry). */
  resolveProtocol?: ProtocolResolver;
  /** Protocols tried, in order, on result rows that do not name theirs (default: every registered protocol). */
  protocols?: readonly ResponseProtocol[];
  /** How deep below `runsDir` to look for runs and results (default 4). */
  maxDepth?: number;
}

export interface AgentRunSummary {
  name: string;
  steps: number;
  last_step: number | null;
  stage: string | null;
  updated: number;
  /** The last metrics line. */
  last: Record<string, unknown> | null;
  sample_steps: number;
  checkpoints: string[];
  latest_checkpoint: string | null;
}

export interface AgentResultsSummary {
  name: string;
  updated: number;
  size: number;
  summary: Record<string, unknown> | null;
}

interface Inventory {
  runs: Map<string, string>;
  results: Map<string, string>;
  at: number;
}

const SKIP_DIRS = new Set(["node_modules", "checkpoints", "samples", ".git"]);
const RESULTS_FILE = /(^|[.\-_])results\.jsonl$/;
const STEP_FILE = /^step-(\d+)\.jsonl$/;
const NAME_RE = /^[^\0]{1,400}$/;

function posix(rel: string): string {
  return rel.split(path.sep).join("/");
}

/** Default protocol lookup: the built-in protocols of src/protocol. */
function registryResolver(): { resolve: ProtocolResolver; all: ResponseProtocol[] } {
  const resolve: ProtocolResolver = (name) => {
    try {
      return getProtocol(name);
    } catch {
      return null;
    }
  };
  return { resolve, all: PROTOCOL_NAMES.map((n) => getProtocol(n)) };
}

export class AgentRunsStore {
  readonly root: string;
  private rootReal: string | null = null;
  private inventory: Inventory | null = null;
  private readonly resolve: ProtocolResolver;
  private readonly protocols: readonly ResponseProtocol[];
  private readonly maxDepth: number;
  private readonly cache = new Map<string, { key: string; records: AgentTraceRecord[] }>();

  constructor(opts: AgentDataOptions) {
    this.root = path.resolve(opts.runsDir);
    const reg = registryResolver();
    this.resolve = opts.resolveProtocol ?? reg.resolve;
    this.protocols = opts.protocols ?? reg.all;
    this.maxDepth = opts.maxDepth ?? 4;
  }

  private async realRoot(): Promise<string> {
    if (this.rootReal === null) {
      try {
        this.rootReal = await fsp.realpath(this.root);
      } catch {
        throw new HttpStatusError(404, `runs folder not found: ${this.root}`, undefined, "runs_dir_missing");
      }
    }
    return this.rootReal;
  }

  /** Resolve a file below the root; null when it does not exist or resolves outside the root (symbolic links). */
  private async inside(p: string): Promise<string | null> {
    const root = await this.realRoot();
    let real: string;
    try {
      real = await fsp.realpath(p);
    } catch {
      return null;
    }
    return real === root || real.startsWith(root + path.sep) ? real : null;
  }

  /** Walk the folder (cached for a second): run folders hold metrics.jsonl or samples/; results are *results.jsonl. */
  async scan(): Promise<Inventory> {
    if (this.inventory && Date.now() - this.inventory.at < 1000) return this.inventory;
    const root = await this.realRoot();
    const runs = new Map<string, string>();
    const results = new Map<string, string>();
    const walk = async (dir: string, depth: number) => {
      let entries;
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      const names = new Set(entries.map((e) => e.name));
      const rel = posix(path.relative(root, dir));
      if (names.has("metrics.jsonl") || entries.some((e) => e.name === "samples" && e.isDirectory())) {
        runs.set(rel === "" ? path.basename(root) : rel, dir);
      }
      for (const e of entries) {
        if (e.isFile() && RESULTS_FILE.test(e.name))
          results.set(posix(path.relative(root, path.join(dir, e.name))), path.join(dir, e.name));
      }
      if (depth >= this.maxDepth) return;
      for (const e of entries) {
        if (e.isDirectory() && !e.name.startsWith(".") && !SKIP_DIRS.has(e.name))
          await walk(path.join(dir, e.name), depth + 1);
      }
    };
    await walk(root, 0);
    this.inventory = { runs, results, at: Date.now() };
    return this.inventory;
  }

  private checkName(name: string, what: string): void {
    if (!NAME_RE.test(name) || name.split("/").some((p) => p === ".." || p === "")) {
      throw new HttpStatusError(
        400,
        `invalid ${what} name: ${JSON.stringify(name.slice(0, 100))}`,
        undefined,
        "invalid_name",
      );
    }
  }

  async runDir(name: string): Promise<string> {
    this.checkName(name, "run");
    const dir = (await this.scan()).runs.get(name);
    if (!dir)
      throw new HttpStatusError(
        404,
        `no run named ${JSON.stringify(name)} under the runs folder`,
        undefined,
        "run_not_found",
      );
    return dir;
  }

  async resultsFile(name: string): Promise<string> {
    this.checkName(name, "results");
    const file = (await this.scan()).results.get(name);
    if (!file)
      throw new HttpStatusError(
        404,
        `no results file named ${JSON.stringify(name)} under the runs folder`,
        undefined,
        "results_not_found",
      );
    return file;
  }

  private async readText(file: string): Promise<string | null> {
    const real = await this.inside(file);
    if (!real) return null;
    try {
      return await fsp.readFile(real, "utf8");
    } catch {
      return null;
    }
  }

  private async readJsonFile(file: string): Promise<Record<string, unknown> | null> {
    const t = await this.readText(file);
    if (t === null) return null;
    try {
      const v = JSON.parse(t);
      return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }

  /** Metrics lines with a numeric `step` (a half-written last line or a malformed one is skipped and counted). */
  async metrics(name: string, since?: number): Promise<{ rows: Record<string, unknown>[]; skipped: number }> {
    const dir = await this.runDir(name);
    const text = (await this.readText(path.join(dir, "metrics.jsonl"))) ?? "";
    const rows: Record<string, unknown>[] = [];
    let skipped = 0;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      try {
        const v = JSON.parse(line) as Record<string, unknown>;
        if (typeof v !== "object" || v === null || typeof v.step !== "number") {
          skipped++;
          continue;
        }
        if (since !== undefined && (v.step as number) <= since) continue;
        rows.push(v);
      } catch {
        skipped++;
      }
    }
    return { rows, skipped };
  }

  async sampleSteps(name: string): Promise<Array<{ step: number; file: string; size: number }>> {
    const dir = await this.runDir(name);
    const sdir = await this.inside(path.join(dir, "samples"));
    if (!sdir) return [];
    const out: Array<{ step: number; file: string; size: number }> = [];
    for (const e of await fsp.readdir(sdir, { withFileTypes: true })) {
      const m = STEP_FILE.exec(e.name);
      if (!m || !e.isFile()) continue;
      const st = await fsp.stat(path.join(sdir, e.name));
      out.push({ step: Number(m[1]), file: `samples/${e.name}`, size: st.size });
    }
    return out.sort((a, b) => a.step - b.step);
  }

  async checkpoints(dir: string): Promise<{ list: string[]; latest: string | null }> {
    const cdir = await this.inside(path.join(dir, "checkpoints"));
    if (!cdir) return { list: [], latest: null };
    const list: string[] = [];
    for (const e of await fsp.readdir(cdir, { withFileTypes: true }))
      if (e.isDirectory() && /^step-\d+$/.test(e.name)) list.push(e.name);
    list.sort();
    const latest = ((await this.readText(path.join(cdir, "latest"))) ?? "").trim() || null;
    return { list, latest };
  }

  async runSummary(name: string): Promise<AgentRunSummary> {
    const dir = await this.runDir(name);
    const { rows } = await this.metrics(name);
    const last = rows.length > 0 ? rows[rows.length - 1] : null;
    const ck = await this.checkpoints(dir);
    let updated = 0;
    for (const f of ["metrics.jsonl", "samples", "checkpoints"]) {
      try {
        updated = Math.max(updated, (await fsp.stat(path.join(dir, f))).mtimeMs);
      } catch {
        /* absent */
      }
    }
    return {
      name,
      steps: rows.length,
      last_step: last ? (last.step as number) : null,
      stage: last && typeof last.stage === "string" ? last.stage : null,
      updated: Math.round(updated),
      last,
      sample_steps: (await this.sampleSteps(name)).length,
      checkpoints: ck.list,
      latest_checkpoint: ck.latest,
    };
  }

  async runs(): Promise<AgentRunSummary[]> {
    const inv = await this.scan();
    const out: AgentRunSummary[] = [];
    for (const name of [...inv.runs.keys()].sort()) out.push(await this.runSummary(name));
    return out;
  }

  async runDetail(name: string) {
    const dir = await this.runDir(name);
    return {
      ...(await this.runSummary(name)),
      config: await this.readJsonFile(path.join(dir, "config.json")),
      samples: await this.sampleSteps(name),
    };
  }

  private summaryFileOf(file: string): string {
    return file.replace(/\.jsonl$/, ".summary.json");
  }

  async results(): Promise<AgentResultsSummary[]> {
    const inv = await this.scan();
    const out: AgentResultsSummary[] = [];
    for (const [name, file] of [...inv.results.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      let st;
      try {
        st = await fsp.stat(file);
      } catch {
        continue;
      }
      out.push({
        name,
        updated: Math.round(st.mtimeMs),
        size: st.size,
        summary: await this.readJsonFile(this.summaryFileOf(file)),
      });
    }
    return out;
  }

  /** Parse a JSONL file into trace records (cached while its size and mtime stay the same). */
  private async records(file: string, kind: "sample" | "result"): Promise<AgentTraceRecord[]> {
    const real = await this.inside(file);
    if (!real)
      throw new HttpStatusError(
        404,
        `file not found: ${posix(path.relative(this.root, file))}`,
        undefined,
        "not_found",
      );
    const st = await fsp.stat(real);
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(real);
    if (hit && hit.key === key) return hit.records;
    const text = await fsp.readFile(real, "utf8");
    const records: AgentTraceRecord[] = [];
    let i = 0;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        i++;
        continue;
      }
      const rec =
        kind === "sample"
          ? agentRecordFromSample(row, i, this.resolve)
          : agentRecordFromResult(row, i, this.resolve, this.protocols);
      if (rec) records.push(rec);
      i++;
    }
    this.cache.set(real, { key, records });
    if (this.cache.size > 16) this.cache.delete(this.cache.keys().next().value as string);
    return records;
  }

  async sampleRecords(name: string, step: number): Promise<AgentTraceRecord[]> {
    const steps = await this.sampleSteps(name);
    const s = steps.find((x) => x.step === step);
    if (!s)
      throw new HttpStatusError(
        404,
        `run ${JSON.stringify(name)} has no samples for step ${step}`,
        undefined,
        "step_not_found",
      );
    return this.records(path.join(await this.runDir(name), s.file), "sample");
  }

  async resultRecords(name: string): Promise<AgentTraceRecord[]> {
    return this.records(await this.resultsFile(name), "result");
  }

  /** `run:NAME@STEP` or `results:NAME`. */
  async source(spec: string): Promise<AgentTraceRecord[]> {
    const m = /^run:(.+)@(\d+)$/.exec(spec);
    if (m) return this.sampleRecords(m[1], Number(m[2]));
    if (spec.startsWith("results:")) return this.resultRecords(spec.slice("results:".length));
    throw new HttpStatusError(
      400,
      `invalid source ${JSON.stringify(spec.slice(0, 100))}: use run:NAME@STEP or results:NAME`,
      undefined,
      "invalid_source",
    );
  }
}

const boolParam = z.enum(["true", "false"]).transform((v) => v === "true");
const numParam = z.coerce.number().refine(Number.isFinite, "must be a number");
const intParam = z.coerce.number().int().min(0);

const FilterQuery = z.object({
  correct: boolParam.optional(),
  reward_min: numParam.optional(),
  reward_max: numParam.optional(),
  retrievals_min: intParam.optional(),
  retrievals_max: intParam.optional(),
  dataset: z.string().max(200).optional(),
  q: z.string().max(500).optional(),
  offset: intParam.default(0),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
type FilterQuery = z.infer<typeof FilterQuery>;

const CompareQuery = FilterQuery.extend({
  a: z.string().min(1).max(500),
  b: z.string().min(1).max(500),
  only: z.enum(["all", "differ"]).default("all"),
});

export function agentRecordMatches(r: AgentTraceRecord, f: FilterQuery): boolean {
  if (f.correct !== undefined && r.correct !== f.correct) return false;
  if (f.reward_min !== undefined && !(r.reward !== null && r.reward >= f.reward_min)) return false;
  if (f.reward_max !== undefined && !(r.reward !== null && r.reward <= f.reward_max)) return false;
  if (f.retrievals_min !== undefined && r.retrievals < f.retrievals_min) return false;
  if (f.retrievals_max !== undefined && r.retrievals > f.retrievals_max) return false;
  if (f.dataset !== undefined && f.dataset !== "" && r.dataset !== f.dataset) return false;
  if (f.q !== undefined && f.q !== "" && !r.question.toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}

function facets(records: AgentTraceRecord[]) {
  const datasets = new Set<string>();
  let rmin = Infinity;
  let rmax = -Infinity;
  let retrMax = 0;
  for (const r of records) {
    if (r.dataset) datasets.add(r.dataset);
    if (r.reward !== null) {
      rmin = Math.min(rmin, r.reward);
      rmax = Math.max(rmax, r.reward);
    }
    retrMax = Math.max(retrMax, r.retrievals);
  }
  return {
    datasets: [...datasets].sort(),
    reward_range: Number.isFinite(rmin) ? [rmin, rmax] : null,
    retrievals_max: retrMax,
  };
}

function page(records: AgentTraceRecord[], f: FilterQuery) {
  const matched = records.filter((r) => agentRecordMatches(r, f));
  return {
    total: records.length,
    matched: matched.length,
    offset: f.offset,
    items: matched.slice(f.offset, f.offset + f.limit),
    facets: facets(records),
  };
}

function normQuestion(q: string): string {
  return q.trim().replace(/\s+/g, " ").toLowerCase();
}

/** Join two record lists on the question (first occurrence of each question on each side). */
export function agentCompareRecords(
  a: AgentTraceRecord[],
  b: AgentTraceRecord[],
): Array<{ question: string; a: AgentTraceRecord; b: AgentTraceRecord }> {
  const bq = new Map<string, AgentTraceRecord>();
  for (const r of b) {
    const k = normQuestion(r.question);
    if (!bq.has(k)) bq.set(k, r);
  }
  const seen = new Set<string>();
  const out: Array<{ question: string; a: AgentTraceRecord; b: AgentTraceRecord }> = [];
  for (const r of a) {
    const k = normQuestion(r.question);
    if (seen.has(k)) continue;
    seen.add(k);
    const other = bq.get(k);
    if (other) out.push({ question: r.question, a: r, b: other });
  }
  return out;
}

const NameParams = z.object({ name: z.string().min(1) });
const StepParams = NameParams.extend({ step: z.coerce.number().int().min(0) });

/** Register the data routes on a server (the agent server and `searchrl ui`). */
export function registerAgentDataRoutes(app: FastifyInstance, opts: AgentDataOptions): AgentRunsStore {
  const store = new AgentRunsStore(opts);
  app.get("/api/runs", async () => ({ root: store.root, runs: await store.runs() }));
  app.get("/api/runs/:name", async (req) => {
    const { name } = validate(NameParams, req.params, "path");
    return store.runDetail(name);
  });
  app.get("/api/runs/:name/metrics", async (req) => {
    const { name } = validate(NameParams, req.params, "path");
    const { since } = validate(z.object({ since: z.coerce.number().int().optional() }), req.query, "query");
    const { rows, skipped } = await store.metrics(name, since);
    return { name, rows, skipped };
  });
  app.get("/api/runs/:name/samples", async (req) => {
    const { name } = validate(NameParams, req.params, "path");
    return { name, steps: await store.sampleSteps(name) };
  });
  app.get("/api/runs/:name/samples/:step", async (req) => {
    const { name, step } = validate(StepParams, req.params, "path");
    const f = validate(FilterQuery, req.query, "query");
    return { source: `run:${name}@${step}`, ...page(await store.sampleRecords(name, step), f) };
  });
  app.get("/api/results", async () => ({ root: store.root, results: await store.results() }));
  app.get("/api/results/:name", async (req) => {
    const { name } = validate(NameParams, req.params, "path");
    const f = validate(FilterQuery, req.query, "query");
    return { source: `results:${name}`, ...page(await store.resultRecords(name), f) };
  });
  app.get("/api/trajectories", async (req) => {
    const f = validate(FilterQuery.extend({ source: z.string().min(1).max(500) }), req.query, "query");
    return { source: f.source, ...page(await store.source(f.source), f) };
  });
  app.get("/api/compare", async (req) => {
    const f = validate(CompareQuery, req.query, "query");
    const pairs = agentCompareRecords(await store.source(f.a), await store.source(f.b));
    const matched = pairs.filter((p) => {
      if (f.only === "differ" && p.a.correct === p.b.correct && p.a.answer === p.b.answer) return false;
      return agentRecordMatches(p.a, f) || agentRecordMatches(p.b, f);
    });
    return {
      a: f.a,
      b: f.b,
      total: pairs.length,
      matched: matched.length,
      offset: f.offset,
      items: matched.slice(f.offset, f.offset + f.limit),
    };
  });
  return store;
}
