/** JSONL after a kill -9 in the middle of a write: the torn last line is skipped on read and cut before appending. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { JsonlAppender, JsonlParseError, readJsonlAll } from "./jsonl.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-jsonl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("torn JSONL tails", () => {
  it("skips a torn last line, and the next append starts on a fresh line", async () => {
    const f = path.join(dir, "torn.jsonl");
    writeFileSync(f, '{"idx":1}\n{"idx":2}\n{"idx":3,"pred');
    expect(await readJsonlAll(f)).toEqual([{ idx: 1 }, { idx: 2 }]);
    const a = new JsonlAppender(f);
    await a.append({ idx: 3 });
    await a.close();
    expect(readFileSync(f, "utf8")).toBe('{"idx":1}\n{"idx":2}\n{"idx":3}\n');
    expect(await readJsonlAll(f)).toEqual([{ idx: 1 }, { idx: 2 }, { idx: 3 }]);
  });

  it("still throws for a broken line that is not a torn tail", async () => {
    const f = path.join(dir, "bad.jsonl");
    writeFileSync(f, '{"idx":1}\n{"idx":\n{"idx":3}\n');
    await expect(readJsonlAll(f)).rejects.toBeInstanceOf(JsonlParseError);
    writeFileSync(f, '{"idx":1}\n{"idx":2\n'); // complete (newline-terminated) but invalid last line
    await expect(readJsonlAll(f)).rejects.toThrow(/bad\.jsonl:2/);
  });
});
