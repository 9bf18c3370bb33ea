/** Trajectories: browse sampled trajectories of a run or evaluation results, with filters; compare two sources. */
import { api, listSources, qs, type AgentTraceRecord, type ComparePage, type RecordPage } from "../api.js";
import { announce, fmtNum, h } from "../dom.js";
import { renderTrace, traceFacts } from "../trace-view.js";

const FILTER_KEYS = [
  "correct",
  "reward_min",
  "reward_max",
  "retrievals_min",
  "retrievals_max",
  "dataset",
  "q",
] as const;

function sourceSelect(
  id: string,
  label: string,
  sources: Array<{ group: string; value: string; label: string }>,
  value: string | null,
): HTMLElement {
  const sel = h("select", { id, name: id });
  sel.append(h("option", { value: "" }, "— choose —"));
  const groups = new Map<string, HTMLOptGroupElement>();
  for (const so of sources) {
    let g = groups.get(so.group);
    if (!g) {
      g = h("optgroup", { label: so.group });
      groups.set(so.group, g);
      sel.append(g);
    }
    g.append(h("option", { value: so.value, selected: so.value === value }, so.label));
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), sel);
}

function filterFields(params: URLSearchParams, datasets: string[]): HTMLElement {
  const v = (k: string) => params.get(k) ?? "";
  const correct = h(
    "select",
    { id: "f-correct", name: "correct" },
    h("option", { value: "" }, "any"),
    h("option", { value: "true", selected: v("correct") === "true" }, "correct"),
    h("option", { value: "false", selected: v("correct") === "false" }, "wrong"),
  );
  const dataset = h(
    "select",
    { id: "f-dataset", name: "dataset" },
    h("option", { value: "" }, "any"),
    datasets.map((d) => h("option", { value: d, selected: v("dataset") === d }, d)),
  );
  const num = (id: string, name: string, label: string, stepAttr: string) =>
    h(
      "div",
      { class: "field small" },
      h("label", { for: id }, label),
      h("input", { id, name, type: "number", step: stepAttr, value: v(name) }),
    );
  return h(
    "fieldset",
    { class: "filters" },
    h("legend", null, "Filters"),
    h("div", { class: "field small" }, h("label", { for: "f-correct" }, "Correctness"), correct),
    num("f-rmin", "reward_min", "Reward ≥", "any"),
    num("f-rmax", "reward_max", "Reward ≤", "any"),
    num("f-nmin", "retrievals_min", "Retrievals ≥", "1"),
    num("f-nmax", "retrievals_max", "Retrievals ≤", "1"),
    h("div", { class: "field small" }, h("label", { for: "f-dataset" }, "Dataset"), dataset),
    h(
      "div",
      { class: "field" },
      h("label", { for: "f-q" }, "Question contains"),
      h("input", { id: "f-q", name: "q", type: "search", value: v("q") }),
    ),
  );
}

function formParams(form: HTMLFormElement): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of new FormData(form).entries()) if (typeof v === "string" && v !== "") out.set(k, v);
  return out;
}

function badge(r: AgentTraceRecord): HTMLElement {
  if (r.correct === null) return h("span", { class: "badge" }, "unjudged");
  return r.correct ? h("span", { class: "badge ok" }, "✓ correct") : h("span", { class: "badge bad" }, "✗ wrong");
}

/** One trajectory: question, verdict, answer vs gold, and its trace (expandable). */
export function recordCard(
  r: AgentTraceRecord,
  opts: { open?: boolean; heading?: "h2" | "h3"; showQuestion?: boolean } = {},
): HTMLElement {
  const meta = [
    badge(r),
    r.reward !== null ? h("span", null, `reward ${fmtNum(r.reward)}`) : null,
    h("span", null, `${r.retrievals} retrieval${r.retrievals === 1 ? "" : "s"}`),
    r.dataset ? h("span", null, r.dataset) : null,
    r.finish ? h("span", null, r.finish) : null,
    ...Object.entries(r.metrics)
      .filter(([k]) => k !== "judge")
      .map(([k, v]) => h("span", null, `${k} ${fmtNum(v)}`)),
  ].filter(Boolean);
  const hd = opts.heading ?? "h3";
  return h(
    "article",
    { class: "record", "data-testid": "record" },
    opts.showQuestion === false ? null : h(hd, { class: "record-q" }, r.question),
    h(
      "p",
      { class: "meta" },
      meta.flatMap((m, i) => (i === 0 ? [m] : [" · ", m])),
    ),
    h(
      "p",
      { class: "answers" },
      h("span", null, "Answer: ", h("mark", null, r.answer === null ? "(none)" : r.answer.trim() || "(empty)")),
      r.gold.length > 0 ? h("span", null, " · Gold: ", r.gold.join(" | ")) : null,
    ),
    h(
      "details",
      { class: "record-trace", open: opts.open ?? false },
      h("summary", null, "Trace"),
      renderTrace(r.trace),
      traceFacts(r.trace),
    ),
  );
}

