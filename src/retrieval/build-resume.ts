/**
 * Resumable index builds (BM25 postings only, from a corpus file).
 *
 * Such a build runs in a fixed work directory next to `out`, `.{name}.partial/`, instead of a per-process temporary
 * one. After every finished postings segment it records a checkpoint, `build-state.json` (written atomically, after the
 * segment's files and the passage store up to the segment's last row are handed to the operating system): the rows and
 * store bytes done and the finished segments' metadata. A build killed mid-way leaves `out` as it was and the work
 * directory behind; the next build of the same `out` from the same corpus with the same settings (the checkpoint's
 * `key`: corpus path, size and mtime, format and fields, limit, analyzer, segment and block sizes, searchrl version)
 * truncates the store to the checkpoint, keeps the finished segments, skips the passages they hold (read, not
 * analyzed) and goes on from there. Anything else (another corpus or settings, no or an unreadable checkpoint, store
 * files shorter than the checkpoint) starts over in a fresh work directory. `build.lock` (the builder's pid) keeps two
 * live builds out of one work directory.
 */
import { existsSync, promises as fsp, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { atomicWriteJson } from "../util/fsutil.js";
import { SegmentMetaSchema } from "./bm25/postings-format.js";
import { storeCanResume } from "./store.js";

export const BUILD_STATE_FILE = "build-state.json";
export const BUILD_LOCK_FILE = "build.lock";
const STATE_FORMAT = "searchrl-build-state";

const BuildStateSchema = z.object({
  format: z.literal(STATE_FORMAT),
  version: z.literal(1),
  key: z.string(),
  store: z.object({ rows: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
  tokens: z.number().int().nonnegative(),
  segments: z.array(SegmentMetaSchema),
});
export type BuildState = z.infer<typeof BuildStateSchema>;

/** The work directory of a resumable build of `out`. */
export function resumeDir(out: string): string {
  const abs = path.resolve(out);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.partial`);
}

/** What must match for a checkpoint to be resumed (a canonical JSON string). */
export function buildKey(parts: Record<string, unknown> & { corpus: string }): string {
  const st = statSync(parts.corpus);
  return canonicalJson({
    ...parts,
    corpus: path.resolve(parts.corpus),
    corpusBytes: st.size,
    corpusMtimeMs: st.mtimeMs,
  });
}

/** JSON with object keys sorted at every depth (equal settings give equal strings). */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Claim the work directory of `out`: returns the checkpoint to resume from (null: a fresh start in an emptied
 * directory). Throws when another live process holds the lock.
 */
export async function claimResumeDir(out: string, key: string): Promise<{ dir: string; state: BuildState | null }> {
  const dir = resumeDir(out);
  const lock = path.join(dir, BUILD_LOCK_FILE);
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid))
      throw new Error(`another build of ${out} is running (pid ${pid}; work directory ${dir})`);
  }
  let state: BuildState | null = null;
  const file = path.join(dir, BUILD_STATE_FILE);
  if (existsSync(file)) {
    try {
      const r = BuildStateSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
      if (r.success && r.data.key === key && storeCanResume(dir, r.data.store)) {
        state = r.data;
        const rows = state.segments.reduce((s, m) => s + m.rows, 0);
        if (rows !== state.store.rows) state = null;
      }
    } catch {
      state = null;
    }
  }
  if (!state) await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(lock, String(process.pid));
  return { dir, state };
}

/** Record a checkpoint (atomically). */
export async function writeCheckpoint(dir: string, state: Omit<BuildState, "format" | "version">): Promise<void> {
  await atomicWriteJson(path.join(dir, BUILD_STATE_FILE), { format: STATE_FORMAT, version: 1, ...state });
}

/**
 * Move a finished work directory into place: its checkpoint and lock are removed, then it replaces `out` (the old
 * directory is moved aside first and removed afterwards, as in an atomic directory write).
 */
export async function finishResumeDir(dir: string, out: string): Promise<void> {
  await fsp.rm(path.join(dir, BUILD_STATE_FILE), { force: true });
  await fsp.rm(path.join(dir, BUILD_LOCK_FILE), { force: true });
  const target = path.resolve(out);
  const old = existsSync(target) ? `${dir}.old-${process.pid}` : null;
  if (old) await fsp.rename(target, old);
  try {
    await fsp.rename(dir, target);
  } catch (err) {
    if (old) await fsp.rename(old, target);
    throw err;
  }
  if (old) await fsp.rm(old, { recursive: true, force: true });
}

/** Release the work directory after a failed build: kept (for a resume) when it holds a checkpoint, else removed. */
export async function releaseResumeDir(dir: string): Promise<void> {
  if (existsSync(path.join(dir, BUILD_STATE_FILE))) await fsp.rm(path.join(dir, BUILD_LOCK_FILE), { force: true });
  else await fsp.rm(dir, { recursive: true, force: true });
}
