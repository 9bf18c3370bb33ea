/**
 * report.html of a quickstart run: one self-contained page (no scripts, no external files) with the two claims checked
 * on the run's numbers, the evaluation table, per-step training curves as inline SVG, timings and an example.
 */
import type { CurvePoint, QuickstartResults } from "./results.js";

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const pct = (x: number) => (100 * x).toFixed(1);

/** A line chart of one or more series over steps, as an inline SVG. */
export function lineChartSvg(
  title: string,
  series: Array<{ name: string; color: string; points: Array<[number, number]> }>,
  opts: { width?: number; height?: number } = {},
): string {
  const W = opts.width ?? 320;
  const H = opts.height ?? 180;
  const m = { l: 44, r: 10, t: 22, b: 26 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><text x="8" y="16" font-size="12">${esc(title)}: no data</text></svg>`;
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
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`,
  );
  parts.push(`<text x="${m.l}" y="14" font-size="12" font-weight="600">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    const y = sy(v);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(
      `<text x="${m.l - 4}" y="${(y + 3).toFixed(1)}" font-size="10" text-anchor="end" fill="#555">${fmt(v)}</text>`,
    );
  }
  parts.push(`<text x="${m.l}" y="${H - 8}" font-size="10" fill="#555">${fmt(x0)}</text>`);
  parts.push(`<text x="${W - m.r}" y="${H - 8}" font-size="10" fill="#555" text-anchor="end">step ${fmt(x1)}</text>`);
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of s.points)
      parts.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="2.2" fill="${s.color}"/>`);
  }
  if (series.length > 1) {
    series.forEach((s, i) => {
      const x = m.l + 6 + i * 120;
      parts.push(`<rect x="${x}" y="${m.t + 2}" width="10" height="3" fill="${s.color}"/>`);
      parts.push(`<text x="${x + 14}" y="${m.t + 7}" font-size="10">${esc(s.name)}</text>`);
    });
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
      stages.map((s) => ({ name: s, color: COLORS[s], points: points(r.curves[s], key) })),
    );
  const curves = [
    chart("reward (mean per step)", "reward_mean", rl),
    chart("training accuracy (reward preset's 'correct')", "accuracy", rl),
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
</style></head><body>
<h1>searchrl quickstart: R1-Searcher and R1-Searcher++ on one CPU</h1>
<div class="muted">preset <b>${esc(r.preset)}</b>, seed ${r.seed}, ${r.machine.cpus} cores (${esc(r.machine.model)}), Node ${esc(r.machine.node)}, load average at the end ${r.machine.loadavg.join(" / ")}; total stage time ${r.totalSeconds.toFixed(0)} s. Created ${esc(r.created)}.</div>

<h2>The two claims, on this run's held-out test questions</h2>
<p><b>1. R1-Searcher:</b> two-stage outcome-reward RL teaches the model to search while it reasons, and it beats answering without search and naive retrieve-once RAG.
${badge(c1.pass)}<br>Cover-EM ${pct(c1.r1)} vs ${pct(c1.noSearch)} (no search) and ${pct(c1.naiveRag)} (naive RAG): margin ${(100 * c1.margin).toFixed(1)} points.</p>
<p><b>2. R1-Searcher++:</b> with the SFT cold start, the group reward and the memorization loss, the model keeps the accuracy while searching far less (paper: −30&nbsp;% retrievals vs R1-Searcher; target here: ≥&nbsp;30&nbsp;% fewer at ≤&nbsp;2 points lower Cover-EM).
${badge(c2.pass)}<br>${c2.plusRetrievals.toFixed(2)} vs ${c2.r1Retrievals.toFixed(2)} retrievals per question (${(100 * c2.reduction).toFixed(1)} % fewer); Cover-EM ${pct(c2.plusCem)} vs ${pct(c2.r1Cem)} (${c2.accuracyDrop >= 0 ? "−" : "+"}${Math.abs(c2.accuracyDrop).toFixed(1)} points).</p>

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
<table>
<tr><td>world</td><td>${r.world.passages} passages, ${r.world.facts} facts (${r.world.internalFacts} internal), questions ${esc(JSON.stringify(r.world.questions))}</td></tr>
<tr><td>BM25: ideal query finds its page</td><td>top-1 ${num(idx?.top1)}, top-k ${num(idx?.topK)}</td></tr>
<tr><td>pre-training text</td><td>${esc(JSON.stringify(data?.counts ?? {}))}</td></tr>
<tr><td>memory probe (pre-trained, no search)</td><td>single-hop internal facts recalled ${num(probe?.internalCem)}; external facts ${num(probe?.externalCem)}</td></tr>
<tr><td>R1-Searcher++ rejection sampling</td><td>sampled ${esc(String(plusData?.sampled ?? "–"))}, kept ${esc(String(plusData?.kept ?? "–"))} (with retrieval ${esc(String(plusData?.keptWithRetrieval ?? "–"))}, with internal recall ${esc(String(plusData?.keptWithInternal ?? "–"))})</td></tr>
</table>

<h2>Timings</h2>
<table>${timings}</table>

<h2>One test question, answered by each system</h2>
${examples || "<p>(no evaluation records)</p>"}
</body></html>
`;
}
