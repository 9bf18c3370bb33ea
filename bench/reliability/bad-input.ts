/**
 * Bad HTTP input for the retrieval, reward and agent servers: for each route, a list of requests that must all be
 * answered with a 4xx JSON error naming the problem (wrong types, missing fields, invalid JSON, wrong content types,
 * bodies over the limit, 200k-query batches, out-of-range k / topk / max_tokens, NUL bytes, lone surrogates, ...).
 * Shared by test/server-hardening.test.ts (a sample) and bench/reliability.ts (all of them).
 */
import http from "node:http";

export interface BadCase {
  name: string;
  /** Raw body sent as is. */
  body: string | Buffer;
  /** Content-Type header (null: none). */
  contentType: string | null;
  /** A word the error message must contain (the field or the problem), case-insensitive. */
  mentions?: string;
}

export interface RouteSpec {
  route: string;
  /** A valid body (the server answers it with 200). */
  valid: Record<string, unknown>;
  /** Required fields. */
  required: string[];
  /** Per field: values of a wrong type or out of range, each with the word the error must mention (default the field). */
  invalid: Record<string, unknown[]>;
  /**
   * Where NUL bytes / lone surrogates are planted: a field holding text (a string, or a string array whose last entry
   * is replaced), or a function building a body with the placeholder string where the text goes.
   */
  textFields: Array<string | { name: string; body: (placeholder: string) => Record<string, unknown> }>;
  /** Body limit of the route in bytes (a body just over it must get 413). */
  bodyLimit: number;
  /** Field of the query list, for the 200k-query batch (omit when the route has none). */
  batchField?: string;
}

const JSON_CT = "application/json";

/** Raw JSON text of a value with chosen string escapes kept (JSON.stringify would keep lone surrogates escaped too). */
function raw(v: unknown): string {
  return JSON.stringify(v);
}

