import { describe, expect, it } from "vitest";
import { afterLast, beforeFirst, countOccurrences, pyStrip, pyWords, spaceSplit } from "./pystr.js";

describe("Python string semantics", () => {
  it("strip uses Python's whitespace set, not JavaScript's", () => {
    expect(pyStrip("\x1c a \x85")).toBe("a");
    expect(pyStrip("\ufeffa\ufeff")).toBe("\ufeffa\ufeff"); // U+FEFF is not Python whitespace
    expect("\ufeffa".trim()).toBe("a"); // ...but JS trims it
    expect(pyStrip("\u3000x\u00a0")).toBe("x");
  });
  it("split() drops empty pieces and splits on all Python whitespace", () => {
    expect(pyWords("  a\tb\n\nc\x1fd\u2003e ")).toEqual(["a", "b", "c", "d", "e"]);
    expect(pyWords("")).toEqual([]);
    expect(pyWords("a\ufeffb")).toEqual(["a\ufeffb"]);
  });
  it("split(' ') keeps empty pieces", () => {
    expect(spaceSplit("")).toEqual([""]);
    expect(spaceSplit("a  b")).toEqual(["a", "", "b"]);
  });
  it("after_last / before_first / count", () => {
    expect(afterLast("a<x>b<x>c", "<x>")).toBe("c");
    expect(afterLast("abc", "<x>")).toBe("abc");
    expect(beforeFirst("a<x>b<x>c", "<x>")).toBe("a");
    expect(countOccurrences("aaaa", "aa")).toBe(2);
    expect(countOccurrences("abc", "")).toBe(4);
  });
});
