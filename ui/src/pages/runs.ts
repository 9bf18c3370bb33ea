/** Runs: training runs under the runs folder, their curves overlaid; one run's details. */
import { api, type AgentRunSummary, type RunDetail } from "../api.js";
import { lineChart, legend, PALETTE, type ChartSeries } from "../chart.js";
import { clear, fmtDate, fmtNum, h } from "../dom.js";

export const CURVES: Array<{ key: string; title: string }> = [
  { key: "reward_mean", title: "Reward (mean)" },
  { key: "accuracy", title: "Accuracy" },
  { key: "retrievals_mean", title: "Retrievals per answer" },
  { key: "response_length_mean", title: "Response length (tokens)" },
  { key: "kl", title: "KL to the reference" },
  { key: "loss", title: "Loss" },
];

type Rows = Array<Record<string, unknown>>;

function seriesFor(key: string, runs: Array<{ name: string; color: string; rows: Rows }>): ChartSeries[] {
  return runs.map((r) => ({
    name: r.name,
    color: r.color,
    points: r.rows
      .filter((row) => typeof row[key] === "number" && Number.isFinite(row[key] as number))
      .map((row) => [row.step as number, row[key] as number] as [number, number]),
  }));
}

/** The chart grid for some runs (curves that no run has are left out, except the five main ones). */
export function chartGrid(runs: Array<{ name: string; color: string; rows: Rows }>): HTMLElement {
  const grid = h("div", { class: "chart-grid" });
  for (const c of CURVES) {
    const series = seriesFor(c.key, runs);
    if (c.key === "loss" && series.every((se) => se.points.length === 0)) continue;
    grid.append(lineChart({ title: c.title, series }));
  }
  return grid;
}

function runLink(name: string): HTMLAnchorElement {
  return h("a", { href: `#/runs/${encodeURIComponent(name)}` }, name);
}

export async function runsPage(main: HTMLElement, signal: AbortSignal, params: URLSearchParams): Promise<void> {
  main.append(h("h1", null, "Training runs"));
  const { runs, root } = await api<{ runs: AgentRunSummary[]; root: string }>("/api/runs", signal);
  main.append(
    h("p", { class: "lead" }, `${runs.length} run${runs.length === 1 ? "" : "s"} under `, h("code", null, root)),
  );
  if (runs.length === 0) {
    main.append(h("p", { class: "notice" }, "No runs found: a run folder holds a metrics.jsonl (docs/run-format.md)."));
    return;
  }
  const wanted = new Set((params.get("select") ?? "").split(",").filter(Boolean));
  const selected = new Set(
    wanted.size > 0 ? runs.filter((r) => wanted.has(r.name)).map((r) => r.name) : runs.slice(0, 4).map((r) => r.name),
  );
  const color = new Map(runs.map((r, i) => [r.name, PALETTE[i % PALETTE.length]]));

  const tbody = h("tbody");
  for (const r of runs) {
    const box = h("input", {
      type: "checkbox",
      id: `sel-${r.name}`,
      checked: selected.has(r.name),
      "aria-label": `Overlay ${r.name}`,
    });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(r.name);
      else selected.delete(r.name);
      void drawCharts();
    });
    const last = r.last ?? {};
    tbody.append(
      h(
        "tr",
        null,
        h(
          "td",
          null,
          box,
          h("span", { class: "swatch", style: `background:${color.get(r.name)}`, "aria-hidden": "true" }),
        ),
        h("th", { scope: "row" }, runLink(r.name)),
        h("td", null, r.stage ?? "–"),
        h("td", { class: "num" }, r.last_step ?? "–"),
        h("td", { class: "num" }, fmtNum(last.reward_mean)),
        h("td", { class: "num" }, fmtNum(last.accuracy)),
        h("td", { class: "num" }, fmtNum(last.retrievals_mean)),
        h(
          "td",
          { class: "num" },
          r.sample_steps > 0 ? h("a", { href: `#/runs/${encodeURIComponent(r.name)}` }, String(r.sample_steps)) : "0",
        ),
        h("td", null, fmtDate(r.updated)),
      ),
    );
  }
  const cols = ["Overlay", "Run", "Stage", "Last step", "Reward", "Accuracy", "Retrievals", "Sample steps", "Updated"];
  main.append(
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "runs-table" },
        h("caption", { class: "visually-hidden" }, "Runs (check runs to overlay their curves)"),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            cols.map((c) => h("th", { scope: "col" }, c)),
          ),
        ),
        tbody,
      ),
    ),
  );
  const chartsSection = h("section", { "aria-labelledby": "curves-h" }, h("h2", { id: "curves-h" }, "Curves"));
  main.append(chartsSection);
  const chartsBody = h("div");
  chartsSection.append(chartsBody);
  const cache = new Map<string, Rows>();

  async function drawCharts(): Promise<void> {
    const names = runs.map((r) => r.name).filter((n) => selected.has(n));
    const data = await Promise.all(
      names.map(async (name) => {
        if (!cache.has(name))
          cache.set(name, (await api<{ rows: Rows }>(`/api/runs/${encodeURIComponent(name)}/metrics`, signal)).rows);
        return { name, color: color.get(name) ?? PALETTE[0], rows: cache.get(name) ?? [] };
      }),
    );
    clear(chartsBody);
    if (data.length === 0) {
      chartsBody.append(h("p", { class: "notice" }, "Check one or more runs above to see their curves."));
      return;
    }
    chartsBody.append(legend(data), chartGrid(data));
    const sel = names.join(",");
    const want = `#/runs${sel ? `?select=${encodeURIComponent(sel)}` : ""}`;
    if (location.hash !== want) history.replaceState(null, "", want);
  }
  await drawCharts();

  // Live runs: append new metrics lines every few seconds while the page is open.
  const timer = setInterval(async () => {
    let changed = false;
    for (const name of selected) {
      const rows = cache.get(name);
      if (!rows) continue;
      const since = rows.length > 0 ? (rows[rows.length - 1].step as number) : -1;
      try {
        const more = await api<{ rows: Rows }>(`/api/runs/${encodeURIComponent(name)}/metrics?since=${since}`, signal);
        if (more.rows.length > 0) {
          rows.push(...more.rows);
          changed = true;
        }
      } catch {
        /* a transient error: try again next tick */
      }
    }
    if (changed && !signal.aborted) await drawCharts();
  }, 5000);
  signal.addEventListener("abort", () => clearInterval(timer));
}