/** Every request of `spec` that must be refused with a 4xx JSON error. */
export function badCases(spec: RouteSpec): BadCase[] {
  const out: BadCase[] = [];
  const valid = raw(spec.valid);
  const add = (name: string, body: string | Buffer, contentType: string | null = JSON_CT, mentions?: string) =>
    out.push({ name, body, contentType, ...(mentions ? { mentions } : {}) });

  // invalid JSON: every proper prefix of a valid body is invalid, plus classic breakages
  const cuts = new Set<number>();
  for (let i = 1; i < valid.length; i += Math.max(1, Math.floor(valid.length / 32))) cuts.add(i);
  cuts.add(valid.length - 1);
  for (const i of cuts) add(`truncated at ${i}`, valid.slice(0, i), JSON_CT, "json");
  for (const [name, body] of [
    ["empty body", ""],
    ["whitespace", "   \n"],
    ["single quotes", valid.replace(/"/g, "'")],
    ["trailing comma", valid.replace(/}$/, ",}")],
    ["trailing garbage", valid + " x"],
    ["two documents", valid + valid],
    ["NaN literal", valid.replace(/}$/, ',"x":NaN}')],
    ["comment", "/* c */" + valid],
    ["unquoted keys", valid.replace(/"(\w+)":/g, "$1:")],
    ["bare word", "hello"],
    ["binary", Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x7b])],
  ] as Array<[string, string | Buffer]>)
    add(`invalid JSON: ${name}`, body, JSON_CT);
  // prototype pollution attempts are refused by the JSON parser
  add("__proto__ key", valid.replace(/^{/, '{"__proto__":{"polluted":1},'), JSON_CT);
  add("constructor.prototype key", valid.replace(/^{/, '{"constructor":{"prototype":{"polluted":1}},'), JSON_CT);

  // wrong content type
  for (const ct of [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "image/png",
    null,
  ])
    add(`content-type ${ct ?? "(none)"}`, valid, ct);

  // roots that are not objects
  for (const body of ["null", "1", '"text"', "[]", "true", "[{}]", "{}"]) add(`root ${body}`, body, JSON_CT);

  // missing required fields
  for (const f of spec.required) {
    const o = { ...spec.valid };
    delete o[f];
    add(`missing ${f}`, raw(o), JSON_CT, f);
  }
  // wrong types and out-of-range values
  for (const [f, values] of Object.entries(spec.invalid)) {
    for (const v of values) add(`${f} = ${raw(v).slice(0, 40)}`, raw({ ...spec.valid, [f]: v }), JSON_CT, f);
  }
  // duplicate key: the last (bad) value wins
  const f0 = Object.keys(spec.invalid)[0];
  add(`duplicate ${f0}`, valid.replace(/}$/, `,${raw(f0)}:${raw(spec.invalid[f0][0])}}`), JSON_CT, f0);

  // NUL bytes and lone surrogates in every text field (JSON escapes, as a client library would send them)
  const badTexts: Array<[string, string]> = [
    ["NUL", "a\\u0000b"],
    ["leading NUL", "\\u0000capital"],
    ["only NUL", "\\u0000"],
    ["lone high surrogate", "x\\ud800"],
    ["lone low surrogate", "\\udfffy"],
    ["reversed pair", "\\ude00\\ud83d"],
    ["two highs", "\\ud83d\\ud83d"],
  ];
  const placeholder = "__BAD_TEXT__";
  for (const f of spec.textFields) {
    const label = typeof f === "string" ? f : f.name;
    let withPlaceholder: Record<string, unknown>;
    if (typeof f === "string") {
      const v = spec.valid[f];
      withPlaceholder = { ...spec.valid, [f]: Array.isArray(v) ? [...v.slice(0, -1), placeholder] : placeholder };
    } else withPlaceholder = f.body(placeholder);
    for (const [name, esc] of badTexts) {
      const body = raw(withPlaceholder).replace(`"${placeholder}"`, `"${esc}"`);
      add(`${label}: ${name}`, body, JSON_CT, name.includes("NUL") ? "NUL" : "surrogate");
    }
  }
  // a key with a NUL
  add("key with NUL", valid.replace(/}$/, ',"k\\u0000ey":1}'), JSON_CT, "NUL");

  // a body just over the limit, and a much larger one
  if (spec.batchField) {
    const fill = "x".repeat(1000);
    const over = raw({
      ...spec.valid,
      [spec.batchField]: Array.from({ length: Math.ceil(spec.bodyLimit / 1000) + 8 }, () => fill),
    });
    add("body over the limit", over, JSON_CT, "too large");
    // 200k queries in one request: under the byte limit, over the query-count limit
    const batch = raw({ ...spec.valid, [spec.batchField]: Array.from({ length: 200_000 }, (_, i) => `q${i % 10}`) });
    if (batch.length < spec.bodyLimit) add("200k-query batch", batch, JSON_CT, spec.batchField);
    else add("200k-query batch (over the byte limit)", batch, JSON_CT, "too large");
  } else {
    add("body over the limit", raw({ ...spec.valid, pad: "x".repeat(spec.bodyLimit + 1024) }), JSON_CT, "too large");
  }
  add("body 3x the limit", Buffer.alloc(spec.bodyLimit * 3, 0x20), JSON_CT, "too large");
  return out;
}

export interface CaseResult {
  c: BadCase;
  status: number;
  /** The error message the server sent (JSON `error` or `error.message`), null when the body was not such JSON. */
  message: string | null;
  ok: boolean;
  why?: string;
}

/** Send one raw request; resolves with status and body text (status 0 and the error when the connection failed). */
export function sendRaw(
  url: string,
  c: { body: string | Buffer; contentType: string | null },
  headers: Record<string, string> = {},
  agent?: http.Agent,
): Promise<{ status: number; text: string; error?: string }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const body = typeof c.body === "string" ? Buffer.from(c.body, "utf8") : c.body;
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent,
        headers: {
          ...(c.contentType ? { "content-type": c.contentType } : {}),
          "content-length": String(body.length),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (e) => resolve({ status: 0, text: "", error: e.message }));
      },
    );
    req.on("error", (e) => resolve({ status: 0, text: "", error: e.message }));
    req.end(body);
  });
}

