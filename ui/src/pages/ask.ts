/** Ask: type a question and watch the agent's trace live. */
import { AgentClient, AgentClientError } from "../../../src/server/agent-client.js";
import { getToken, serverInfo } from "../api.js";
import { announce, fmtMs, h } from "../dom.js";
import { TraceView, traceFacts } from "../trace-view.js";

let lastQuestion = "";

export async function askPage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  const info = await serverInfo();
  main.append(h("h1", null, "Ask the agent"));
  if (info.mode !== "agent") {
    main.append(
      h(
        "p",
        { class: "notice" },
        "This server only shows runs and results (it was started with ",
        h("code", null, "searchrl ui"),
        "). Start ",
        h("code", null, "searchrl serve agent"),
        " to ask questions.",
      ),
    );
    return;
  }
  main.append(
    h(
      "p",
      { class: "lead" },
      "Model ",
      h("code", null, info.model ?? "?"),
      " · protocol ",
      h("code", null, info.protocol ?? "?"),
    ),
  );

  const question = h("textarea", {
    id: "question",
    name: "question",
    rows: 3,
    required: true,
    "aria-describedby": "question-help",
  });
  question.value = lastQuestion;
  const num = (id: string, label: string, value: number | "", min: number, max: number, stepAttr = "1") =>
    h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      h("input", { id, name: id, type: "number", min, max, step: stepAttr, value }),
    );
  const submit = h("button", { type: "submit", class: "primary" }, "Ask");
  const stop = h("button", { type: "button", disabled: true }, "Stop");
  const form = h(
    "form",
    { class: "ask-form", "aria-label": "Ask a question" },
    h(
      "div",
      { class: "field" },
      h("label", { for: "question" }, "Question"),
      question,
      h("p", { id: "question-help", class: "help" }, "Press Ctrl+Enter to ask."),
    ),
    h(
      "details",
      { class: "options" },
      h("summary", null, "Options"),
      h(
        "div",
        { class: "field-row" },
        num("max-searches", "Max searches", info.limits.max_searches, 0, info.limits.max_searches),
        num("max-tokens", "Max tokens", info.limits.max_tokens, 1, info.limits.max_tokens),
        num("temperature", "Temperature", 0, 0, 2, "0.1"),
        num("top-k", "Documents per query", info.limits.top_k, 1, 50),
      ),
    ),
    h("div", { class: "actions" }, submit, stop),
  );
  const status = h("p", { class: "status", role: "status" });
  const output = h("section", { class: "live-trace", "aria-labelledby": "trace-heading" });
  main.append(form, status, output);

  let current: { abort(): void } | null = null;
  let stopped = false;
  signal.addEventListener("abort", () => current?.abort());
  stop.addEventListener("click", () => {
    stopped = true;
    current?.abort();
  });
  question.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = question.value.trim();
    if (!q) return;
    lastQuestion = q;
    const val = (id: string) => {
      const v = (form.querySelector(`#${id}`) as HTMLInputElement).value;
      return v === "" ? undefined : Number(v);
    };
    const client = new AgentClient({ baseUrl: "", token: getToken() || undefined });
    const stream = client.stream(q, {
      maxSearches: val("max-searches"),
      maxTokens: val("max-tokens"),
      temperature: val("temperature"),
      topK: val("top-k"),
    });
    current = stream;
    stopped = false;
    submit.disabled = true;
    stop.disabled = false;
    output.replaceChildren();
    const view = new TraceView(true);
    const answerBox = h(
      "div",
      { class: "answer-box", "data-testid": "answer", hidden: true },
      h("h3", null, "Answer"),
      h("p", { class: "answer-final" }),
    );
    const facts = h("div", { class: "facts-wrap" });
    output.append(
      h("h2", { id: "trace-heading" }, "Trace"),
      h("p", { class: "question-echo" }, q),
      view.el,
      answerBox,
      facts,
    );
    const t0 = performance.now();
    status.textContent = "Thinking…";
    let frame = 0;
    const render = () => {
      frame = 0;
      view.update(stream.trace);
      const ms = performance.now() - t0;
      facts.replaceChildren(traceFacts(stream.trace, ms));
      if (stream.trace.answer !== null) {
        answerBox.hidden = false;
        (answerBox.querySelector(".answer-final") as HTMLElement).textContent = stream.trace.answer || "(empty answer)";
      }
    };
    try {
      for await (const e of stream) {
        if (e.type === "query") status.textContent = `Searching: ${e.query}`;
        else if (e.type === "documents")
          status.textContent = `Got ${e.passages.length} documents in ${fmtMs(e.latency_ms)}; reading…`;
        if (!frame) frame = requestAnimationFrame(render);
      }
      if (frame) cancelAnimationFrame(frame);
      render();
      const res = await stream.result();
      status.textContent = `Done in ${fmtMs(performance.now() - t0)} with ${stream.trace.retrievals} retrieval${stream.trace.retrievals === 1 ? "" : "s"}.`;
      announce(`Answer: ${res.answer || "no answer"}`);
      if (!res.answer) {
        answerBox.hidden = false;
        (answerBox.querySelector(".answer-final") as HTMLElement).textContent = "(no answer)";
      }
    } catch (err) {
      if (frame) cancelAnimationFrame(frame);
      render();
      status.textContent = stopped ? "Stopped." : `Error: ${err instanceof Error ? err.message : String(err)}`;
      if (err instanceof AgentClientError && err.status === 401)
        status.textContent += " Enter the server's token at the top of the page.";
    } finally {
      submit.disabled = false;
      stop.disabled = true;
      current = null;
    }
  });
  question.focus();
}
