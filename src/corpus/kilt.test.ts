import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { kiltPageWords, parseKiltPage, splitKiltFile, splitKiltPage } from "./kilt.js";
import { tempDirs } from "../../test/temp-dirs.js";

const tmpDir = tempDirs();

const SAMPLES = path.resolve(__dirname, "../../data/r1-searcher/kilt_samples");

describe("KILT 100-word splitter", () => {
  it("reproduces the upstream sample TSV byte for byte (complete lines + the cut-off prefix)", async () => {
    const dir = tmpDir("kilt-");
    const out = path.join(dir, "out.tsv");
    const res = await splitKiltFile(path.join(SAMPLES, "filtered_kilt_sample_100.jsonl"), out, { progress: false });
    const ours = readFileSync(out);
    const shipped = readFileSync(path.join(SAMPLES, "train_kilt_full_page_sample_100.tsv"));
    // The shipped file is a prefix of the real output, its last line cut off.
    const lastNl = shipped.lastIndexOf(10);
    const complete = shipped.subarray(0, lastNl + 1);
    const completeLines = complete.toString("utf8").split("\n").length - 1;
    expect(completeLines).toBe(92);
    expect(ours.subarray(0, complete.length).equals(complete)).toBe(true);
    // ... and the cut-off tail is a prefix of our next line.
    expect(ours.subarray(0, shipped.length).equals(shipped)).toBe(true);
    expect(res.pages).toBe(99);
    expect(res.passages).toBe(ours.toString("utf8").split("\n").length - 1);
    expect(res.passages).toBeGreaterThan(92);
    // Atomic write: no temp file left beside the output.
    expect(readdirSync(dir)).toEqual(["out.tsv"]);
  });

  it("uses Python str.split() whitespace and removes BULLET::::/Section:::: markers", () => {
    const page = { wikipedia_title: "T", text: ["T\n", "Section::::History.\n", "BULLET::::a\x1cb\u00a0c\ufeffd\n"] };
    expect(kiltPageWords(page)).toEqual(["T", "History.", "a", "b", "c\ufeffd"]);
    const words = Array.from({ length: 205 }, (_, i) => `w${i}`);
    const lines = splitKiltPage({ wikipedia_title: "X Y", text: [words.join(" ")] }, 7);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`7\tX Y   ${words.slice(0, 100).join(" ")}`);
    expect(lines[2]).toBe(`9\tX Y   w200 w201 w202 w203 w204`);
    expect(splitKiltPage({ wikipedia_title: "Empty", text: [] }, 3)).toEqual([]);
  });

  it("rejects a malformed page with the line number and field", () => {
    expect(() => parseKiltPage('{"text": ["a"]}', 12, "f.jsonl")).toThrow(
      /f\.jsonl:12: not a KILT page \(wikipedia_title/,
    );
    expect(() => parseKiltPage("{oops", 3, "f.jsonl")).toThrow(/f\.jsonl:3: invalid JSON/);
  });

  it("an error mid-file leaves no output file behind", async () => {
    const dir = tmpDir("kilt-");
    const input = path.join(dir, "in.jsonl");
    writeFileSync(input, '{"wikipedia_title":"A","text":["A\\n","x y"]}\n{"bad": 1}\n');
    await expect(splitKiltFile(input, path.join(dir, "out.tsv"), { progress: false })).rejects.toThrow(/in\.jsonl:2/);
    expect(readdirSync(dir)).toEqual(["in.jsonl"]);
  });
});
