/**
 * report.html of a quickstart run: one self-contained page (no scripts, no external files) with the claims checked
 * on the run's numbers, the evaluation table, per-step training curves as inline SVG, timings and an example.
 */
import type { CurvePoint, QuickstartResults } from "./results.js";

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const pct = (x: number) => (100 * x).toFixed(1);

/** Rough width of a label in px at `size` px (system-ui; generous so that labels never run off the chart). */
function textWidth(text: string, size: number): number {
  return Math.ceil(text.length * size * 0.62);
}

/**
 * A line chart of one or more series over steps, as an inline SVG. With several series a legend sits under the
 * plot, wrapped onto as many lines as its labels need (the chart grows by those lines, labels are never cut).
 */
export function lineChartSvg(
  title: string,
  series: Array<{ name: string; color: string; points: Array<[number, number]> }>,
  opts: { width?: number; height?: number } = {},
): string {
  const W = opts.width ?? 320;
  const plotH = opts.height ?? 180;
  const m = { l: 44, r: 10, t: 22, b: 26 };
  // legend layout: entries of [swatch + gap + label], placed left to right and wrapped at the chart's width
  const legend: Array<{ x: number; row: number; name: string; color: string }> = [];
  if (series.length > 1) {
    let x = m.l;
    let row = 0;
    for (const s of series) {
      const w = 14 + textWidth(s.name, 10) + 12;
      if (x > m.l && x + w > W - m.r) {
        row++;
        x = m.l;
      }
      legend.push({ x, row, name: s.name, color: s.color });
      x += w;
    }
  }
  const legendRows = legend.length ? legend[legend.length - 1].row + 1 : 0;
  const H = plotH + (legendRows ? legendRows * 14 + 4 : 0);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${plotH}" role="img" aria-label="${esc(title)}"><text x="8" y="16" font-size="12">${esc(title)}: no data</text></svg>`;
  }
  let x0 = Math.min(...all.map((p) => p[0]));
  let x1 = Math.max(...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1]));
  let y1 = Math.max(...all.map((p) => p[1]));
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const pad = (y1 - y0) * 0.08;
  y0 -= pad;
  y1 += pad;
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number) => plotH - m.b - ((y - y0) / (y1 - y0)) * (plotH - m.t - m.b);
  const fmt = (v: number) =>
    Math.abs(v) < 0.005 ? "0" : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`,
  );
  // the title shrinks (down to 9 px) rather than run past the chart's right edge
  const titleSize = Math.max(9, Math.min(12, Math.floor(((W - 8) / Math.max(1, textWidth(title, 12))) * 12)));
  parts.push(`<text x="4" y="14" font-size="${titleSize}" font-weight="600">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    const y = sy(v);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(
      `<text x="${m.l - 4}" y="${(y + 3).toFixed(1)}" font-size="10" text-anchor="end" fill="#555">${fmt(v)}</text>`,
    );
  }
  const fmtX = (v: number) => (Number.isInteger(v) ? String(v) : fmt(v));
  parts.push(`<text x="${m.l}" y="${plotH - 8}" font-size="10" fill="#555">step ${fmtX(x0)}</text>`);
  parts.push(`<text x="${W - m.r}" y="${plotH - 8}" font-size="10" fill="#555" text-anchor="end">${fmtX(x1)}</text>`);
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of s.points)
      parts.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="2.2" fill="${s.color}"/>`);
  }
  for (const e of legend) {
    const y = plotH + 8 + e.row * 14;
    parts.push(`<rect x="${e.x}" y="${y - 4}" width="10" height="3" fill="${e.color}"/>`);
    parts.push(`<text x="${e.x + 14}" y="${y}" font-size="10">${esc(e.name)}</text>`);
  }
  parts.push("</svg>");
  return parts.join("");
}

const COLORS: Record<string, string> = {
  "r1-stage1": "#2563eb",
  "r1-stage2": "#7c3aed",
  "plus-rl": "#059669",
  pretrain: "#6b7280",
  "plus-sft": "#d97706",
};

/** Legend labels of the curves' stages. */
const STAGE_LABELS: Record<string, string> = {
  "r1-stage1": "R1 stage 1",
  "r1-stage2": "R1 stage 2",
  "plus-rl": "R1++ RL",
  pretrain: "pre-training",
  "plus-sft": "R1++ SFT",
};

/** Labels of the pre-training text's counts (`stages.data.counts`): group and item, from the key. */
function countLabel(key: string): { group: string; item: string } {
  const proto = (p: string) => (p === "plus" ? "R1-Searcher++" : p === "r1" ? "R1-Searcher" : p);
  const kind = (k: string) =>
    ({ single: "single-hop", multi: "multi-hop", recall: "recall practice" })[k] ?? k.replace(/_/g, " ");
  const text = (k: string) =>
    ({ facts: "encyclopedia paragraphs", qa: "single-hop Q/A", chains: "reasoning chains" })[k] ?? k;
  const parts = key.split(":");
  if (parts[0] === "world" && parts.length === 2) return { group: "main world text", item: text(parts[1]) };
  if (parts[0] === "prior" && parts[1] === "main" && parts[2] === "pool")
    return {
      group: "main-world prior pools (distinct items)",
      item:
        ({ single: "facts", multi: "questions", recall: "recall facts" } as Record<string, string>)[parts[3]] ??
        parts[3],
    };
  if (parts[0] === "prior" && parts[1] === "main" && parts.length === 4)
    return { group: "main-world protocol prior", item: `${proto(parts[2])} ${kind(parts[3])}` };
  if (parts[0] === "background" && parts[1] === "prior" && parts.length === 4)
    return { group: "background worlds", item: `${proto(parts[2])} ${kind(parts[3])} examples` };
  if (parts[0] === "background" && parts.length === 2) return { group: "background worlds", item: text(parts[1]) };
  return { group: "other", item: key };
}

const GROUP_ORDER = [
  "main world text",
  "main-world protocol prior",
  "main-world prior pools (distinct items)",
  "background worlds",
  "other",
];

/** Labelled values, one inline block each (they wrap as a whole, never off the page). */
function labelled(pairs: Array<[string, unknown]>): string {
  return pairs
    .filter(([, v]) => v !== undefined && v !== null)
    .map(
      ([k, v]) =>
        `<span class="kv"><span class="k">${esc(k)}</span> ${esc(typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v))}</span>`,
    )
    .join(" ");
}

function points(c: CurvePoint[] | undefined, key: string): Array<[number, number]> {
  return (c ?? []).filter((p) => typeof p[key] === "number").map((p) => [p.step, p[key]]);
}

export function renderReportHtml(r: QuickstartResults): string {
  const c1 = r.claims.r1BeatsBaselines;
  const c2 = r.claims.plusFewerRetrievals;
  const badge = (ok: boolean) =>
    `<span class="badge ${ok ? "ok" : "no"}">${ok ? "holds in this run" : "does not hold in this run"}</span>`;
  const rows = Object.entries(r.systems)
    .map(
      ([name, s]) =>
        `<tr${name === "r1-stage2" || name === "plus-rl" ? ' class="final"' : ""}><td>${esc(s.label)}<div class="sub">${esc(s.description)}</div></td>` +
        `<td>${pct(s.cem)}</td><td>${pct(s.em)}</td><td>${pct(s.f1)}</td><td>${s.retrievals.toFixed(2)}</td><td>${pct(s.finished)}</td>` +
        ["bridge", "compositional", "comparison"]
          .map((k) => `<td>${s.byKind[k] ? pct(s.byKind[k].cem) : "–"}</td>`)
          .join("") +
        `<td>${s.count}</td></tr>`,
    )
    .join("\n");
  const use = (u: { recalled: number; recalledCorrect: number; searched: number }) =>
    `<td>${pct(u.recalled)}</td><td>${u.recalled > 0 ? pct(u.recalledCorrect) : "–"}</td><td>${pct(u.searched)}</td>`;
  const stepRows = Object.entries(r.systems)
    .filter(([, s]) => s.steps)
    .map(([, s]) => `<tr><td>${esc(s.label)}</td>${use(s.steps!.internal)}${use(s.steps!.external)}</tr>`)
    .join("\n");
  const rl = ["r1-stage1", "r1-stage2", "plus-rl"];
  const chart = (title: string, key: string, stages: string[]) =>
    lineChartSvg(
      title,
      stages.map((s) => ({ name: STAGE_LABELS[s] ?? s, color: COLORS[s], points: points(r.curves[s], key) })),
    );
  const curves = [
    chart("reward (mean per step)", "reward_mean", rl),
    chart("training accuracy (share correct)", "accuracy", rl),
    chart("retrievals per trajectory", "retrievals_mean", rl),
    chart("response length (tokens)", "response_length_mean", rl),
    chart("pre-training loss", "loss", ["pretrain"]),
    chart("R1-Searcher++ SFT loss", "loss", ["plus-sft"]),
  ].join("\n");
  const timings = Object.entries(r.timings)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.toFixed(1)} s</td></tr>`)
    .join("");
  const examples = r.examples
    .map(
      (e) =>
        `<h4>${esc(r.systems[e.system]?.label ?? e.system)}: answer “${esc(e.pred)}” (${e.cem ? "correct" : "wrong"}, ${e.retrievals} retrievals)</h4><pre>${esc(e.text)}</pre>`,
    )
    .join("\n");
  const st = r.stages as Record<string, Record<string, unknown> | undefined>;
  const probe = st.probe;
  const plusData = st["plus-data"];
  const data = st.data;
  const idx = st.index;
  const num = (x: unknown, d = 3) => (typeof x === "number" ? x.toFixed(d) : "–");
  const c3 = r.claims.rlIsTheTeacher;
  const counts = (data?.counts ?? {}) as Record<string, number>;
  const groups = new Map<string, Array<[string, unknown]>>();
  for (const [k, v] of Object.entries(counts)) {
    const { group, item } = countLabel(k);
    groups.set(group, [...(groups.get(group) ?? []), [item, v]]);
  }
  const pretrainText =
    labelled([
      ["documents", data?.rows],
      ["background texts dropped (they name a main-world entity)", data?.droppedBackground],
      ["train questions shown (left out of RL)", data?.trainQuestionsInPretraining],
      ["RL train questions", data?.rlQuestions],
    ]) +
    [...groups]
      .sort(([a], [b]) => GROUP_ORDER.indexOf(a) - GROUP_ORDER.indexOf(b))
      .map(([g, pairs]) => `<div class="group"><span class="g">${esc(g)}:</span> ${labelled(pairs)}</div>`)
      .join("");
  const rejected = (plusData?.rejected ?? {}) as Record<string, number>;
  const rejection = plusData
    ? labelled([
        ["sampled", plusData.sampled],
        ["passed", plusData.passed],
        ["passed but ungrounded", plusData.passedUngrounded],
        ["kept", plusData.kept],
        ["kept with retrieval", plusData.keptWithRetrieval],
        ["kept with internal recall", plusData.keptWithInternal],
        ["kept: mean retrievals", plusData.keptRetrievalsMean],
      ]) +
      (Object.keys(rejected).length
        ? `<div class="group"><span class="g">rejected:</span> ${labelled(Object.entries(rejected).map(([k, v]) => [k.replace(/_/g, " "), v]))}</div>`
        : "")
    : "–";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>searchrl quickstart — ${esc(r.preset)} seed ${r.seed}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#111}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left} .sub{font-size:11px;color:#666} tr.final{background:#f0f7ff}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;margin-left:6px} .ok{background:#d1fae5;color:#065f46} .no{background:#fee2e2;color:#991b1b}
