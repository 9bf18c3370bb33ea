#!/usr/bin/env node
/**
 * Builds the web UI: bundles ui/src/main.ts (and the shared trace/client code of src/server it imports) with esbuild
 * into ui/dist/app.js, and copies ui/src/index.html and ui/src/app.css beside it.
 *
 *   node ui/build.mjs            # write ui/dist (run by `npm run build` and by `npm ci` through `prepare`)
 *   buildUi({ write: false })    # the files in memory (the server's fallback in a source checkout without a build)
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const STATIC = ["index.html", "app.css"];

/**
 * @param {{ write?: boolean, outdir?: string }} [opts]
 * @returns {Promise<Array<{ path: string, contents: Uint8Array }>>} the files, paths relative to the output folder
 */
export async function buildUi(opts = {}) {
  const write = opts.write ?? true;
  const outdir = path.resolve(opts.outdir ?? path.join(here, "dist"));
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [path.join(here, "src", "main.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    sourcemap: "linked",
    outfile: path.join(outdir, "app.js"),
    write: false,
    logLevel: "silent",
    legalComments: "none",
  });
  const files = result.outputFiles.map((f) => ({
    path: path.relative(outdir, f.path).split(path.sep).join("/"),
    contents: f.contents,
  }));
  for (const name of STATIC) files.push({ path: name, contents: await fsp.readFile(path.join(here, "src", name)) });
  if (write) {
    const tmp = `${outdir}.tmp-${process.pid}`;
    await fsp.rm(tmp, { recursive: true, force: true });
    await fsp.mkdir(tmp, { recursive: true });
    for (const f of files) {
      await fsp.mkdir(path.dirname(path.join(tmp, f.path)), { recursive: true });
      await fsp.writeFile(path.join(tmp, f.path), f.contents);
    }
    await fsp.rm(outdir, { recursive: true, force: true });
    await fsp.rename(tmp, outdir);
  }
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  const outdir = process.argv[2];
  buildUi({ outdir }).then(
    (files) =>
      process.stdout.write(
        `ui: built ${files.length} files into ${path.relative(process.cwd(), path.resolve(outdir ?? path.join(here, "dist"))) || "."} in ${Date.now() - t0} ms\n`,
      ),
    (err) => {
      process.stderr.write(`ui: build failed: ${err && err.message ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
