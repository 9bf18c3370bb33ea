#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm ci` through the `prepare` script); in a source checkout without a
// build, or with SEARCHRL_FROM_SRC=1, runs the TypeScript sources through tsx.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist", "cli", "main.js");
const src = path.join(root, "src", "cli", "main.ts");
let entry = dist;
if (process.env.SEARCHRL_FROM_SRC === "1" || !existsSync(dist)) {
  if (!existsSync(src)) {
    console.error("searchrl: dist/ is missing; run `npm run build`");
    process.exit(1);
  }
  const { register } = await import("tsx/esm/api");
  register();
  entry = src;
}
const { main } = await import(pathToFileURL(entry).href);
await main(process.argv);
