/**
 * LLM-as-judge (ACC_L, r1-searcher.md §4.3): the exact upstream prompt, the verdict rules, and a small client for any
 * OpenAI-compatible `/v1/chat/completions` endpoint.
 *
 * The prompt text is the `LLM_JUDGE_PROMPT` entry of protocol-strings.json; metrics sits in the same layer as protocol
 * and cannot import it, so the string is kept here and a test asserts it equals the JSON entry byte for byte.
 */
import { z } from "zod";
import { requestJson } from "../util/http.js";
import { pyStrip } from "../util/pystr.js";
import { mapLimit } from "../util/concurrency.js";

/** Upstream judge prompt (note the trailing "\n    "); placeholders `{question}`, `{reference}`, `{prediction}`. */
export const LLM_JUDGE_PROMPT =
  "Given a Question and its Golden Answer, verify whether the Predicted Answer is correct. The prediction is correct if it fully aligns with the meaning and key information of the Golden Answer. Respond with True if the prediction is correct and False otherwise.\n\nQuestion: {question}\nGolden Answer: {reference}\nPredicted Answer: {prediction}\n    ";

/** A gold value as it appears in result files: a string, a list of strings, or a JSON boolean / number. */
export type JudgeReference = string | readonly string[] | boolean | number;

/** Python `repr` of a str (for list references, which upstream formats with `str(list)`). */
function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += "\\" + quote;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += ch;
  }
  return out + quote;
}

/**
 * The reference text upstream puts in the prompt: `false` (and anything `== False` in Python, i.e. 0) → "no",
 * `true` (and 1) → "yes", strings unchanged, lists as Python's `str(list)`.
 */
export function judgeReferenceText(ref: JudgeReference): string {
  if (ref === false || ref === 0) return "no";
  if (ref === true || ref === 1) return "yes";
  if (typeof ref === "number") return String(ref);
  if (typeof ref === "string") return ref;
  return "[" + ref.map(pyStrRepr).join(", ") + "]";
}

export interface JudgeInput {
  question: string;
  reference: JudgeReference;
  /** The raw `pred_ans`. */
  prediction: string;
}

/** The upstream judge prompt for one record (`.format(question=, reference=, prediction=)`). */
export function buildJudgePrompt(input: JudgeInput): string {
  const values: Record<string, string> = {
    question: input.question,
    reference: judgeReferenceText(input.reference),
    prediction: input.prediction,
  };
  return LLM_JUDGE_PROMPT.replace(/\{(question|reference|prediction)\}/g, (_m, k: string) => values[k]);
}

/** Upstream rule: a verdict is correct iff the reply is exactly "True". */
export function judgeVerdictStrict(output: string | null | undefined): boolean {
  return output === "True";
}

/**
 * Lenient verdict parse (not upstream; documented in docs/metrics.md): strip whitespace, surrounding markdown
 * emphasis/quotes/backticks and trailing punctuation, then read the first word case-insensitively:
 * true/yes/correct → true, false/no/incorrect → false. Anything else → null (unparseable).
 */
export function judgeVerdictLenient(output: string | null | undefined): boolean | null {
  if (typeof output !== "string") return null;
  let t = pyStrip(output)
    .replace(/^[\s*_`"'“”‘’]+/u, "")
    .toLowerCase();
  const m = /^(true|false|yes|no|correct|incorrect)(?![\p{L}\p{N}_])/u.exec(t);
  if (!m) return null;
  t = m[1];
  return t === "true" || t === "yes" || t === "correct";
}

export interface JudgeClientOptions {
  /** Base URL: `http://host:port` or `.../v1`; `/v1/chat/completions` (or `/chat/completions`) is appended. */
  baseUrl: string;
  apiKey?: string;
  /** Model name (upstream: "gpt-4o-mini"). */
  model?: string;
  /** Upstream: 1024. */
  maxTokens?: number;
  /** Upstream leaves the API default; set to pin it. */
  temperature?: number;
  timeoutMs?: number;
  /** Attempts including the first (default 3; 429/5xx and network errors are retried with backoff). */
  attempts?: number;
  backoffMs?: number;
}

const ChatCompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
  model: z.string().optional(),
});

export interface JudgeResult {
  /** The raw reply (what upstream stores as `gpt4o_output`). */
  output: string;
  /** Strict upstream verdict (`output === "True"`). */
  correct: boolean;
  /** Lenient verdict (null when unparseable). */
  lenient: boolean | null;
}

export interface JudgeClient {
  readonly url: string;
  readonly model: string;
  /** Ask the judge about one record. */
  judge(input: JudgeInput, signal?: AbortSignal): Promise<JudgeResult>;
  /** Judge many records with at most `concurrency` requests in flight; results keep the input order. */
  judgeMany(inputs: readonly JudgeInput[], concurrency?: number): Promise<JudgeResult[]>;
}

/** Completion URL for a base URL (see `JudgeClientOptions.baseUrl`). */
export function chatCompletionsUrl(baseUrl: string): string {
  const b = baseUrl.replace(/\/+$/, "");
  if (b.endsWith("/chat/completions")) return b;
  return b.endsWith("/v1") ? `${b}/chat/completions` : `${b}/v1/chat/completions`;
}

/** A judge client for an OpenAI-compatible chat-completions endpoint (one user message, as upstream). */
export function createJudgeClient(opts: JudgeClientOptions): JudgeClient {
  const url = chatCompletionsUrl(opts.baseUrl);
  const model = opts.model ?? "gpt-4o-mini";
  const client: JudgeClient = {
    url,
    model,
    async judge(input, signal) {
      const body: Record<string, unknown> = {
        model,
        messages: [{ role: "user", content: buildJudgePrompt(input) }],
        max_tokens: opts.maxTokens ?? 1024,
      };
      if (opts.temperature !== undefined) body.temperature = opts.temperature;
      const raw = await requestJson(url, {
        method: "POST",
        body,
        headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {},
        timeoutMs: opts.timeoutMs ?? 120_000,
        attempts: opts.attempts ?? 3,
        backoffMs: opts.backoffMs ?? 1000,
        signal,
      });
      const parsed = ChatCompletionSchema.safeParse(raw);
      if (!parsed.success) {
        throw new Error(
          `judge: unexpected response shape from ${url}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
        );
      }
      const output = parsed.data.choices[0].message.content ?? "";
      return { output, correct: judgeVerdictStrict(output), lenient: judgeVerdictLenient(output) };
    },
    judgeMany(inputs, concurrency = 8) {
      return mapLimit(inputs, Math.max(1, concurrency), (x) => client.judge(x));
    },
  };
  return client;
}
