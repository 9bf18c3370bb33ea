/**
 * A hand-written SVG line chart: several series (runs) over steps, axes with round ticks, a cursor that follows the
 * mouse or the arrow keys and reads out every series' value at that step, and the numbers as a table for screen
 * readers and copying.
 */
import { fmtNum, h, s } from "./dom.js";

export interface ChartSeries {
  name: string;
  color: string;
  /** [step, value] sorted by step. */
  points: Array<[number, number]>;
}

export interface ChartOptions {
  title: string;
  series: ChartSeries[];
  width?: number;
  height?: number;
  xLabel?: string;
}

/** Colour-blind-friendly palette (Okabe–Ito), dark enough for lines on white. */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B"];

/** Round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < hi) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

let chartSeq = 0;

export function lineChart(opts: ChartOptions): HTMLElement {
  const W = opts.width ?? 460;
  const H = opts.height ?? 220;
  const m = { l: 52, r: 12, t: 10, b: 34 };
  const id = `chart-${++chartSeq}`;
  const all = opts.series.flatMap((se) => se.points);
  const fig = h("figure", { class: "chart", "aria-labelledby": `${id}-cap` });
  const cap = h("figcaption", { id: `${id}-cap` }, opts.title);
  fig.append(cap);
  if (all.length === 0) {
    fig.append(h("p", { class: "empty" }, "No data for this metric."));
    return fig;
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 5);
  const yt = niceTicks(Math.min(...ys), Math.max(...ys), 4);
  const x0 = xt[0];
  const x1 = xt[xt.length - 1];
  const y0 = yt[0];
  const y1 = yt[yt.length - 1];
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((v - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);

  const desc = opts.series.map((se) => {
    const last = se.points[se.points.length - 1];
    return `${se.name}: ${se.points.length} points${last ? `, last ${fmtNum(last[1])} at step ${last[0]}` : ""}`;
  });
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    tabindex: "0",
    "aria-label": `${opts.title}. ${desc.join("; ")}. Use the left and right arrow keys to read values.`,
    class: "chart-svg",
  });
  const grid = s("g", { class: "grid" });
  for (const v of yt) {
    grid.append(s("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
    grid.append(s("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end", class: "tick" }, fmtNum(v)));
  }
  for (const v of xt)
    grid.append(s("text", { x: X(v), y: H - m.b + 16, "text-anchor": "middle", class: "tick" }, fmtNum(v)));
  grid.append(
    s(
      "text",
      { x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", class: "axis-label" },
      opts.xLabel ?? "step",
    ),
  );
  grid.append(s("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis" }));
  grid.append(s("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis" }));
  svg.append(grid);
  for (const se of opts.series) {
    if (se.points.length === 0) continue;
    const d = se.points.map((p, i) => `${i === 0 ? "M" : "L"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    svg.append(
      s("path", { d, fill: "none", stroke: se.color, "stroke-width": 2, "data-series": se.name, class: "series" }),
    );
    if (se.points.length === 1)
      svg.append(s("circle", { cx: X(se.points[0][0]), cy: Y(se.points[0][1]), r: 3, fill: se.color }));
  }
  const cursor = s("line", { y1: m.t, y2: H - m.b, class: "cursor", visibility: "hidden" });
  svg.append(cursor);
  const readout = h("p", { class: "readout", "aria-live": "polite" }, "\u00a0");

  const steps = [...new Set(xs)].sort((a, b) => a - b);
  let cur = -1;
  const show = (i: number) => {
    cur = Math.max(0, Math.min(steps.length - 1, i));
    const st = steps[cur];
    cursor.setAttribute("x1", String(X(st)));
    cursor.setAttribute("x2", String(X(st)));
    cursor.setAttribute("visibility", "visible");
    const parts = opts.series.map((se) => {
      const p = se.points.find((q) => q[0] === st);
      return p ? `${se.name} ${fmtNum(p[1])}` : null;
    });
    readout.textContent = `step ${st}: ${parts.filter(Boolean).join(" · ")}`;
  };
  svg.addEventListener("mousemove", (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    let best = 0;
    for (let i = 1; i < steps.length; i++) if (Math.abs(X(steps[i]) - px) < Math.abs(X(steps[best]) - px)) best = i;
    show(best);
  });
  svg.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      ev.preventDefault();
      show(cur < 0 ? (ev.key === "ArrowRight" ? 0 : steps.length - 1) : cur + (ev.key === "ArrowRight" ? 1 : -1));
    } else if (ev.key === "Home" || ev.key === "End") {
      ev.preventDefault();
      show(ev.key === "Home" ? 0 : steps.length - 1);
    }
  });
  fig.append(svg, readout);

  const rows = steps.map((st) =>
    h(
      "tr",
      null,
      h("th", { scope: "row" }, String(st)),
      opts.series.map((se) => h("td", null, fmtNum(se.points.find((q) => q[0] === st)?.[1]))),
    ),
  );
  fig.append(
    h(
      "details",
      { class: "chart-table" },
      h("summary", null, "Data table"),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          null,
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col" }, "step"),
              opts.series.map((se) => h("th", { scope: "col" }, se.name)),
            ),
          ),
          h("tbody", null, rows),
        ),
      ),
    ),
  );
  return fig;
}

/** A legend: one swatch per series. */
export function legend(series: Array<{ name: string; color: string }>): HTMLElement {
  return h(
    "ul",
    { class: "legend", "aria-label": "Runs" },
    series.map((se) =>
      h("li", null, h("span", { class: "swatch", style: `background:${se.color}`, "aria-hidden": "true" }), se.name),
    ),
  );
}
