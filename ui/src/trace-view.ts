/**
 * Renders an agent trace: reasoning text, each query as a chip with its documents expandable, recalled (internal)
 * facts, and the answer highlighted. The same view shows a live trace (updated in place as events arrive) and
 * recorded trajectories from runs and evaluations.
 */
import type { AgentPassage, AgentTrace, AgentTraceStep } from "../../src/server/agent-trace.js";
import { fmtMs, fmtNum, h } from "./dom.js";

function stepSignature(s: AgentTraceStep): string {
  switch (s.kind) {
    case "reasoning":
      return `r:${s.text.length}`;
    case "query":
      return `q:${s.index}:${s.query.length}:${s.passages ? s.passages.length : -1}`;
    case "internal":
    case "answer":
      return `${s.kind[0]}:${s.text.length}:${s.complete}`;
  }
}

function passageItem(p: AgentPassage): HTMLLIElement {
  const hasHead = p.title !== "" || p.id !== "" || typeof p.score === "number";
  return h(
    "li",
    { class: "doc" },
    hasHead
      ? h(
          "p",
          { class: "doc-head" },
          h("span", { class: "doc-title" }, p.title || "(untitled)"),
          p.id ? h("span", { class: "doc-id" }, ` #${p.id}`) : null,
          typeof p.score === "number" ? h("span", { class: "doc-score" }, ` score ${fmtNum(p.score)}`) : null,
        )
      : null,
    h("p", { class: "doc-text" }, p.text),
  );
}

function renderStep(s: AgentTraceStep, live: boolean): HTMLElement {
  switch (s.kind) {
    case "reasoning": {
      const text = s.text.replace(/^\s+|\s+$/g, "");
      return h("li", { class: "step step-reasoning", hidden: text === "" }, h("p", { class: "reasoning" }, text));
    }
    case "query": {
      const n = s.index >= 0 ? s.index + 1 : null;
      const chip = h(
        "span",
        { class: "chip", "data-testid": "query-chip" },
        h("span", { class: "chip-icon", "aria-hidden": "true" }, "⌕"),
        h("span", { class: "visually-hidden" }, n ? `Search ${n}: ` : "Search being written: "),
        s.query.trim() || "…",
      );
      let docs: HTMLElement;
      if (s.passages) {
        const label = `${s.passages.length} document${s.passages.length === 1 ? "" : "s"}${s.latency_ms !== undefined ? ` · ${fmtMs(s.latency_ms)}` : ""}`;
        docs = h(
          "details",
          { class: "docs" },
          h("summary", null, label),
          h("ol", { class: "doc-list" }, s.passages.map(passageItem)),
        );
      } else {
        docs = h(
          "span",
          { class: "pending" },
          live && s.index >= 0 ? "searching…" : live ? "" : "no documents recorded",
        );
      }
      return h("li", { class: "step step-query" }, chip, " ", docs);
    }
    case "internal":
      return h(
        "li",
        { class: "step step-internal" },
        h("span", { class: "label" }, "Recalled"),
        " ",
        h("span", { class: "internal-text" }, s.text.trim()),
      );
    case "answer":
      return h(
        "li",
        { class: "step step-answer" },
        h("span", { class: "label" }, "Answer"),
        " ",
        h("mark", { class: "answer-text" }, s.text.trim()),
      );
  }
}

export class TraceView {
  readonly el: HTMLOListElement;
  private rendered: Array<{ sig: string; el: HTMLElement }> = [];

  constructor(private readonly live = false) {
    this.el = h("ol", { class: "trace", "aria-label": "Reasoning trace" });
  }

  /** Bring the view up to date with `trace` (only changed steps are re-rendered; open document lists stay open). */
  update(trace: AgentTrace): void {
    trace.steps.forEach((step, i) => {
      const sig = stepSignature(step);
      const old = this.rendered[i];
      if (old && old.sig === sig) return;
      const el = renderStep(step, this.live && !trace.done);
      if (old) {
        const wasOpen = old.el.querySelector("details")?.open ?? false;
        if (wasOpen) el.querySelector("details")?.setAttribute("open", "");
        old.el.replaceWith(el);
        this.rendered[i] = { sig, el };
      } else {
        this.el.append(el);
        this.rendered.push({ sig, el });
      }
    });
    while (this.rendered.length > trace.steps.length) this.rendered.pop()?.el.remove();
    if (trace.done) {
      // Queries still marked "searching…" when the trace ended.
      for (const p of this.el.querySelectorAll(".pending"))
        if (p.textContent === "searching…") p.textContent = "no documents";
    }
  }
}

/** A static rendering of a whole trace. */
export function renderTrace(trace: AgentTrace): HTMLElement {
  const v = new TraceView(false);
  v.update(trace);
  return v.el;
}

/** One line of facts: retrievals, latency, tokens, finish. */
export function traceFacts(trace: AgentTrace, latencyMs?: number | null): HTMLElement {
  const items: Array<[string, string]> = [["Retrievals", String(trace.retrievals)]];
  const ms = latencyMs ?? trace.timings?.total_ms ?? null;
  if (ms !== null) items.push(["Latency", fmtMs(ms)]);
  if (trace.timings) items.push(["Retrieval time", fmtMs(trace.timings.retrieval_ms)]);
  if (trace.usage) items.push(["Generated tokens", String(trace.usage.completion_tokens)]);
  if (trace.finish)
    items.push([
      "Finish",
      trace.finish + (trace.stop_reason && trace.stop_reason !== trace.finish ? ` (${trace.stop_reason})` : ""),
    ]);
  return h(
    "dl",
    { class: "facts" },
    items.map(([k, v]) =>
      h("div", null, h("dt", null, k), h("dd", { "data-fact": k.toLowerCase().replace(/\s+/g, "-") }, v)),
    ),
  );
}
