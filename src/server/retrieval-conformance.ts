/**
 * A conformance suite for retrieval servers: runs against any base URL implementing the R1-Searcher `/queries` and/or
 * the Search-R1 `/retrieve` contract (ecosystem-contracts §1, §2) and reports each check.
 *
 * Levels: "must" = the contract as its clients rely on it (shapes, k handling, batch order, determinism);
 * "should" = robustness and extensions (4xx JSON on bad input instead of a crash, bare documents for
 * `return_scores: false`, `/health`, `/openapi.json`). A server conforms when no "must" check fails.
 *
 * Usable from tests and from the CLI (`searchrl serve retrieval --check URL`).
 */

export type RetrievalContract = "queries" | "retrieve";

export interface RetrievalConformanceOptions {
  /** Contracts to check (default both). */
  contracts?: RetrievalContract[];
  /** Sample queries; at least one must have hits in the server's corpus (defaults are generic English questions). */
  queries?: string[];
  /** Run the bad-input checks (default true). */
  robustness?: boolean;
  /** Check /health and /openapi.json (default true; "should" level). */
  extensions?: boolean;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Size of the oversized body sent to test limits (default 8 MiB). */
  oversizedBytes?: number;
}

export interface RetrievalConformanceCheck {
  name: string;
  contract: RetrievalContract | "both" | "extension";
  level: "must" | "should";
  ok: boolean;
  detail?: string;
}

export interface RetrievalConformanceReport {
  url: string;
  ok: boolean;
  passed: number;
  failed: number;
  warnings: number;
  checks: RetrievalConformanceCheck[];
}

const DEFAULT_QUERIES = [
  "who founded the city",
  "the first letter of the alphabet",
  "president of the united states",
  "river in europe",
];

interface Res {
  status: number;
  json: unknown;
  contentType: string;
  text: string;
}

class CheckFailure extends Error {}