/** Run cases against `baseUrl + spec.route`; each must get a 4xx JSON error whose message names the problem. */
export async function runBadCases(
  baseUrl: string,
  route: string,
  cases: BadCase[],
  headers: Record<string, string> = {},
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const agent = new http.Agent({ keepAlive: false });
  for (const c of cases) {
    const r = await sendRaw(baseUrl + route, c, headers, agent);
    let message: string | null = null;
    try {
      const j = JSON.parse(r.text) as { error?: unknown };
      if (typeof j.error === "string") message = j.error;
      else if (j.error && typeof (j.error as { message?: unknown }).message === "string")
        message = (j.error as { message: string }).message;
    } catch {
      message = null;
    }
    let why: string | undefined;
    if (r.status < 400 || r.status >= 500) why = `status ${r.status}${r.error ? ` (${r.error})` : ""}`;
    else if (message === null || message.length < 8) why = `no JSON error message: ${r.text.slice(0, 80)}`;
    else if (c.mentions && !message.toLowerCase().includes(c.mentions.toLowerCase()))
      why = `message does not mention "${c.mentions}": ${message.slice(0, 160)}`;
    results.push({ c, status: r.status, message, ok: why === undefined, ...(why ? { why } : {}) });
  }
  agent.destroy();
  return results;
}

/** The route specs of the three servers (valid bodies need a server set up as in the test/bench). */
export function retrievalSpecs(o: { maxK: number; maxQueries: number; bodyLimit: number }): RouteSpec[] {
  const queriesBad: unknown[] = [
    null,
    "capital",
    3,
    true,
    {},
    [],
    [1],
    [null],
    [["a"]],
    [{}],
    ["a", 2],
    ["x".repeat(9000)],
  ];
  const intBad = (f: string) => [0, -1, 1.5, o.maxK + 1, 1e9, "3", true, [3], {}, `${f}`];
  return [
    {
      route: "/queries",
      valid: { queries: ["capital of France"], k: 2 },
      required: ["queries"],
      invalid: { queries: queriesBad, k: [...intBad("k"), null] },
      textFields: ["queries"],
      bodyLimit: o.bodyLimit,
      batchField: "queries",
    },
    {
      route: "/retrieve",
      valid: { queries: ["capital of France"], topk: 2, return_scores: true },
      required: ["queries"],
      invalid: {
        queries: queriesBad,
        topk: [-1, 1.5, o.maxK + 1, 1e9, "3", true, [3], {}],
        return_scores: ["yes", 1, 0, [], {}, "true"],
      },
      textFields: ["queries"],
      bodyLimit: o.bodyLimit,
      batchField: "queries",
    },
  ];
}

export function rewardSpec(o: { bodyLimit: number; question: string; answer: string }): RouteSpec {
  const text = `${o.question} <answer> ${o.answer} </answer>`;
  return {
    route: "/get_reward",
    valid: { query: [text], labels: [o.answer] },
    required: ["query"],
    invalid: {
      query: [null, "text", 3, true, {}, [1], [null], [["a"]], [{}], ["a", 2]],
      labels: ["a", 3, true, {}, [1], [{}], [[1]], ["a", "b"], []],
      prompts: ["p", 3, {}, [1], [null], ["a", "b"]],
    },
    textFields: ["query", "labels"],
    bodyLimit: o.bodyLimit,
    batchField: "query",
  };
}

export function agentSpec(o: {
  bodyLimit: number;
  maxTokens: number;
  maxSearches: number;
  timeoutS: number;
}): RouteSpec {
  return {
    route: "/v1/chat/completions",
    valid: { messages: [{ role: "user", content: "What is the capital of France?" }], max_tokens: 256 },
    required: ["messages"],
    invalid: {
      messages: [
        null,
        "hi",
        3,
        {},
        [],
        [1],
        [null],
        [{}],
        [{ role: "robot", content: "x" }],
        [{ role: "user", content: 3 }],
      ],
      max_tokens: [0, -1, 1.5, o.maxTokens + 1, 1e12, "256", true, [1]],
      max_searches: [-1, 1.5, o.maxSearches + 1, "2", {}],
      timeout: [0, -1, o.timeoutS + 1, "10"],
      temperature: [-1, 3, "0.5"],
      top_p: [0, 1.5, "1"],
      top_k: [0, 51, 1.5],
      n: [2, 0],
      stream: ["yes", 1],
    },
    textFields: [
      "model",
      { name: "messages.0.content", body: (t) => ({ messages: [{ role: "user", content: t }] }) },
      {
        name: "messages.1.content[0].text",
        body: (t) => ({
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: [{ type: "text", text: t }] },
          ],
        }),
      },
    ],
    bodyLimit: o.bodyLimit,
  };
}
