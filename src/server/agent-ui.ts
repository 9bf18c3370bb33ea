/**
 * Serves the web UI (ui/src, built by ui/build.mjs into ui/dist) at `/`.
 *
 * Where the files come from, first match wins:
 *   1. `uiDir` (option) or the SEARCHRL_UI_DIR environment variable;
 *   2. `<package>/ui/dist`, found from this file: `src/server/` (source checkout run with tsx) and `dist/server/`
 *      (built package) both sit two levels below the package root;
 *   3. a source checkout without a build: `ui/build.mjs` bundles `ui/src` in memory with esbuild;
 *   4. otherwise `/` answers 503 with the command that builds the UI.
 * Only the files of that folder's listing are served (a fixed map, no path from the request touches the disk).
 */
import { existsSync, promises as fsp } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { FastifyInstance } from "fastify";

export interface AgentUiAsset {
  body: Buffer;
  type: string;
}

export interface AgentUiBundle {
  /** Where the files came from (a folder, or "memory:<build script>"). */
  origin: string;
  /** URL path (`/index.html`, `/app.js`, ...) → file. */
  files: Map<string, AgentUiAsset>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

/** The package root (the folder holding package.json), from this file's location. */
export function agentPackageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, "..", "..");
}

async function readFolder(dir: string): Promise<Map<string, AgentUiAsset>> {
  const files = new Map<string, AgentUiAsset>();
  const walk = async (d: string, prefix: string, depth: number) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < 3) await walk(p, `${prefix}${e.name}/`, depth + 1);
      else if (e.isFile()) {
        const type = TYPES[path.extname(e.name).toLowerCase()];
        if (type) files.set(`/${prefix}${e.name}`, { body: await fsp.readFile(p), type });
      }
    }
  };
  await walk(dir, "", 0);
  return files;
}

/** Find and load the UI files (see the file comment for the order); null when there is no UI to serve. */
export async function loadAgentUi(uiDir?: string | null): Promise<AgentUiBundle | null> {
  const explicit = uiDir ?? process.env.SEARCHRL_UI_DIR ?? null;
  if (explicit) {
    if (!existsSync(path.join(explicit, "index.html")))
      throw new Error(`UI folder ${explicit} has no index.html (build it with \`npm run build\`)`);
    return { origin: path.resolve(explicit), files: await readFolder(explicit) };
  }
  const root = agentPackageRoot();
  const dist = path.join(root, "ui", "dist");
  if (existsSync(path.join(dist, "index.html"))) return { origin: dist, files: await readFolder(dist) };
  const script = path.join(root, "ui", "build.mjs");
  if (existsSync(script) && existsSync(path.join(root, "ui", "src"))) {
    try {
      const mod = (await import(pathToFileURL(script).href)) as {
        buildUi: (o: { write: false }) => Promise<Array<{ path: string; contents: Uint8Array }>>;
      };
      const out = await mod.buildUi({ write: false });
      const files = new Map<string, AgentUiAsset>();
      for (const f of out) {
        const type = TYPES[path.extname(f.path).toLowerCase()];
        if (type) files.set("/" + f.path.replace(/^\/+/, ""), { body: Buffer.from(f.contents), type });
      }
      return { origin: `memory:${script}`, files };
    } catch (err) {
      process.stderr.write(
        `[ui] could not build the UI in memory: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      return null;
    }
  }
  return null;
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>searchrl</title></head><body>
<main><h1>searchrl</h1><p>The web UI is not built. Run <code>npm run build</code> in the searchrl folder, then restart the server.
The JSON API (<code>/v1/chat/completions</code>, <code>/api/runs</code>, ...) works without it.</p></main></body></html>`;

export async function registerAgentUiRoutes(
  app: FastifyInstance,
  opts: { uiDir?: string | null },
): Promise<AgentUiBundle | null> {
  const bundle = await loadAgentUi(opts.uiDir);
  const send = (url: string) => {
    const f = bundle?.files.get(url);
    return f ?? null;
  };
  app.get("/", async (_req, reply) => {
    const f = send("/index.html");
    if (!f) return reply.status(503).type("text/html; charset=utf-8").send(NOT_BUILT);
    return reply.header("cache-control", "no-cache").type(f.type).send(f.body);
  });
  app.get("/ui/*", async (req, reply) => {
    const url = "/" + String((req.params as { "*": string })["*"] ?? "");
    const f = send(url);
    if (!f || url === "/index.html")
      return reply.status(404).send({
        error: { message: `no UI file ${url}`, type: "invalid_request_error", code: "not_found", param: null },
      });
    return reply.header("cache-control", "no-cache").type(f.type).send(f.body);
  });
  return bundle;
}
