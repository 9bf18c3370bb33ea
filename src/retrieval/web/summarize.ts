/**
 * Page summarization for the paper's online-search setup (r1-searcher.md §2.4): one user message with the exact
 * SUMMARY_PROMPT to any OpenAI-compatible `/v1/chat/completions` endpoint, `max_tokens` 2048, default temperature; the
 * reply is parsed after the last "[Exacted Content]" label.
 */
import { buildSummaryPrompt, parseSummaryOutput } from "../../protocol/index.js";
import { redact } from "../../util/http.js";

export interface SummarizerOptions {
  /** `http://host:port`, `.../v1` or the full `/chat/completions` URL. */
  baseUrl: string;
  /** Upstream: gpt-4o-mini. */
  model?: string;
  /** Default: env SEARCHRL_SUMMARY_API_KEY, then OPENAI_API_KEY. Never logged. */
  apiKey?: string;
  /** Upstream: 2048. */
  maxTokens?: number;
  /** Upstream leaves the API default; set to pin it. */
  temperature?: number;
  timeoutMs?: number;
  attempts?: number;
}

export interface Summarizer {
  readonly model: string;
  /** The parsed summary of `document` for `query` (the query WITHOUT the site suffix). */
  summarize(query: string, document: string, signal?: AbortSignal): Promise<string>;
}

function chatUrl(base: string): string {
  const b = base.replace(/\/+$/, "");
  if (b.endsWith("/chat/completions")) return b;
  return b.endsWith("/v1") ? `${b}/chat/completions` : `${b}/v1/chat/completions`;
}

export function createSummarizer(opts: SummarizerOptions): Summarizer {
  const url = chatUrl(opts.baseUrl);
  const model = opts.model ?? "gpt-4o-mini";
  const key = opts.apiKey ?? process.env.SEARCHRL_SUMMARY_API_KEY ?? process.env.OPENAI_API_KEY;
  return {
    model,
    async summarize(query, document, signal) {
      const body: Record<string, unknown> = {
        model,
        messages: [{ role: "user", content: buildSummaryPrompt(query, document) }],
        max_tokens: opts.maxTokens ?? 2048,
      };
      if (opts.temperature !== undefined) body.temperature = opts.temperature;
      const attempts = Math.max(1, opts.attempts ?? 3);
      let last: unknown;
      for (let i = 0; i < attempts; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** (i - 1)));
        const timeout = AbortSignal.timeout(opts.timeoutMs ?? 120_000);
        try {
          const res = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
            body: JSON.stringify(body),
            signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          });
          const text = await res.text();
          if (!res.ok) {
            const err = new Error(
              `summarizer HTTP ${res.status} from ${redact(url, [key])}: ${redact(text.slice(0, 300), [key])}`,
            );
            if (res.status === 429 || res.status >= 500) {
              last = err;
              continue;
            }
            throw err;
          }
          const json = JSON.parse(text) as { choices?: Array<{ message?: { content?: string | null } }> };
          const content = json.choices?.[0]?.message?.content;
          if (typeof content !== "string")
            throw new Error(`summarizer: no message content in the response from ${redact(url, [key])}`);
          return parseSummaryOutput(content);
        } catch (err) {
          if (signal?.aborted) throw err;
          last = err;
          if (err instanceof Error && /summarizer HTTP 4\d\d/.test(err.message) && !/HTTP 429/.test(err.message))
            throw err;
        }
      }
      throw last instanceof Error ? new Error(redact(last.message, [key])) : new Error(String(last));
    },
  };
}
