/**
 * Aggregation over evaluation result records (upstream `metric_calc_rule.py` `eval`): only the first 2,000 records,
 * means of EM, Cover-EM (1 and 2), F1, precision and recall, the Cover-EM hit count, and ACC_L from `gpt4o_output`.
 */
import { z } from "zod";
import { coverExactMatch, coverExactMatch2, exactMatch, f1Score, type GoldAnswer } from "./answer.js";
import { judgeVerdictStrict } from "./judge.js";

/** Upstream reads only this many records of a result file. */
export const UPSTREAM_RECORD_LIMIT = 2000;

/** One evaluation result record (upstream format; extra keys are allowed and ignored). */
export const ResultRecordSchema = z
  .object({
    question: z.string(),
    answer: z.union([z.string(), z.array(z.string()), z.boolean()]),
    pred_ans: z.string(),
    gpt4o_output: z.string().nullable().optional(),
  })
  .loose();

export type ResultRecord = z.infer<typeof ResultRecordSchema>;

/**
 * The gold of a record for the rule metrics. A JSON boolean (upstream would crash on it) is mapped like the judge
 * reference: true → "yes", false → "no".
 */
export function recordGold(answer: ResultRecord["answer"]): GoldAnswer {
  if (answer === true) return "yes";
  if (answer === false) return "no";
  return answer;
}

export interface MetricsSummary {
  /** Records aggregated (at most the limit). */
  count: number;
  em: number;
  /** Cover-EM = ACC_R (`cover_exact_match_score_1`). */
  cem: number;
  cem2: number;
  f1: number;
  precision: number;
  recall: number;
  /** Number of Cover-EM hits (`acc_num`). */
  accNum: number;
  /** ACC_L: share of judged records whose `gpt4o_output` is exactly "True"; null when no record has a verdict. */
  judge: number | null;
  /** Records that carry a `gpt4o_output` (the judge denominator). */
  judged: number;
  /** Mean `retrievals` over the records that carry it (searchrl's field); null when none does. */
  retrievals: number | null;
}

/** Incremental aggregator (add records one by one, then `summary()`). */
export class MetricsAccumulator {
  private n = 0;
  private em = 0;
  private cem = 0;
  private cem2 = 0;
  private f1 = 0;
  private precision = 0;
  private recall = 0;
  private judgedN = 0;
  private judgeTrue = 0;
  private retrievalN = 0;
  private retrievalSum = 0;

  constructor(readonly limit: number = UPSTREAM_RECORD_LIMIT) {}

  /** False once the limit is reached (further records are ignored). */
  get accepting(): boolean {
    return this.n < this.limit;
  }

  add(rec: {
    answer: ResultRecord["answer"];
    pred_ans: string;
    gpt4o_output?: string | null;
    retrievals?: unknown;
  }): boolean {
    if (!this.accepting) return false;
    const gold = recordGold(rec.answer);
    this.n++;
    if (exactMatch(rec.pred_ans, gold)) this.em++;
    if (coverExactMatch(rec.pred_ans, gold)) this.cem++;
    if (coverExactMatch2(rec.pred_ans, gold)) this.cem2++;
    const f = f1Score(rec.pred_ans, gold);
    this.f1 += f.f1;
    this.precision += f.precision;
    this.recall += f.recall;
    if (rec.gpt4o_output !== undefined && rec.gpt4o_output !== null) {
      this.judgedN++;
      if (judgeVerdictStrict(rec.gpt4o_output)) this.judgeTrue++;
    }
    if (typeof rec.retrievals === "number" && Number.isFinite(rec.retrievals)) {
      this.retrievalN++;
      this.retrievalSum += rec.retrievals;
    }
    return true;
  }

  summary(): MetricsSummary {
    const n = this.n;
    const mean = (x: number) => (n === 0 ? 0 : x / n);
    return {
      count: n,
      em: mean(this.em),
      cem: mean(this.cem),
      cem2: mean(this.cem2),
      f1: mean(this.f1),
      precision: mean(this.precision),
      recall: mean(this.recall),
      accNum: this.cem,
      judge: this.judgedN === 0 ? null : this.judgeTrue / this.judgedN,
      judged: this.judgedN,
      retrievals: this.retrievalN === 0 ? null : this.retrievalSum / this.retrievalN,
    };
  }
}

/** Aggregate records as upstream: the first `limit` (default 2,000) records only. */
export function aggregateMetrics(
  records: Iterable<{
    answer: ResultRecord["answer"];
    pred_ans: string;
    gpt4o_output?: string | null;
    retrievals?: unknown;
  }>,
  limit = UPSTREAM_RECORD_LIMIT,
): MetricsSummary {
  const acc = new MetricsAccumulator(limit);
  for (const r of records) if (!acc.add(r)) break;
  return acc.summary();
}

/** Upstream's printed form: `em:{x}, cem:{y}, f1:{z}, acc_num:{n}` with `round(100·x, 1)`. */
export function formatUpstreamMetrics(s: MetricsSummary): string {
  const pct = (x: number) => pyRound1(100 * x);
  return `em:${pct(s.em)}, cem:${pct(s.cem)}, f1:${pct(s.f1)}, acc_num:${s.accNum}`;
}

/**
 * Python `str(round(x, 1))` for finite floats. Python rounds the exact binary value half-to-even; `toFixed` rounds the
 * exact value half-up, so the two differ only on exact ties, which (one decimal) are the values k + 0.25 / k + 0.75.
 */
export function pyRound1(x: number): string {
  const q = x * 4; // exact in binary
  let tenths: number;
  if (Number.isInteger(q) && Math.abs(q) % 2 === 1) {
    const lo = Math.floor(x * 10); // exact: x has two fractional bits
    tenths = lo % 2 === 0 ? lo : lo + 1;
  } else {
    tenths = Math.round(Number(x.toFixed(1)) * 10);
  }
  return (tenths / 10).toFixed(1);
}