export async function runPage(main: HTMLElement, signal: AbortSignal, name: string): Promise<void> {
  const run = await api<RunDetail>(`/api/runs/${encodeURIComponent(name)}`, signal);
  main.append(h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs"), " / "), h("h1", null, run.name));
  const last = run.last ?? {};
  const facts: Array<[string, unknown]> = [
    ["Stage", run.stage ?? "–"],
    ["Steps logged", run.steps],
    ["Last step", run.last_step ?? "–"],
    ["Reward (last)", fmtNum(last.reward_mean)],
    ["Accuracy (last)", fmtNum(last.accuracy)],
    ["Latest checkpoint", run.latest_checkpoint ?? "–"],
    ["Updated", fmtDate(run.updated)],
  ];
  main.append(
    h(
      "dl",
      { class: "facts" },
      facts.map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, String(v)))),
    ),
  );
  const { rows } = await api<{ rows: Rows }>(`/api/runs/${encodeURIComponent(name)}/metrics`, signal);
  main.append(
    h(
      "section",
      { "aria-labelledby": "c-h" },
      h("h2", { id: "c-h" }, "Curves"),
      chartGrid([{ name: run.name, color: PALETTE[0], rows }]),
    ),
  );
  const samples = h("section", { "aria-labelledby": "s-h" }, h("h2", { id: "s-h" }, "Sampled trajectories"));
  if (run.samples.length === 0) samples.append(h("p", null, "This run has no samples/ folder yet."));
  else
    samples.append(
      h(
        "ul",
        { class: "step-links" },
        run.samples.map((st) =>
          h(
            "li",
            null,
            h(
              "a",
              { href: `#/trajectories?source=${encodeURIComponent(`run:${run.name}@${st.step}`)}` },
              `step ${st.step}`,
            ),
          ),
        ),
      ),
    );
  main.append(samples);
  main.append(
    h(
      "section",
      { "aria-labelledby": "k-h" },
      h("h2", { id: "k-h" }, "Checkpoints"),
      run.checkpoints.length === 0
        ? h("p", null, "None yet.")
        : h(
            "ul",
            null,
            run.checkpoints.map((c) =>
              h("li", null, h("code", null, c), c === run.latest_checkpoint ? " (latest)" : ""),
            ),
          ),
    ),
  );
  if (run.config)
    main.append(
      h(
        "details",
        { class: "config" },
        h("summary", null, "Config"),
        h("pre", null, JSON.stringify(run.config, null, 2)),
      ),
    );
}
