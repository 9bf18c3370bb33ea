// Adds lock entries for optional platform packages that the local npm mirror does not serve (see test/lockfile.test.ts).
// Usage: node scripts/fix-lock.mjs [package-lock.json]
import fs from "node:fs";
const file = process.argv[2] ?? "package-lock.json";
const lock = JSON.parse(fs.readFileSync(file, "utf8"));
const add = {
  "@lancedb/lancedb-darwin-arm64": ["0.37.1", ["darwin"], ["arm64"], null, "Apache-2.0", { node: ">= 18" }],
  "@lancedb/lancedb-linux-arm64-gnu": ["0.37.1", ["linux"], ["arm64"], ["glibc"], "Apache-2.0", { node: ">= 18" }],
  "@lancedb/lancedb-linux-arm64-musl": ["0.37.1", ["linux"], ["arm64"], ["musl"], "Apache-2.0", { node: ">= 18" }],
  "@lancedb/lancedb-win32-arm64-msvc": ["0.37.1", ["win32"], ["arm64"], null, "Apache-2.0", { node: ">= 18" }],
  "@lancedb/lancedb-win32-x64-msvc": ["0.37.1", ["win32"], ["x64"], null, "Apache-2.0", { node: ">= 18" }],
  "@node-llama-cpp/linux-riscv64": ["3.22.1", ["linux"], ["riscv64"], ["glibc"], "MIT", { node: ">=20.0.0" }],
  "@node-llama-cpp/mac-arm64-metal": ["3.22.1", ["darwin"], ["arm64"], null, "MIT", { node: ">=20.0.0" }],
  "@node-llama-cpp/mac-x64": ["3.22.1", ["darwin"], ["x64"], null, "MIT", { node: ">=20.0.0" }],
  "@node-llama-cpp/win-arm64": ["3.22.1", ["win32"], ["arm64"], null, "MIT", { node: ">=20.0.0" }],
  "@node-llama-cpp/win-x64": ["3.22.1", ["win32"], ["x64"], null, "MIT", { node: ">=20.0.0" }],
};
const entries = Object.entries(lock.packages);
for (const [name, [version, os, cpu, libc, license, engines]] of Object.entries(add)) {
  const key = "node_modules/" + name;
  if (lock.packages[key]) continue;
  const e = { version, cpu };
  if (libc) e.libc = libc;
  Object.assign(e, { license, optional: true, os, engines });
  const i = entries.findIndex(([k]) => k !== "" && k.localeCompare(key, "en") > 0);
  entries.splice(i < 0 ? entries.length : i, 0, [key, e]);
}
lock.packages = Object.fromEntries(entries);
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