function pager(total: number, offset: number, limit: number, go: (offset: number) => void): HTMLElement {
  const prev = h("button", { type: "button", disabled: offset === 0 }, "Previous");
  const next = h("button", { type: "button", disabled: offset + limit >= total }, "Next");
  prev.addEventListener("click", () => go(Math.max(0, offset - limit)));
  next.addEventListener("click", () => go(offset + limit));
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    prev,
    h("span", null, total === 0 ? "0 of 0" : `${offset + 1}–${Math.min(total, offset + limit)} of ${total}`),
    next,
  );
}

export async function trajectoriesPage(main: HTMLElement, signal: AbortSignal, params: URLSearchParams): Promise<void> {
  main.append(h("h1", null, "Trajectories"));
  const sources = await listSources(signal);
  if (sources.length === 0) {
    main.append(
      h(
        "p",
        { class: "notice" },
        "No sampled trajectories (RUN_DIR/samples/step-*.jsonl) or evaluation results (results.jsonl) found.",
      ),
    );
    return;
  }
  const source = params.get("source") ?? sources[0].value;
  const offset = Number(params.get("offset") ?? 0) || 0;
  const limit = 20;
  const query: Record<string, string> = {};
  for (const k of FILTER_KEYS) {
    const v = params.get(k);
    if (v) query[k] = v;
  }
  const page = await api<RecordPage>(`/api/trajectories${qs({ source, ...query, offset, limit })}`, signal);
  const form = h(
    "form",
    { class: "browse-form", "aria-label": "Choose trajectories" },
    sourceSelect("source", "Source", sources, source),
    filterFields(params, page.facets.datasets),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/trajectories?${formParams(form).toString()}`;
  });
  (form.querySelector("#source") as HTMLSelectElement).addEventListener("change", () => form.requestSubmit());
  main.append(form);
  const go = (o: number) => {
    const p = new URLSearchParams(params);
    p.set("source", source);
    p.set("offset", String(o));
    location.hash = `#/trajectories?${p.toString()}`;
  };
  const summary = h("p", { class: "status", role: "status" }, `${page.matched} of ${page.total} trajectories match.`);
  main.append(summary, pager(page.matched, offset, limit, go));
  const list = h(
    "div",
    { class: "records" },
    page.items.map((r) => recordCard(r)),
  );
  main.append(list, pager(page.matched, offset, limit, go));
  announce(summary.textContent ?? "");
}

export async function comparePage(main: HTMLElement, signal: AbortSignal, params: URLSearchParams): Promise<void> {
  main.append(h("h1", null, "Compare two runs"));
  main.append(
    h(
      "p",
      { class: "lead" },
      "The same questions, side by side: choose two sources (evaluation results or a run's samples at a step).",
    ),
  );
  const sources = await listSources(signal);
  const a = params.get("a") ?? "";
  const b = params.get("b") ?? "";
  const only = params.get("only") === "differ";
  const form = h(
    "form",
    { class: "browse-form", "aria-label": "Choose two sources" },
    h(
      "div",
      { class: "field-row" },
      sourceSelect("a", "Left (A)", sources, a || null),
      sourceSelect("b", "Right (B)", sources, b || null),
    ),
    h(
      "div",
      { class: "field check" },
      h("input", { type: "checkbox", id: "only", name: "only", value: "differ", checked: only }),
      h("label", { for: "only" }, "Only questions where the answers or verdicts differ"),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Compare")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/compare?${formParams(form).toString()}`;
  });
  main.append(form);
  if (!a || !b) return;
  const offset = Number(params.get("offset") ?? 0) || 0;
  const limit = 10;
  const page = await api<ComparePage>(
    `/api/compare${qs({ a, b, only: only ? "differ" : undefined, offset, limit })}`,
    signal,
  );
  const go = (o: number) => {
    const p = new URLSearchParams(params);
    p.set("offset", String(o));
    location.hash = `#/compare?${p.toString()}`;
  };
  main.append(
    h("p", { class: "status", role: "status" }, `${page.matched} of ${page.total} shared questions shown.`),
    pager(page.matched, offset, limit, go),
  );
  const nameOf = (v: string) => sources.find((so) => so.value === v)?.label ?? v;
  for (const pair of page.items) {
    main.append(
      h(
        "section",
        { class: "pair", "aria-label": pair.question },
        h("h2", { class: "pair-q" }, pair.question),
        h(
          "div",
          { class: "pair-cols" },
          h("div", null, h("p", { class: "side" }, "A: ", nameOf(a)), recordCard(pair.a, { showQuestion: false })),
          h("div", null, h("p", { class: "side" }, "B: ", nameOf(b)), recordCard(pair.b, { showQuestion: false })),
        ),
      ),
    );
  }
  main.append(pager(page.matched, offset, limit, go));
}
