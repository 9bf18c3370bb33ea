/** A small JSON-over-HTTP client with timeouts, retries with exponential backoff, and typed errors. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly body: string,
  ) {
    super(`HTTP ${status} from ${url}: ${body.slice(0, 500)}`);
    this.name = "HttpError";
  }
}

export interface RequestJsonOptions {
  method?: "GET" | "POST";
  body?: unknown;
  headers?: Record<string, string>;
  /** Per-attempt timeout in milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Total attempts including the first (default 1 = no retry). */
  attempts?: number;
  /** Base backoff in ms; attempt i waits base * 2^(i-1) with jitter (default 500). */
  backoffMs?: number;
  /** Statuses that are retried (default 408, 429, 500, 502, 503, 504). */
  retryStatuses?: number[];
  signal?: AbortSignal;
}

const DEFAULT_RETRY = [408, 429, 500, 502, 503, 504];

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason ?? new Error("aborted"));
      },
      { once: true },
    );
  });
}

/** Send a JSON request and parse a JSON response; retries network errors, timeouts and retryable statuses. */
export async function requestJson<T = unknown>(url: string, opts: RequestJsonOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 1);
  const retry = opts.retryStatuses ?? DEFAULT_RETRY;
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) {
      const base = (opts.backoffMs ?? 500) * 2 ** (i - 1);
      await sleep(base * (0.5 + Math.random() * 0.5), opts.signal);
    }
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 60_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    try {
      const res = await fetch(url, {
        method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
        headers: { ...(opts.body === undefined ? {} : { "content-type": "application/json" }), ...opts.headers },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal,
      });
      const text = await res.text();
      if (!res.ok) {
        const err = new HttpError(res.status, url, text);
        if (retry.includes(res.status) && i + 1 < attempts) {
          lastErr = err;
          continue;
        }
        throw err;
      }
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new Error(`invalid JSON from ${url}: ${text.slice(0, 200)}`);
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (opts.signal?.aborted) throw err;
      lastErr = err;
      if (i + 1 >= attempts) break;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

/** Redact secrets (API keys, bearer tokens) from a string before logging it. */
export function redact(s: string, secrets: Array<string | undefined>): string {
  let out = s;
  for (const sec of secrets) if (sec && sec.length >= 4) out = out.split(sec).join("***");
  return out;
}
