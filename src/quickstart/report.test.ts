/** report.html: chart legends stay inside their chart, the data table shows labelled values, claim 3 is shown. */
import { describe, expect, it } from "vitest";
import { lineChartSvg, renderReportHtml } from "./report.js";
import type { QuickstartResults } from "./results.js";

const pts = (n: number): Array<[number, number]> => Array.from({ length: n }, (_, i) => [i + 1, Math.sin(i)]);

/** The legend labels of a chart (texts at font-size 10 after the swatches) with their x and baseline y. */
function legendTexts(svg: string): Array<{ x: number; y: number; text: string }> {
  const swatches = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
  return swatches.map(([x, y]) => {
    const m = svg.match(new RegExp(`<text x="${x + 14}" y="${y + 4}" font-size="10">([^<]*)</text>`));
    if (!m) throw new Error(`no label next to the swatch at ${x},${y}`);
    return { x: x + 14, y: y + 4, text: m[1] };
  });
}

describe("lineChartSvg legend", () => {
  const series = ["R1 stage 1", "R1 stage 2", "R1++ RL"].map((name, i) => ({
    name,
    color: ["#111", "#222", "#333"][i],
    points: pts(4),
  }));

  it("keeps every label whole inside the chart (the old legend cut the third one at 320 px)", () => {
    const svg = lineChartSvg("reward", series, { width: 320 });
    const labels = legendTexts(svg);
    expect(labels.map((l) => l.text)).toEqual(["R1 stage 1", "R1 stage 2", "R1++ RL"]);
    // 0.62 em per character is wider than system-ui's average digit/letter at 10 px
    for (const l of labels) expect(l.x + l.text.length * 6.2, l.text).toBeLessThanOrEqual(320);
    // the legend sits under the plot, inside the SVG's height
    const h = Number(svg.match(/ height="(\d+)"/)![1]);
    for (const l of labels) expect(l.y).toBeLessThanOrEqual(h);
  });

  it("wraps onto more lines in a narrow chart and grows the chart by them", () => {
    const wide = lineChartSvg("reward", series, { width: 320 });
    const narrow = lineChartSvg("reward", series, { width: 200 });
    const rows = new Set(legendTexts(narrow).map((l) => l.y));
    expect(rows.size).toBeGreaterThan(1);
    for (const l of legendTexts(narrow)) expect(l.x + l.text.length * 6.2, l.text).toBeLessThanOrEqual(200);
    expect(Number(narrow.match(/ height="(\d+)"/)![1])).toBeGreaterThan(Number(wide.match(/ height="(\d+)"/)![1]));
  });

  it("has no legend for one series and shrinks a title that would run past the edge", () => {
    const one = lineChartSvg("loss", [{ name: "pre-training", color: "#000", points: pts(3) }]);
    expect(one).not.toContain("<rect");
    const long = lineChartSvg("a very long chart title that does not fit into the chart at twelve px", []);
    expect(long).toContain("no data");
    const svg = lineChartSvg("a title of about forty-eight characters in total", series);
    const size = Number(svg.match(/<text x="4" y="14" font-size="(\d+)"/)![1]);
    expect(size).toBeLessThan(12);
  });
});

function results(): QuickstartResults {
  const sys = (cem: number, retrievals: number) => ({
    label: "x",
    description: "d",
    cem,
    em: cem,
    f1: cem,
    retrievals,
    count: 10,
    byKind: {},
    finished: 1,
  });
  return {
    format: "searchrl-quickstart-results",
    version: 1,
    preset: "micro",
    seed: 1,
    created: "2026-01-01T00:00:00Z",
    machine: { cpus: 2, model: "cpu", node: "v20", loadavg: [0, 0, 0] },
    timings: { world: 0.1 },
    totalSeconds: 0.1,
    config: {},
    world: {
      passages: 61,
      facts: 124,
      internalFacts: 63,
      questions: { train: 60, dev: 4, test: 16 },
      testIdealRetrievals: 1.3,
      testSearchAllRetrievals: 2.2,
      testFactOverlapWithTrain: 0.5,
    },
    stages: {
      index: { top1: 1, topK: 1 },
      data: {
        rows: 7167,
        counts: { "world:facts": 2430, "prior:main:plus:recall": 300, "background:prior:r1:multi": 150, odd: 7 },
        rlQuestions: 39,
      },
      probe: { internalCem: 0.25, externalCem: 0.125 },
      "plus-data": { sampled: 792, passed: 9, kept: 9, rejected: { wrong: 287, finish_length: 332 } },
    },
    systems: { "pretrained-search": sys(0.2, 2), "r1-stage2": sys(0.35, 1.8), "plus-rl": sys(0.4, 0.6) },
    curves: {},
    examples: [],
    claims: {
      r1BeatsBaselines: { r1: 0.35, noSearch: 0.1, naiveRag: 0.1, margin: 0.25, pass: true },
      plusFewerRetrievals: {
        r1Retrievals: 1.8,
        plusRetrievals: 0.6,
        reduction: 2 / 3,
        r1Cem: 0.35,
        plusCem: 0.4,
        accuracyDrop: -5,
        pass: true,
      },
      rlIsTheTeacher: { r1Cem: 0.35, pretrainedCem: 0.2, gain: 15, threshold: 10, pass: true },
    },
  };
}

describe("renderReportHtml", () => {
  it("shows the data, probe and cold-start figures as labelled values, not JSON", () => {
    const html = renderReportHtml(results());
    const table = html.slice(html.indexOf("<h2>Data, memory probe"), html.indexOf("<h2>Timings"));
    expect(table).not.toMatch(/[{}]|&quot;/);
    for (const s of [
      '<span class="k">train questions</span> 60',
      '<span class="k">test questions</span> 16',
      '<span class="k">encyclopedia paragraphs</span> 2430',
      '<span class="k">R1-Searcher++ recall practice</span> 300',
      '<span class="k">R1-Searcher multi-hop examples</span> 150',
      '<span class="k">odd</span> 7',
      '<span class="k">kept</span> 9',
      '<span class="k">finish length</span> 332',
      '<span class="k">single-hop internal facts recalled</span> 0.250',
    ])
      expect(table).toContain(s);
    // every row has its two cells filled
    for (const row of table.match(/<tr>.*?<\/tr>/gs) ?? []) expect(row).not.toMatch(/<td>\s*<\/td>/);
  });

  it("states claim 3 (RL is the teacher) with its figures, held or not", () => {
    const r = results();
    let html = renderReportHtml(r);
    expect(html).toMatch(
      /3\. RL is the teacher:.*holds in this run.*Cover-EM 35\.0 after RL vs 20\.0 before \(\+15\.0 points\)/s,
    );
    r.claims.rlIsTheTeacher = { r1Cem: 0.2, pretrainedCem: 0.25, gain: -5, threshold: 10, pass: false };
    html = renderReportHtml(r);
    expect(html).toMatch(/3\. RL is the teacher:.*does not hold in this run.*\(−5\.0 points\)/s);
  });
});
