/**
 * Shared plumbing for the HTTP servers (reward, retrieval, agent): a fastify instance whose every error is a JSON
 * 4xx/5xx body, zod validation that answers 400 with the failing paths, and listen/close helpers.
 * Servers stay thin: validate, call the library, serialize.
 */
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

/** Validate a value with a zod schema; on failure throw a 400 naming each failing path. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, what = "body"): T {
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