.charts{display:flex;flex-wrap:wrap;gap:12px} pre{background:#f6f8fa;padding:8px;white-space:pre-wrap;font-size:12px;max-height:320px;overflow:auto}
.muted{color:#555}
table.facts{width:100%;table-layout:fixed} table.facts td{text-align:left} table.facts td:first-child{width:230px}
.kv{display:inline-block;margin-right:14px} .k{color:#555} .group{margin-top:3px} .g{font-weight:600}
</style></head><body>
<h1>searchrl quickstart: R1-Searcher and R1-Searcher++ on one CPU</h1>
<div class="muted">preset <b>${esc(r.preset)}</b>, seed ${r.seed}, ${r.machine.cpus} cores (${esc(r.machine.model)}), Node ${esc(r.machine.node)}, load average at the end ${r.machine.loadavg.join(" / ")}; total stage time ${r.totalSeconds.toFixed(0)} s. Created ${esc(r.created)}.</div>

<h2>The claims, on this run's held-out test questions</h2>
<p><b>1. R1-Searcher:</b> two-stage outcome-reward RL teaches the model to search while it reasons, and it beats answering without search and naive retrieve-once RAG.
${badge(c1.pass)}<br>Cover-EM ${pct(c1.r1)} vs ${pct(c1.noSearch)} (no search) and ${pct(c1.naiveRag)} (naive RAG): margin ${(100 * c1.margin).toFixed(1)} points.</p>
<p><b>2. R1-Searcher++:</b> with the SFT cold start, the group reward and the memorization loss, the model keeps the accuracy while searching far less (paper: −30&nbsp;% retrievals vs R1-Searcher; target here: ≥&nbsp;30&nbsp;% fewer at ≤&nbsp;2 points lower Cover-EM).
${badge(c2.pass)}<br>${c2.plusRetrievals.toFixed(2)} vs ${c2.r1Retrievals.toFixed(2)} retrievals per question (${(100 * c2.reduction).toFixed(1)} % fewer); Cover-EM ${pct(c2.plusCem)} vs ${pct(c2.r1Cem)} (${c2.accuracyDrop >= 0 ? "−" : "+"}${Math.abs(c2.accuracyDrop).toFixed(1)} points).</p>
<p><b>3. RL is the teacher:</b> R1-Searcher's two RL stages, not the pre-trained model, make the searching agent: R1-Searcher against the same pre-trained model with the same search prompt (target: ≥&nbsp;${c3.threshold} Cover-EM points better).
${badge(c3.pass)}<br>Cover-EM ${pct(c3.r1Cem)} after RL vs ${pct(c3.pretrainedCem)} before (${c3.gain >= 0 ? "+" : "−"}${Math.abs(c3.gain).toFixed(1)} points).</p>

<h2>Evaluation (${Object.values(r.systems)[0]?.count ?? 0} held-out test questions, greedy decoding)</h2>
<table><tr><th>system</th><th>Cover-EM</th><th>EM</th><th>F1</th><th>retrievals</th><th>finished</th><th>bridge</th><th>compositional</th><th>comparison</th><th>n</th></tr>
${rows}
</table>
<p class="muted">Same pre-trained model for every row; baselines use its prompts documented in docs/quickstart.md. A perfect agent needs ${r.world.testIdealRetrievals.toFixed(2)} retrievals per test question when it recalls the internal (pre-trained) facts, ${r.world.testSearchAllRetrievals.toFixed(2)} when it searches every fact. Share of the test questions' facts that some train question also needs: ${num(r.world.testFactOverlapWithTrain, 2)}.</p>

${
  stepRows
    ? `<h2>Recall or search: how each system handled the facts its test questions need</h2>
<table><tr><th rowspan="2">system</th><th colspan="3">internal facts (pre-trained)</th><th colspan="3">external facts (only in the corpus)</th></tr>
<tr><th>recalled %</th><th>recall right %</th><th>searched %</th><th>recalled %</th><th>recall right %</th><th>searched %</th></tr>
${stepRows}
</table>
<p class="muted">A step counts as recalled when a recall block names the fact's subject and its relation's keyword (right when it also states the fact's object), as searched when a query names the subject; steps the model skipped or garbled count as neither. R1-Searcher's format has no recall block. Knowing what it knows means recalling internal facts and searching external ones.</p>`
    : ""
}

<h2>Training curves (per RL rollout step / optimizer step)</h2>
<div class="charts">
${curves}
</div>

<h2>Data, memory probe, cold start</h2>
<table class="facts">
<tr><td>world</td><td>${labelled([
    ["passages", r.world.passages],
    ["facts", r.world.facts],
    ["internal facts", r.world.internalFacts],
    ...Object.entries(r.world.questions).map(([k, v]): [string, unknown] => [`${k} questions`, v]),
  ])}</td></tr>
<tr><td>BM25: ideal query finds its page</td><td>${labelled([
    ["top-1", num(idx?.top1)],
    ["top-k", num(idx?.topK)],
  ])}</td></tr>
<tr><td>pre-training text (all passes)</td><td>${pretrainText}</td></tr>
<tr><td>memory probe (pre-trained, no search)</td><td>${labelled([
    ["single-hop internal facts recalled", num(probe?.internalCem)],
    ["external facts", num(probe?.externalCem)],
  ])}</td></tr>
<tr><td>R1-Searcher++ rejection sampling</td><td>${rejection}</td></tr>
</table>

<h2>Timings</h2>
<table>${timings}</table>

<h2>One test question, answered by each system</h2>
${examples || "<p>(no evaluation records)</p>"}
</body></html>
`;
}
