import { describe, expect, it } from "vitest";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { Rng } from "../../util/rng.js";
import { porterStem } from "./porter.js";
import { Analyzer } from "./analyzer.js";
import { Bm25MemoryBuilder, TopK } from "./memory.js";
import { LanceFtsEngine, LanceFtsWriter } from "./lance.js";
import { tempDirs } from "../../../test/temp-dirs.js";

const tmpDir = tempDirs();

describe("Porter stemmer", () => {
  it("matches the reference algorithm's published examples", () => {
    // prettier-ignore
    const cases: Record<string, string> = {
      caresses: "caress", ponies: "poni", ties: "ti", caress: "caress", cats: "cat", feed: "feed", agreed: "agre",
      plastered: "plaster", bled: "bled", motoring: "motor", sing: "sing", conflated: "conflat", troubled: "troubl",
      sized: "size", hopping: "hop", tanned: "tan", falling: "fall", hissing: "hiss", fizzed: "fizz", failing: "fail",
      filing: "file", happy: "happi", sky: "sky", relational: "relat", conditional: "condit", rational: "ration",
      valenci: "valenc", hesitanci: "hesit", digitizer: "digit", conformabli: "conform", radicalli: "radic",
      differentli: "differ", vileli: "vile", analogousli: "analog", vietnamization: "vietnam", predication: "predic",
      operator: "oper", feudalism: "feudal", decisiveness: "decis", hopefulness: "hope", callousness: "callous",
      formaliti: "formal", sensitiviti: "sensit", sensibiliti: "sensibl", triplicate: "triplic", formative: "form",
      formalize: "formal", electriciti: "electr", electrical: "electr", hopeful: "hope", goodness: "good",
      revival: "reviv", allowance: "allow", inference: "infer", airliner: "airlin", gyroscopic: "gyroscop",
      adjustable: "adjust", defensible: "defens", irritant: "irrit", replacement: "replac", adjustment: "adjust",
      dependent: "depend", adoption: "adopt", homologou: "homolog", communism: "commun", activate: "activ",
      angulariti: "angular", homologous: "homolog", effective: "effect", bowdlerize: "bowdler", probate: "probat",
      rate: "rate", cease: "ceas", controll: "control", roll: "roll", generalizations: "gener", oscillators: "oscil",
      is: "is", a: "a",
    };
    for (const [w, s] of Object.entries(cases)) expect(porterStem(w), w).toBe(s);
  });
});