function need(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new CheckFailure(msg);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Run the suite against `baseUrl` (e.g. `http://127.0.0.1:5004`). */
export async function runRetrievalConformance(
  baseUrl: string,
  opts: RetrievalConformanceOptions = {},
): Promise<RetrievalConformanceReport> {
  const base = baseUrl.replace(/\/+$/, "");
  const contracts = opts.contracts ?? ["queries", "retrieve"];
  const qs = opts.queries && opts.queries.length > 0 ? opts.queries : DEFAULT_QUERIES;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const checks: RetrievalConformanceCheck[] = [];

  async function send(method: "GET" | "POST", route: string, body?: unknown, rawBody?: string): Promise<Res> {
    const res = await fetch(`${base}${route}`, {
      method,
      headers: body !== undefined || rawBody !== undefined ? { "content-type": "application/json" } : {},
      body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, contentType: res.headers.get("content-type") ?? "", text };
  }

  async function check(
    name: string,
    contract: RetrievalConformanceCheck["contract"],
    level: RetrievalConformanceCheck["level"],
    fn: () => Promise<string | void>,
  ): Promise<void> {
    try {
      const detail = await fn();
      checks.push({ name, contract, level, ok: true, ...(detail ? { detail } : {}) });
    } catch (err) {
      const msg = err instanceof CheckFailure ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
      checks.push({ name, contract, level, ok: false, detail: msg });
    }
  }

  const ok200 = (r: Res, what: string) => need(r.status === 200, `${what}: HTTP ${r.status} ${r.text.slice(0, 200)}`);

  // ---- R1-Searcher /queries -----------------------------------------------------------------------------------------
  const queriesLists = async (queries: string[], k?: number): Promise<string[][]> => {
    const r = await send("POST", "/queries", k === undefined ? { queries } : { queries, k });
    ok200(r, "POST /queries");
    need(isObj(r.json), "response is not a JSON object");
    const answers = r.json.answers;
    need(Array.isArray(answers), 'response has no "answers" list');
    need(answers.length === queries.length, `${answers.length} answer lists for ${queries.length} queries`);
    for (const a of answers) {
      need(Array.isArray(a), "an answer is not a list");
      for (const line of a) need(typeof line === "string", "an answer line is not a string");
    }
    return answers as string[][];
  };

  if (contracts.includes("queries")) {
    await check("/queries: shape, k respected, queries echoed", "queries", "must", async () => {
      const r = await send("POST", "/queries", { queries: [qs[0]], k: 2 });
      ok200(r, "POST /queries");
      need(isObj(r.json) && Array.isArray(r.json.answers), 'no "answers"');
      const answers = r.json.answers as unknown[];
      need(answers.length === 1 && Array.isArray(answers[0]), "expected one answer list");
      need((answers[0] as unknown[]).length <= 2, `k=2 returned ${(answers[0] as unknown[]).length} lines`);
      need(deepEqual(r.json.queries, [qs[0]]), `"queries" not echoed: ${JSON.stringify(r.json.queries)}`);
    });
    await check("/queries: at least one sample query has hits", "queries", "must", async () => {
      const lists = await queriesLists(qs, 3);
      need(
        lists.some((l) => l.length > 0),
        `no sample query returned a line (queries: ${JSON.stringify(qs)}; pass queries that match the corpus)`,
      );
    });
    await check("/queries: k defaults to 3", "queries", "must", async () => {
      const [five] = await queriesLists([qs[0]], 5);
      const [dflt] = await queriesLists([qs[0]]);
      need(dflt.length <= 3, `default returned ${dflt.length} lines`);
      if (five.length >= 3) need(dflt.length === 3, `default returned ${dflt.length} lines though 5 were available`);
    });
    await check("/queries: batch results equal single-query results, in order", "queries", "must", async () => {
      const batch = await queriesLists(qs, 3);
      for (let i = 0; i < qs.length; i++) {
        const [single] = await queriesLists([qs[i]], 3);
        need(deepEqual(single, batch[i]), `query ${i}: batch and single results differ`);
      }
    });
    await check("/queries: deterministic and prefix-consistent (top-3 of k=5 = k=3)", "queries", "should", async () => {
      const [a] = await queriesLists([qs[0]], 5);
      const [b] = await queriesLists([qs[0]], 5);
      need(deepEqual(a, b), "two identical requests gave different results");
      const [c] = await queriesLists([qs[0]], 3);
      need(deepEqual(a.slice(0, 3), c), "top-3 of k=5 differs from k=3");
    });
    await check("/queries: lines are raw corpus lines `id<TAB>...`", "queries", "should", async () => {
      const lists = await queriesLists(qs, 3);
      for (const l of lists)
        for (const line of l)
          need(
            /^\ufeff?[^\t\n]+\t/.test(line),
            `line without a leading id and TAB: ${JSON.stringify(line.slice(0, 80))}`,
          );
    });
  }

  // ---- Search-R1 /retrieve ------------------------------------------------------------------------------------------
  const retrieveLists = async (queries: string[], body: Record<string, unknown>): Promise<unknown[][]> => {
    const r = await send("POST", "/retrieve", { queries, ...body });
    ok200(r, "POST /retrieve");
    need(isObj(r.json) && Array.isArray(r.json.result), 'response has no "result" list');
    const result = r.json.result as unknown[];
    need(result.length === queries.length, `${result.length} result lists for ${queries.length} queries`);
    for (const l of result) need(Array.isArray(l), "a result is not a list");
    return result as unknown[][];
  };
  const hitDoc = (h: unknown): Record<string, unknown> => {
    need(isObj(h) && isObj(h.document), 'hit is not {"document": {...}, "score"}');
    need(typeof h.document.contents === "string", "document.contents is not a string");
    return h.document;
  };

  if (contracts.includes("retrieve")) {
    await check("/retrieve: scored hits, topk respected, scores non-increasing", "retrieve", "must", async () => {
      const lists = await retrieveLists(qs, { topk: 2, return_scores: true });
      need(
        lists.some((l) => l.length > 0),
        `no sample query returned a hit (queries: ${JSON.stringify(qs)}; pass queries that match the corpus)`,
      );
      for (const l of lists) {
        need(l.length <= 2, `topk=2 returned ${l.length} hits`);
        let prev = Infinity;
        for (const h of l) {
          hitDoc(h);
          const score = (h as Record<string, unknown>).score;
          need(typeof score === "number" && Number.isFinite(score), "hit.score is not a finite number");
          need(score <= prev + 1e-9, "scores are not in non-increasing order");
          prev = score;
        }
      }
    });
    await check("/retrieve: topk missing/null/0 → server default", "retrieve", "must", async () => {
      const missing = await retrieveLists([qs[0]], { return_scores: true });
      const nul = await retrieveLists([qs[0]], { topk: null, return_scores: true });
      const zero = await retrieveLists([qs[0]], { topk: 0, return_scores: true });
      need(deepEqual(missing, nul) && deepEqual(missing, zero), "topk missing, null and 0 give different results");
    });
    await check("/retrieve: batch results equal single-query results, in order", "retrieve", "must", async () => {
      const batch = await retrieveLists(qs, { topk: 3, return_scores: true });
      for (let i = 0; i < qs.length; i++) {
        const [single] = await retrieveLists([qs[i]], { topk: 3, return_scores: true });
        need(deepEqual(single, batch[i]), `query ${i}: batch and single results differ`);
      }
    });
    await check(
      "/retrieve: return_scores false → bare document objects (the documented shape)",
      "retrieve",
      "should",
      async () => {
        const scored = await retrieveLists(qs, { topk: 3, return_scores: true });
        const bare = await retrieveLists(qs, { topk: 3, return_scores: false });
        for (let i = 0; i < qs.length; i++) {
          need(bare[i].length === scored[i].length, "different hit counts with and without scores");
          bare[i].forEach((d, j) => {
            need(isObj(d) && typeof d.contents === "string" && !("document" in d), "hit is not a bare document object");
            need(deepEqual(d, hitDoc(scored[i][j])), "bare document differs from the scored hit's document");
          });
        }
      },
    );
    await check(
      '/retrieve: contents follow `"Title"\\ntext`, documents carry an id',
      "retrieve",
      "should",
      async () => {
        const lists = await retrieveLists(qs, { topk: 3, return_scores: true });
        for (const l of lists)
          for (const h of l) {
            const d = hitDoc(h);
            need(
              /^"[^\n]*"(\n|$)/.test(d.contents as string),
              `contents does not start with a quoted title line: ${JSON.stringify((d.contents as string).slice(0, 60))}`,
            );
            need(typeof d.id === "string" || typeof d.id === "number", "document has no id");
          }
      },
    );
  }

  if (contracts.includes("queries") && contracts.includes("retrieve")) {
    await check("both: /queries and /retrieve rank the same passages", "both", "should", async () => {
      const [lines] = await queriesLists([qs[0]], 3);
      const [hits] = await retrieveLists([qs[0]], { topk: 3, return_scores: true });
      need(lines.length === hits.length, `${lines.length} lines vs ${hits.length} hits`);
      lines.forEach((line, i) => {
        const id = line.split("\t")[0].replace("\ufeff", "");
        need(
          String(hitDoc(hits[i]).id) === id,
          `rank ${i + 1}: /queries id ${id} vs /retrieve id ${String(hitDoc(hits[i]).id)}`,
        );
      });
    });
    await check("both: concurrent requests are answered correctly", "both", "should", async () => {
      const [expectQ] = await queriesLists([qs[0]], 3);
      const [expectR] = await retrieveLists([qs[1 % qs.length]], { topk: 3, return_scores: true });
      const jobs = Array.from({ length: 16 }, (_, i) =>
        i % 2 === 0
          ? queriesLists([qs[0]], 3).then((x) => deepEqual(x[0], expectQ))
          : retrieveLists([qs[1 % qs.length]], { topk: 3, return_scores: true }).then((x) => deepEqual(x[0], expectR)),
      );
      const oks = await Promise.all(jobs);
      need(oks.every(Boolean), `${oks.filter((x) => !x).length} of 16 concurrent requests returned different results`);
    });
  }

  // ---- robustness -----------------------------------------------------------------------------------------------------
  if (opts.robustness !== false) {
    const routes: Array<{ route: string; contract: RetrievalContract; kField: string }> = [];
    if (contracts.includes("queries")) routes.push({ route: "/queries", contract: "queries", kField: "k" });
    if (contracts.includes("retrieve")) routes.push({ route: "/retrieve", contract: "retrieve", kField: "topk" });
    for (const { route, contract, kField } of routes) {
      const bad: Array<[string, unknown, string | undefined]> = [
        ["invalid JSON", undefined, "{not json"],
        ["missing queries", { [kField]: 3 }, undefined],
        ["queries not a list", { queries: "who", [kField]: 3 }, undefined],
        ["empty queries list", { queries: [], [kField]: 3 }, undefined],
        ["non-string query", { queries: [qs[0], 42], [kField]: 3 }, undefined],
        [`${kField} negative`, { queries: [qs[0]], [kField]: -1 }, undefined],
        [`${kField} not a number`, { queries: [qs[0]], [kField]: "3" }, undefined],
        [`${kField} huge`, { queries: [qs[0]], [kField]: 1_000_000_000 }, undefined],
      ];
      if (kField === "k") bad.push(["k zero", { queries: [qs[0]], k: 0 }, undefined]);
      for (const [label, body, raw] of bad) {
        await check(`${route}: ${label} → 4xx JSON error`, contract, "should", async () => {
          const r = await send("POST", route, body, raw);
          need(r.status >= 400 && r.status < 500, `HTTP ${r.status} (expected 4xx)`);
          need(r.contentType.includes("application/json") && r.json !== undefined, "error body is not JSON");
        });
      }
      await check(`${route}: oversized body → 4xx (413)`, contract, "should", async () => {
        const n = opts.oversizedBytes ?? 8 * 1024 * 1024;
        const filler = "x".repeat(1000);
        const queries = Array.from({ length: Math.ceil(n / 1003) }, () => filler);
        const r = await send("POST", route, undefined, JSON.stringify({ queries, [kField]: 1 }));
        need(r.status >= 400 && r.status < 500, `HTTP ${r.status} (expected 4xx)`);
      });
    }
  }

  // ---- extensions ---------------------------------------------------------------------------------------------------
  if (opts.extensions !== false) {
    await check("GET /health: JSON with index size and kind", "extension", "should", async () => {
      const r = await send("GET", "/health");
      ok200(r, "GET /health");
      need(isObj(r.json), "not a JSON object");
      need(typeof r.json.size === "number", "no numeric size");
      need(typeof r.json.kind === "string", "no kind");
    });
    await check("GET /openapi.json: describes the routes", "extension", "should", async () => {
      const r = await send("GET", "/openapi.json");
      ok200(r, "GET /openapi.json");
      need(isObj(r.json) && typeof r.json.openapi === "string" && isObj(r.json.paths), "not an OpenAPI document");
      for (const c of contracts) need(`/${c}` in (r.json.paths as Record<string, unknown>), `no path /${c}`);
    });
  }

  const failed = checks.filter((c) => !c.ok && c.level === "must").length;
  const warnings = checks.filter((c) => !c.ok && c.level === "should").length;
  return { url: base, ok: failed === 0, passed: checks.filter((c) => c.ok).length, failed, warnings, checks };
}

/** A readable report, one line per check. */
export function formatRetrievalConformanceReport(r: RetrievalConformanceReport): string {
  const lines = r.checks.map(
    (c) =>
      `${c.ok ? "PASS" : c.level === "must" ? "FAIL" : "WARN"}  [${c.level}] ${c.name}${c.ok || !c.detail ? "" : ` — ${c.detail}`}`,
  );
  lines.push(
    `${r.ok ? "CONFORMS" : "DOES NOT CONFORM"}: ${r.passed} passed, ${r.failed} failed (must), ${r.warnings} warnings (should) — ${r.url}`,
  );
  return lines.join("\n");
}
