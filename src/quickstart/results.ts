/**
 * results.json of a quickstart run: the evaluation table, the two claims checked on this run's numbers, the training
 * curves of every stage (read back from each run's metrics.jsonl), timings and the data/probe facts the report shows.
 */
import { existsSync, promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { World, WorldQuestionStep } from "../data/world/index.js";
import { sentenceAboutFact, sentenceStatesFact, worldStats } from "../data/world/index.js";
import { getProtocol } from "../protocol/index.js";
import type { ResponseProtocol } from "../protocol/types.js";
import { readJsonlAll } from "../util/jsonl.js";
import type { QuickstartPaths, QuickstartStage, QuickstartState } from "./layout.js";
import { QUICKSTART_SYSTEMS, QUICKSTART_SYSTEM_SPECS, SYSTEM_INFO } from "./layout.js";

export interface SystemResult {
  label: string;
  description: string;
  /** Fractions in [0, 1]. */
  cem: number;
  em: number;
  f1: number;
  retrievals: number;
  count: number;
  /** Cover-EM per question kind (bridge, comparison, compositional). */
  byKind: Record<string, { count: number; cem: number; retrievals: number }>;
  /** Share of answers that finished (an answer tag was closed). */
  finished: number;
  /**
   * How the system handled the facts its test questions need, split by internal (pre-trained) and external facts:
   * did a recall block or a query name the fact's subject? (Systems that search; absent for the baselines.)
   */
  steps?: { internal: StepUse; external: StepUse };
}

/** Shares of the steps of one kind (internal or external facts) that a system recalled / searched. */
export interface StepUse {
  steps: number;
  /** Share of steps with a recall block (`<internal>`) naming the fact's subject. */
  recalled: number;
  /** Of the recalled steps, the share whose recall states the fact's object too. */
  recalledCorrect: number;
  /** Share of steps with a query naming the fact's subject. */
  searched: number;
}

/**
 * Classify each step of a question in a response: recalled (a recall block names the step's subject and its relation's
 * keyword, e.g. "born"; correct when it also states the step's object) and searched (a query names the subject). A
 * step may be both or neither.
 */
export function stepUse(
  protocol: ResponseProtocol,
  response: string,
  steps: Array<Pick<WorldQuestionStep, "subject" | "relation" | "object">>,
): Array<{ recalled: boolean; recalledCorrect: boolean; searched: boolean }> {
  const segs = protocol.parse(response).segments;
  const recalls = segs.filter((x) => x.kind === "internal").map((x) => x.text);
  const queries = segs.filter((x) => x.kind === "query").map((x) => x.text);
  return steps.map((st) => {
    const fact = { subjectText: st.subject, relation: st.relation, objectText: st.object };
    return {
      recalled: recalls.some((t) => sentenceAboutFact(t, fact)),
      recalledCorrect: recalls.some((t) => sentenceStatesFact(t, fact)),
      searched: queries.some((t) => t.includes(st.subject)),
    };
  });
}

function stepUseOf(rows: EvalRow[], protocol: ResponseProtocol, stepsOf: Map<string, WorldQuestionStep[]>) {
  const acc = { internal: [0, 0, 0, 0], external: [0, 0, 0, 0] };
  for (const r of rows) {
    const steps = stepsOf.get(String(r.idx)) ?? [];
    stepUse(protocol, r.gen_text_store, steps).forEach((u, i) => {
      const a = acc[steps[i].internal ? "internal" : "external"];
      a[0]++;
      a[1] += u.recalled ? 1 : 0;
      a[2] += u.recalledCorrect ? 1 : 0;
      a[3] += u.searched ? 1 : 0;
    });
  }
  const use = ([n, rec, ok, srch]: number[]): StepUse => ({
    steps: n,
    recalled: n ? rec / n : 0,
    recalledCorrect: rec ? ok / rec : 0,
    searched: n ? srch / n : 0,
  });
  return { internal: use(acc.internal), external: use(acc.external) };
}

export interface CurvePoint {
  step: number;
  [k: string]: number;
}

export interface QuickstartResults {
  format: "searchrl-quickstart-results";
  version: 1;
  preset: string;
  seed: number;
  created: string;
  machine: { cpus: number; model: string; node: string; loadavg: number[] };
  timings: Record<string, number>;
  totalSeconds: number;
  config: unknown;
  world: {
    passages: number;
    facts: number;
    internalFacts: number;
    questions: Record<string, number>;
    testIdealRetrievals: number;
    testSearchAllRetrievals: number;
    testFactOverlapWithTrain: number;
  };
  stages: Partial<Record<QuickstartStage, Record<string, unknown>>>;
  systems: Record<string, SystemResult>;
  curves: Record<string, CurvePoint[]>;
  examples: Array<{
    system: string;
    question: string;
    answer: string;
    pred: string;
    cem: number;
    retrievals: number;
    text: string;
  }>;
  claims: {
    r1BeatsBaselines: { r1: number; noSearch: number; naiveRag: number; margin: number; pass: boolean };
    plusFewerRetrievals: {
      r1Retrievals: number;
      plusRetrievals: number;
      reduction: number;
      r1Cem: number;
      plusCem: number;
      /** Accuracy points (Cover-EM × 100) lost by R1-Searcher++ against R1-Searcher (negative = gained). */
      accuracyDrop: number;
      pass: boolean;
    };
    /**
     * RL is the teacher: R1-Searcher after its two RL stages against the same pre-trained model with the same search
     * prompt (before any RL). Met when RL adds at least `threshold` Cover-EM points on the held-out questions.
     */
    rlIsTheTeacher: {
      r1Cem: number;
      pretrainedCem: number;
      /** Cover-EM points (× 100) R1-Searcher gains over the pre-trained model with the search prompt. */
      gain: number;
      threshold: number;
      pass: boolean;
    };
  };
}

/** Cover-EM points the two RL stages must add over the pre-trained model with the search prompt (claim 3). */
export const RL_TEACHER_MIN_GAIN = 10;

interface EvalRow {
  idx: number | string;
  question: string;
  answer: string;
  pred_ans: string;
  cem: number;
  em: number;
  f1: number;
  retrievals: number;
  finish: string;
  stop_reason_final: string;
  gen_text_store: string;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

async function readCurve(runDir: string, keys: string[]): Promise<CurvePoint[]> {
  const file = path.join(runDir, "metrics.jsonl");
  if (!existsSync(file)) return [];
  const rows = await readJsonlAll<Record<string, unknown>>(file);
  return rows.map((r) => {
    const pt: CurvePoint = { step: Number(r.step) };
    for (const k of keys) if (typeof r[k] === "number") pt[k] = r[k] as number;
    return pt;
  });
}

export async function buildResults(
  p: QuickstartPaths,
  state: QuickstartState,
  world: World,
): Promise<QuickstartResults> {
  const kindOf = new Map(world.questions.map((q) => [String(q.idx), q.metadata.kind]));
  const stepsOf = new Map(world.questions.map((q) => [String(q.idx), q.metadata.steps]));
  const systems: Record<string, SystemResult> = {};
  const rowsBy: Record<string, EvalRow[]> = {};
  for (const name of QUICKSTART_SYSTEMS) {
    const file = p.evalFile(name);
    if (!existsSync(file)) continue;
    const rows = await readJsonlAll<EvalRow>(file);
    rowsBy[name] = rows;
    const byKind: SystemResult["byKind"] = {};
    for (const kind of [...new Set(rows.map((r) => kindOf.get(String(r.idx)) ?? "?"))].sort()) {
      const rs = rows.filter((r) => (kindOf.get(String(r.idx)) ?? "?") === kind);
      byKind[kind] = {
        count: rs.length,
        cem: mean(rs.map((r) => r.cem)),
        retrievals: mean(rs.map((r) => r.retrievals)),
      };
    }
    systems[name] = {
      ...SYSTEM_INFO[name],
      cem: mean(rows.map((r) => r.cem)),
      em: mean(rows.map((r) => r.em)),
      f1: mean(rows.map((r) => r.f1)),
      retrievals: mean(rows.map((r) => r.retrievals)),
      count: rows.length,
      byKind,
      finished: mean(rows.map((r) => (r.stop_reason_final === "finished" ? 1 : 0))),
    };
    const spec = QUICKSTART_SYSTEM_SPECS[name];
    if (spec.mode === "search") systems[name].steps = stepUseOf(rows, getProtocol(spec.protocol), stepsOf);
  }

  const rlKeys = [
    "reward_mean",
    "accuracy",
    "retrievals_mean",
    "response_length_mean",
    "kl",
    "entropy",
    "memorization_samples",
    "group_reward",
    "format_ok",
  ];
  const curves: Record<string, CurvePoint[]> = {
    pretrain: await readCurve(p.run("pretrain"), ["loss", "lr"]),
    "r1-stage1": await readCurve(p.run("r1-stage1"), rlKeys),
    "r1-stage2": await readCurve(p.run("r1-stage2"), rlKeys),
    "plus-sft": await readCurve(p.run("plus-sft"), ["loss", "lr"]),
    "plus-rl": await readCurve(p.run("plus-rl"), rlKeys),
  };

  // one example question answered by the final systems (the first where R1-Searcher++ answers without searching
  // more than R1-Searcher and both are right, else the first question)
  const examples: QuickstartResults["examples"] = [];
  const r1 = rowsBy["r1-stage2"] ?? [];
  const pl = rowsBy["plus-rl"] ?? [];
  const plusBy = new Map(pl.map((r) => [String(r.idx), r]));
  const pick =
    r1.find(
      (r) =>
        r.cem === 1 &&
        plusBy.get(String(r.idx))?.cem === 1 &&
        (plusBy.get(String(r.idx))?.retrievals ?? 9) < r.retrievals,
    ) ??
    r1.find((r) => r.cem === 1) ??
    r1[0];
  if (pick) {
    for (const name of ["no-search", "naive-rag", "r1-stage2", "plus-rl"]) {
      const r = rowsBy[name]?.find((x) => String(x.idx) === String(pick.idx));
      if (r)
        examples.push({
          system: name,
          question: r.question,
          answer: r.answer,
          pred: r.pred_ans,
          cem: r.cem,
          retrievals: r.retrievals,
          text: r.gen_text_store,
        });
    }
  }

  const ws = worldStats(world);
  const test = ws.questions.test;
  const timings: Record<string, number> = {};
  for (const [k, v] of Object.entries(state.stages)) if (v) timings[k] = Math.round(v.seconds * 10) / 10;
  const stages: QuickstartResults["stages"] = {};
  for (const [k, v] of Object.entries(state.stages)) if (v?.info) stages[k as QuickstartStage] = v.info;

  const cem = (n: string) => systems[n]?.cem ?? 0;
  const ret = (n: string) => systems[n]?.retrievals ?? 0;
  const r1Cem = cem("r1-stage2");
  const margin = r1Cem - Math.max(cem("no-search"), cem("naive-rag"));
  const reduction = ret("r1-stage2") > 0 ? 1 - ret("plus-rl") / ret("r1-stage2") : 0;
  const drop = 100 * (r1Cem - cem("plus-rl"));
  const rlGain = 100 * (r1Cem - cem("pretrained-search"));
  const cpus = os.cpus();
  return {
    format: "searchrl-quickstart-results",
    version: 1,
    preset: state.config.preset,
    seed: state.config.seed,
    created: new Date().toISOString(),
    machine: {
      cpus: cpus.length,
      model: cpus[0]?.model ?? "?",
      node: process.version,
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    },
    timings,
    totalSeconds: Math.round(Object.values(timings).reduce((a, b) => a + b, 0) * 10) / 10,
    config: state.config,
    world: {
      passages: world.passages.length,
      facts: world.facts.length,
      internalFacts: ws.internalFacts,
      questions: Object.fromEntries(Object.entries(ws.questions).map(([k, v]) => [k, v.total])),
      testIdealRetrievals: test?.meanIdealRetrievals ?? 0,
      testSearchAllRetrievals: test?.meanSearchAllRetrievals ?? 0,
      testFactOverlapWithTrain: test?.factOverlapWithTrain ?? 0,
    },
    stages,
    systems,
    curves,
    examples,
    claims: {
      r1BeatsBaselines: { r1: r1Cem, noSearch: cem("no-search"), naiveRag: cem("naive-rag"), margin, pass: margin > 0 },
      plusFewerRetrievals: {
        r1Retrievals: ret("r1-stage2"),
        plusRetrievals: ret("plus-rl"),
        reduction,
        r1Cem,
        plusCem: cem("plus-rl"),
        accuracyDrop: drop,
        pass: reduction >= 0.3 && drop <= 2,
      },
      rlIsTheTeacher: {
        r1Cem,
        pretrainedCem: cem("pretrained-search"),
        gain: rlGain,
        threshold: RL_TEACHER_MIN_GAIN,
        pass: rlGain >= RL_TEACHER_MIN_GAIN,
      },
    },
  };
}

/** Read a results.json (for the benchmark and the UI). */
export async function readQuickstartResults(file: string): Promise<QuickstartResults> {
  return JSON.parse(await fsp.readFile(file, "utf8")) as QuickstartResults;
}
