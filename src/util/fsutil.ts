/** Atomic file and directory writes (temp + rename) and small fs helpers. */
import { randomBytes } from "node:crypto";
import { promises as fsp, existsSync, renameSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";

function tmpSibling(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Write a file atomically: write a temp file in the same directory, fsync, then rename over the target. */
export async function atomicWriteFile(target: string, data: string | Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  const fh = await fsp.open(tmp, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** Synchronous variant of {@link atomicWriteFile} (no fsync of the directory). */
export function atomicWriteFileSync(target: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  writeFileSync(tmp, data);
  try {
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Write JSON atomically (pretty-printed, trailing newline). */
export async function atomicWriteJson(target: string, value: unknown): Promise<void> {
  await atomicWriteFile(target, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Build a directory atomically: `build(tmpDir)` fills a fresh temp directory next to `target`; on success the
 * temp directory replaces `target` (the old one is moved aside first and removed afterwards). On failure the temp
 * directory is removed and `target` is left untouched, so a reader never sees a half-built directory.
 */
export async function atomicWriteDir<T>(target: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  const parent = path.dirname(path.resolve(target));
  await fsp.mkdir(parent, { recursive: true });
  const tmp = tmpSibling(path.resolve(target));
  await fsp.mkdir(tmp, { recursive: true });
  let result: T;
  try {
    result = await build(tmp);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const old = existsSync(target) ? tmpSibling(path.resolve(target)) + ".old" : null;
  if (old) await fsp.rename(target, old);
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    if (old) await fsp.rename(old, target);
    throw err;
  }
  if (old) await fsp.rm(old, { recursive: true, force: true });
  return result;
}

export async function readJson<T = unknown>(file: string): Promise<T> {
  return JSON.parse(await fsp.readFile(file, "utf8")) as T;
}
