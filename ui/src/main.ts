/** The searchrl web UI: hash routes for Ask, Runs, Trajectories and Compare. No framework; see docs/ui.md. */
import { ApiError, getToken, serverInfo, setToken } from "./api.js";
import { clear, h } from "./dom.js";
import { askPage } from "./pages/ask.js";
import { runPage, runsPage } from "./pages/runs.js";
import { comparePage, trajectoriesPage } from "./pages/trajectories.js";

type Page = (main: HTMLElement, signal: AbortSignal, params: URLSearchParams) => Promise<void>;

const ROUTES: Array<{ path: string; title: string; page: Page; needsRuns?: boolean; needsAgent?: boolean }> = [
  { path: "ask", title: "Ask", page: askPage, needsAgent: true },
  { path: "runs", title: "Runs", page: runsPage, needsRuns: true },
  { path: "trajectories", title: "Trajectories", page: trajectoriesPage, needsRuns: true },
  { path: "compare", title: "Compare", page: comparePage, needsRuns: true },
];

let current: AbortController | null = null;

function parseHash(): { path: string; rest: string; params: URLSearchParams } {
  const raw = location.hash.replace(/^#\/?/, "");
  const [p, q] = [raw.split("?")[0], raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : ""];
  const [first, ...rest] = p.split("/");
  return { path: first, rest: rest.map(decodeURIComponent).join("/"), params: new URLSearchParams(q) };
}

async function defaultRoute(): Promise<string> {
  const info = await serverInfo();
  return info.mode === "agent" ? "ask" : "runs";
}

async function route(): Promise<void> {
  current?.abort();
  const ac = new AbortController();
  current = ac;
  const main = document.getElementById("main") as HTMLElement;
  const focusedAtStart = document.activeElement;
  const { rest, params } = parseHash();
  let { path } = parseHash();
  if (!path) {
    path = await defaultRoute();
    history.replaceState(null, "", `#/${path}`);
  }
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav.site a[data-route]")) {
    if (a.dataset.route === path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const r = ROUTES.find((x) => x.path === path);
  clear(main);
  main.setAttribute("aria-busy", "true");
  const info = await serverInfo().catch(() => null);
  try {
    if (!r) {
      main.append(
        h("h1", null, "Not found"),
        h(
          "p",
          null,
          "No page ",
          h("code", null, location.hash),
          ". ",
          h("a", { href: "#/" }, "Go to the start page"),
          ".",
        ),
      );
    } else if (r.needsRuns && info && !info.runs) {
      main.append(
        h("h1", null, r.title),
        h(
          "p",
          { class: "notice" },
          "This server has no runs folder: start it with ",
          h("code", null, "--runs DIR"),
          ".",
        ),
      );
    } else if (path === "runs" && rest) {
      document.title = `${rest} · Runs · searchrl`;
      await runPage(main, ac.signal, rest);
    } else {
      document.title = `${r.title} · searchrl`;
      await r.page(main, ac.signal, params);
    }
  } catch (err) {
    if (ac.signal.aborted) return;
    const msg = err instanceof Error ? err.message : String(err);
    main.append(h("p", { class: "error", role: "alert" }, msg));
    if (err instanceof ApiError && err.status === 401)
      main.append(h("p", null, "This server needs a token: enter it in the field at the top of the page."));
  } finally {
    if (current === ac) main.removeAttribute("aria-busy");
  }
  // Move focus to the new page's heading for keyboard and screen-reader users (not on the first load), unless the
  // user moved focus elsewhere while the page loaded (never steal it from a control they are on).
  const active = document.activeElement;
  const focusUntouched =
    active === focusedAtStart || active === null || active === document.body || main.contains(active);
  if (routedOnce && focusUntouched && current === ac) {
    const h1 = main.querySelector("h1") as HTMLElement | null;
    h1?.setAttribute("tabindex", "-1");
    h1?.focus();
  }
  routedOnce = true;
}
let routedOnce = false;

async function header(): Promise<void> {
  const info = await serverInfo().catch(() => null);
  const slot = document.getElementById("server-info") as HTMLElement;
  if (!info) {
    slot.textContent = "server unreachable";
    return;
  }
  const parts: Array<HTMLElement | string> = [info.mode === "agent" ? `agent · ${info.model ?? ""}` : "viewer"];
  if (info.auth) {
    const input = h("input", { id: "token", type: "password", autocomplete: "off", value: getToken(), size: 12 });
    const form = h(
      "form",
      { class: "token-form" },
      h("label", { for: "token" }, "Token"),
      input,
      h("button", { type: "submit" }, "Save"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      void route();
    });
    parts.push(form);
  }
  slot.replaceChildren(...parts);
  for (const r of ROUTES) {
    const a = document.querySelector<HTMLAnchorElement>(`nav.site a[data-route="${r.path}"]`);
    if (a && ((r.needsAgent && info.mode !== "agent") || (r.needsRuns && !info.runs)))
      a.parentElement?.setAttribute("hidden", "");
  }
}

// The skip link must not change the hash (routes live there): it only moves focus.
document.querySelector(".skip-link")?.addEventListener("click", (ev) => {
  ev.preventDefault();
  document.getElementById("main")?.focus();
});
window.addEventListener("hashchange", () => void route());
void header().then(route);