describe("BM25 analyzer", () => {
  it("folds, lower-cases, splits, drops stop words and possessives, stems", () => {
    const a = new Analyzer();
    expect(a.terms("The Pokémon's Running-Shoes aren't for ﬁshing; Obama’s 2nd term.")).toEqual([
      "pokemon",
      "run",
      "shoe",
      "arent",
      "fish",
      "obama",
      "2nd",
      "term",
    ]);
    expect(new Analyzer({ stem: "none", stopwords: "none" }).terms("The Running shoes")).toEqual([
      "the",
      "running",
      "shoes",
    ]);
    expect(a.terms("x".repeat(41) + " ok")).toEqual(["ok"]);
    expect(a.terms("  \t ")).toEqual([]);
  });
  it("the ASCII fast path splits exactly like the Unicode regex path", () => {
    const a = new Analyzer();
    const rng = new Rng(8);
    const alphabet = "abcXYZ019 '-_.,;\t\n'\"()";
    const ref = (t: string) =>
      [...t.toLowerCase().matchAll(/[\p{L}\p{N}]+(?:['\u2019][\p{L}\p{N}]+)*/gu)]
        .map((m) => {
          let w = m[0];
          if (w.includes("'")) {
            if (w.endsWith("'s")) w = w.slice(0, -2);
            w = w.replace(/'/g, "");
          }
          return w;
        })
        .filter((w) => w.length > 0);
    for (let i = 0; i < 2000; i++) {
      const t = Array.from({ length: 1 + rng.int(30) }, () => alphabet[rng.int(alphabet.length)]).join("");
      expect(a.words(t), JSON.stringify(t)).toEqual(ref(t));
    }
  });
});

/** Textbook BM25 (Lucene/LanceDB form), computed directly from the definition. */
function naiveBm25(docs: string[][], q: string[], k: number): Array<{ row: number; score: number }> {
  const N = docs.length;
  const avgdl = docs.reduce((s, d) => s + d.length, 0) / N;
  const scored = docs.map((d, row) => {
    let score = 0;
    for (const t of q) {
      const df = docs.filter((x) => x.includes(t)).length;
      if (df === 0) continue;
      const tf = d.filter((x) => x === t).length;
      if (tf === 0) continue;
      const idf = Math.log(1 + (N - df + 0.5) / (df + 0.5));
      score += (idf * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * d.length) / avgdl));
    }
    return { row, score };
  });
  return scored
    .filter((s) => s.score > 0)
    .sort((a, b) => b.score - a.score || a.row - b.row)
    .slice(0, k);
}

function randomDocs(n: number, seed: number): string[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () =>
    Array.from({ length: 3 + rng.int(30) }, () => `w${Math.floor(200 * rng.next() ** 2)}`),
  );
}

describe("in-memory exact BM25", () => {
  it("equals the textbook formula (OR semantics, repeated query terms count twice)", () => {
    const docs = randomDocs(400, 3);
    const b = new Bm25MemoryBuilder();
    for (const d of docs) b.add(d);
    const ix = b.finish();
    const rng = new Rng(9);
    for (let i = 0; i < 30; i++) {
      const q = [`w${rng.int(200)}`, `w${rng.int(60)}`, "nope"];
      if (i % 5 === 0) q.push(q[0]);
      const got = ix.search(q, 10);
      const want = naiveBm25(docs, q, 10);
      expect(got.map((g) => g.row)).toEqual(want.map((w) => w.row));
      got.forEach((g, j) => expect(g.score).toBeCloseTo(want[j].score, 9));
    }
    expect(ix.search([], 5)).toEqual([]);
    expect(ix.search(["unknown"], 5)).toEqual([]);
  });

  it("TopK keeps the best k with ties broken by lower row", () => {
    const t = new TopK(3);
    for (const [row, s] of [
      [5, 1],
      [2, 3],
      [9, 3],
      [1, 0.5],
      [4, 2],
      [3, 3],
    ] as const)
      t.push(row, s);
    expect(t.result()).toEqual([
      { row: 2, score: 3 },
      { row: 3, score: 3 },
      { row: 9, score: 3 },
    ]);
  });
});

describe("LanceDB FTS engine", () => {
  it("gives the same scores as the exact scorer (several write batches, empty docs)", async () => {
    const docs = randomDocs(3000, 11);
    docs[7] = [];
    const dir = tmpDir("lance-");
    const w = await LanceFtsWriter.create(dir, 700);
    for (let i = 0; i < docs.length; i++) await w.add(i, docs[i]);
    expect((await w.finish()).rows).toBe(3000);
    const fts = await LanceFtsEngine.open(dir);
    expect(fts.size).toBe(3000);
    const b = new Bm25MemoryBuilder();
    for (const d of docs) b.add(d);
    const mem = b.finish();
    const rng = new Rng(5);
    let agree = 0;
    let total = 0;
    for (let i = 0; i < 40; i++) {
      const q = [`w${rng.int(200)}`, `w${rng.int(200)}`, `w${rng.int(40)}`];
      const a = await fts.search(q, 10);
      const m = mem.search(q, 10);
      expect(a.length).toBe(m.length);
      // Same score sequence (LanceDB computes in float32); documents agree except among exact ties.
      a.forEach((x, j) => expect(Math.abs(x.score - m[j].score) / m[j].score).toBeLessThan(1e-3));
      const ms = new Set(m.map((x) => x.row));
      for (const x of a) {
        total++;
        if (ms.has(x.row)) agree++;
      }
    }
    expect(agree / total).toBeGreaterThan(0.95);
    const rows: number[] = [];
    for await (const r of fts.scanTerms()) rows.push(r.row);
    expect(rows.sort((x, y) => x - y)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(await fts.search([], 5)).toEqual([]);
    // Hits map internal row addresses to rows through rowmap.json (written at build); without it, a scan rebuilds it.
    expect(existsSync(path.join(dir, "rowmap.json"))).toBe(true);
    const probe = ["w3", "w17", "w150"];
    const before = await fts.search(probe, 10);
    fts.close();
    rmSync(path.join(dir, "rowmap.json"));
    const again = await LanceFtsEngine.open(dir);
    expect(await again.search(probe, 10)).toEqual(before);
    expect(before.map((x) => x.row)).toEqual(mem.search(probe, 10).map((x) => x.row));
    again.close();
  });
});
