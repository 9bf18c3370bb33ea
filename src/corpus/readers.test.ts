import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import type { Passage } from "../util/types.js";
import { readCorpusLines } from "./lines.js";
import {
  detectCorpusFormat,
  passageContents,
  passageRawLine,
  readCorpus,
  splitContents,
  type ReadCorpusOptions,
} from "./readers.js";
import { tempDirs } from "../../test/temp-dirs.js";

const tmpDir = tempDirs();

const SAMPLES = path.resolve(__dirname, "../../data/r1-searcher/kilt_samples");

async function all(file: string, opts?: ReadCorpusOptions): Promise<Passage[]> {
  const out: Passage[] = [];
  for await (const p of readCorpus(file, opts)) out.push(p);
  return out;
}

function tmpFile(name: string, data: string | Buffer): string {
  const dir = tmpDir("corpus-");
  const f = path.join(dir, name);
  writeFileSync(f, data);
  return f;
}

describe("corpus line reader", () => {
  it("splits on \\n only, strips CR of CRLF, keeps a lone CR and the last unterminated line", async () => {
    const f = tmpFile("a.txt", "a\r\nb\rc\n\nlast");
    const lines: string[] = [];
    for await (const l of readCorpusLines(f)) lines.push(l);
    expect(lines).toEqual(["a", "b\rc", "", "last"]);
  });
  it("reads gzip and lines longer than the buffer", async () => {
    const long = "x".repeat(300_000);
    const f = tmpFile("a.txt.gz", gzipSync(Buffer.from(`é1\n${long}\n€3\n`)));
    const lines: string[] = [];
    for await (const l of readCorpusLines(f, { highWaterMark: 1024 })) lines.push(l);
    expect(lines).toEqual(["é1", long, "€3"]);
  });
});

describe("corpus readers", () => {
  it("kilt-tsv: the upstream sample, raw line kept verbatim", async () => {
    const file = path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv");
    expect(await detectCorpusFormat(file)).toBe("kilt-tsv");
    const ps = await all(file);
    expect(ps).toHaveLength(93); // 92 complete lines + the cut-off one
    expect(ps[0].id).toBe("0");
    expect(ps[0].title).toBe("A");
    expect(ps[0].text.startsWith('A A (named , plural "As"')).toBe(true);
    const lines = readFileSync(file, "utf8").split("\n");
    expect(ps[5].raw).toBe(lines[5]);
    expect(passageRawLine(ps[5])).toBe(lines[5]);
  });

  it("abstract-tsv: BOM, CSV quoting, `Title: T Text:  abstract`", async () => {
    const file = path.join(SAMPLES, "train_np_title_abs_sample_100.tsv");
    expect(await detectCorpusFormat(file)).toBe("abstract-tsv");
    const ps = await all(file);
    expect(ps.length).toBeGreaterThanOrEqual(99);
    expect(ps[0].id).toBe("0");
    expect(ps[0].raw!.startsWith('\ufeff0\t"Title: Professional')).toBe(true); // raw is verbatim (upstream quirk: BOM kept)
    expect(ps[0].title).toBe("Professional Football League of Ukraine");
    expect(ps[0].text).toContain('(Ukrainian: "Професіональна футбольна ліга України" ,');
    expect(ps[0].text.startsWith("Professional Football League")).toBe(true);
    expect(ps[1]).toMatchObject({ id: "1", title: "Lucy Mair" });
    expect(ps[1].text.startsWith("Lucy Philip Mair (28 January 1901")).toBe(true);
    expect(ps[3].title).toBe("Ian Fleming: Where Bond Began");
  });

  it("kilt-jsonl: pages split on the fly, identical to the splitter output", async () => {
    const file = path.join(SAMPLES, "filtered_kilt_sample_100.jsonl");
    expect(await detectCorpusFormat(file)).toBe("kilt-jsonl");
    const ps = await all(file);
    const tsv = readFileSync(path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv"), "utf8")
      .split("\n")
      .slice(0, 92);
    expect(ps.slice(0, 92).map((p) => p.raw)).toEqual(tsv);
  });

  it("flashrag: contents split into title/text; missing id → row number", async () => {
    const f = tmpFile(
      "c.jsonl",
      [
        JSON.stringify({ id: "10", contents: '"Python (language)"\nPython is a language.\nSecond line.' }),
        "",
        JSON.stringify({ contents: "No quotes\nbody" }),
        JSON.stringify({ id: 7, text: "only text" }),
      ].join("\n"),
    );
    expect(await detectCorpusFormat(f)).toBe("flashrag");
    const ps = await all(f);
    expect(ps[0]).toEqual({ id: "10", title: "Python (language)", text: "Python is a language.\nSecond line." });
    expect(passageContents(ps[0])).toBe('"Python (language)"\nPython is a language.\nSecond line.');
    expect(ps[1]).toEqual({ id: "1", title: "No quotes", text: "body" });
    expect(ps[2]).toEqual({ id: "7", title: "", text: "only text" });
    expect(splitContents('"T"')).toEqual({ title: "T", text: "" });
  });

  it("jsonl with a chosen text field; errors name file, line and field", async () => {
    const f = tmpFile("d.jsonl", `{"body":"hello world","name":"H","pid":3}\n{"body":"second"}\n`);
    expect(await detectCorpusFormat(f)).toBe("jsonl");
    expect(await all(f, { format: "jsonl", textField: "body", titleField: "name", idField: "pid" })).toEqual([
      { id: "3", title: "H", text: "hello world" },
      { id: "1", title: "", text: "second" },
    ]);
    await expect(all(f, { format: "jsonl" })).rejects.toThrow(/d\.jsonl:1: missing string field "contents"/);
    const bad = tmpFile("e.jsonl", `{"text":"ok"}\n{"text":\n`);
    await expect(all(bad, { format: "jsonl" })).rejects.toThrow(/e\.jsonl:2: invalid JSON/);
    const tsv = tmpFile("f.tsv", "0\tA   a\nno tab here\n");
    await expect(all(tsv, { format: "kilt-tsv" })).rejects.toThrow(/f\.tsv:2: .*no TAB/);
  });

  it("reading is streaming: a file far larger than one buffer is read with bounded chunks", async () => {
    const rows: string[] = [];
    for (let i = 0; i < 20_000; i++) rows.push(`${i}\tTitle ${i}   ${"word ".repeat(20)}${i}`);
    const f = tmpFile("big.tsv", rows.join("\n") + "\n");
    let n = 0;
    let last: Passage | undefined;
    for await (const p of readCorpus(f, { highWaterMark: 4096 })) {
      n++;
      last = p;
    }
    expect(n).toBe(20_000);
    expect(last).toMatchObject({ id: "19999", title: "Title 19999" });
  });
});
