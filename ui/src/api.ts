/** The UI's access to the server's JSON routes (same origin), with the bearer token when the server wants one. */
import type { AgentRunSummary, AgentResultsSummary } from "../../src/server/agent-data.js";
import type { AgentTraceRecord } from "../../src/server/agent-views.js";

export type { AgentRunSummary, AgentResultsSummary, AgentTraceRecord };

export interface ServerInfo {
  mode: "agent" | "viewer";
  model: string | null;
  protocol: string | null;
  auth: boolean;
  runs: boolean;
  version: string;
  limits: { max_searches: number; max_tokens: number; timeout_s: number; top_k: number };
}

export interface RunDetail extends AgentRunSummary {
  config: Record<string, unknown> | null;
  samples: Array<{ step: number; file: string; size: number }>;
}

export interface RecordPage {
  source: string;
  total: number;
  matched: number;
  offset: number;
  items: AgentTraceRecord[];
  facets: { datasets: string[]; reward_range: [number, number] | null; retrievals_max: number };
}

export interface ComparePage {
  a: string;
  b: string;
  total: number;
  matched: number;
  offset: number;
  items: Array<{ question: string; a: AgentTraceRecord; b: AgentTraceRecord }>;
}

const TOKEN_KEY = "searchrl.token";

export function getToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(t: string): void {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage unavailable */
  }
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function api<T>(path: string, signal?: AbortSignal): Promise<T> {
  const token = getToken();
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const e = body?.error;
    const msg = typeof e === "string" ? e : (e?.message ?? `HTTP ${res.status}`);
    throw new ApiError(msg, res.status);
  }
  return body as T;
}

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : "";
}

let infoPromise: Promise<ServerInfo> | null = null;
export function serverInfo(): Promise<ServerInfo> {
  infoPromise ??= api<ServerInfo>("/api/info");
  return infoPromise;
}

/** Every browsable source: each run's sample steps and each results file. */
export async function listSources(
  signal?: AbortSignal,
): Promise<Array<{ group: string; value: string; label: string }>> {
  const [runs, results] = await Promise.all([
    api<{ runs: AgentRunSummary[] }>("/api/runs", signal),
    api<{ results: AgentResultsSummary[] }>("/api/results", signal),
  ]);
  const out: Array<{ group: string; value: string; label: string }> = [];
  for (const r of results.results) out.push({ group: "Evaluation results", value: `results:${r.name}`, label: r.name });
  for (const run of runs.runs) {
    if (run.sample_steps === 0) continue;
    const s = await api<{ steps: Array<{ step: number }> }>(
      `/api/runs/${encodeURIComponent(run.name)}/samples`,
      signal,
    );
    for (const st of s.steps)
      out.push({
        group: `Run ${run.name}`,
        value: `run:${run.name}@${st.step}`,
        label: `${run.name} · step ${st.step}`,
      });
  }
  return out;
}
