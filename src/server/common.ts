/**
 * Shared plumbing for the HTTP servers (reward, retrieval, agent): a fastify instance whose every error is a JSON
 * 4xx/5xx body, zod validation that answers 400 with the failing paths, and listen/close helpers.
 * Servers stay thin: validate, call the library, serialize.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";

export interface ServerOptions {
  /** Maximum request body in bytes (default 16 MiB). Larger bodies get 413 JSON. */
  bodyLimit?: number;
  /** Log requests to stderr (default false). */
  logger?: boolean;
  /**
   * Error body shape. "simple": `{"error": "...", "details"?: ...}`; "openai": `{"error": {"message","type","code","param"}}`.
   */
  errorShape?: "simple" | "openai";
}

/** An error with an HTTP status that the error handler turns into a JSON body. */
export class HttpStatusError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly details?: unknown,
    readonly code?: string,
  ) {
    super(message);
    this.name = "HttpStatusError";
  }
}

export function errorBody(
  shape: "simple" | "openai",
  status: number,
  message: string,
  details?: unknown,
  code?: string,
) {
  if (shape === "openai") {
    const type =
      status === 401
        ? "authentication_error"
        : status === 429
          ? "rate_limit_error"
          : status >= 500
            ? "server_error"
            : "invalid_request_error";
    return { error: { message, type, code: code ?? null, param: null, ...(details === undefined ? {} : { details }) } };
  }
  return { error: message, ...(code ? { code } : {}), ...(details === undefined ? {} : { details }) };
}

export function createServer(opts: ServerOptions = {}): FastifyInstance {
  const shape = opts.errorShape ?? "simple";
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: opts.bodyLimit ?? 16 * 1024 * 1024 });
  app.setErrorHandler(
    (
      err: Error & { statusCode?: number; code?: string; validation?: unknown },
      _req: FastifyRequest,
      reply: FastifyReply,
    ) => {
      if (err instanceof HttpStatusError) {
        return reply.status(err.statusCode).send(errorBody(shape, err.statusCode, err.message, err.details, err.code));
      }
      const status =
        typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
      let message = err.message;
      if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE")
        message = `request body too large (limit ${app.initialConfig.bodyLimit} bytes)`;
      else if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") message = "content-type must be application/json";
      if (status >= 500) process.stderr.write(`[server] ${err.stack ?? err.message}\n`);
      return reply.status(status).send(errorBody(shape, status, message, err.validation, err.code));
    },
  );
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send(errorBody(shape, 404, `no route ${req.method} ${req.url}`));
  });
  return app;
}

/**
 * The first string in a parsed JSON value (keys included) that holds a NUL character or a lone UTF-16 surrogate (what
 * JSON's `\u0000` / `\ud800` escapes produce), as `{path, problem}`; null when there is none.
 */
export function findBadText(value: unknown, at = ""): { path: string; problem: string } | null {
  const bad = (s: string): string | null =>
    s.includes("\u0000")
      ? "contains a NUL character (\\u0000)"
      : !(s as string & { isWellFormed(): boolean }).isWellFormed()
        ? "contains a lone UTF-16 surrogate (not valid Unicode text)"
        : null;
  if (typeof value === "string") {
    const p = bad(value);
    return p ? { path: at || "(root)", problem: p } : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const r = findBadText(value[i], at ? `${at}.${i}` : String(i));
      if (r) return r;
    }
    return null;
  }
  if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const where = at ? `${at}.${k}` : k;
      const pk = bad(k);
      if (pk) return { path: `${where} (key)`, problem: pk };
      const r = findBadText(v, where);
      if (r) return r;
    }
  }
  return null;
}

/**
 * Validate a value with a zod schema; on failure throw a 400 naming each failing path. Text with NUL characters or
 * lone surrogates is refused too (400 naming the path): no route takes binary data in JSON strings.
 */
export function validate<T>(schema: z.ZodType<T>, value: unknown, what = "body"): T {
  const badText = findBadText(value);
  if (badText)
    throw new HttpStatusError(
      400,
      `invalid ${what}: ${badText.path}: ${badText.problem}`,
      [{ path: badText.path, message: badText.problem }],
      "invalid_request",
    );
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.join(".") || "(root)", message: i.message }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  throw new HttpStatusError(400, `invalid ${what}: ${summary}`, issues, "invalid_request");
}

/** Listen and return the bound base URL (port 0 = an ephemeral port). */
export async function listen(app: FastifyInstance, host = "127.0.0.1", port = 0): Promise<string> {
  await app.listen({ host, port });
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("server did not bind a TCP port");
  const h = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return `http://${h}:${addr.port}`;
}

/**
 * Require `Authorization: Bearer TOKEN` on every route but `open` ones (401 JSON otherwise). The token is compared in
 * constant time through its hash and never echoed. Off when `token` is empty.
 */
export function requireBearerToken(
  app: FastifyInstance,
  token: string | null | undefined,
  opts: { open?: string[]; code?: string } = {},
): void {
  if (!token) return;
  const sha = (x: string) => createHash("sha256").update(x).digest();
  const want = sha(token);
  const open = new Set(opts.open ?? ["/health"]);
  app.addHook("onRequest", async (req) => {
    if (open.has(req.url.split("?")[0])) return;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!m || !timingSafeEqual(sha(m[1].trim()), want)) {
      throw new HttpStatusError(
        401,
        m ? "invalid bearer token" : "missing bearer token: send the header 'Authorization: Bearer <token>'",
        undefined,
        opts.code ?? "unauthorized",
      );
    }
  });
}
