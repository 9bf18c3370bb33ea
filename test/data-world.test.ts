/**
 * The synthetic world: determinism, splits, answerability, fact placement in the corpus, findability of the ideal
 * queries under BM25, the internal share, answer leakage, pre-training / protocol-prior text and ideal trajectories.
 */
import { describe, expect, it } from "vitest";
import {
  checkWorld,
  generateWorld,
  protocolPriorDocs,
  renderIdealTrajectory,
  sentenceStatesFact,
  singleHopQuestion,
  trainOnlyFacts,
  trajectoryTags,
  worldConfig,
  worldPretrainDocs,
  worldStats,
  WORLD_SPLITS,
  type World,
  type WorldFact,
  type WorldQuestion,
  type WorldRelation,
} from "../src/data/index.js";
import { coverExactMatch } from "../src/metrics/index.js";
import { getProtocol } from "../src/protocol/index.js";

const r1 = getProtocol("r1-searcher");
const plus = getProtocol("r1-searcher-plus");

/** A minimal Okapi BM25 (k1 1.2, b 0.75, lower-case word tokens, no stemming), written here independently. */
class TinyBm25 {
  private readonly docs: string[][];
  private readonly df = new Map<string, number>();
  private readonly avgdl: number;
  constructor(texts: string[]) {
    this.docs = texts.map((t) => t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
    for (const d of this.docs) for (const w of new Set(d)) this.df.set(w, (this.df.get(w) ?? 0) + 1);
    this.avgdl = this.docs.reduce((a, d) => a + d.length, 0) / Math.max(1, this.docs.length);
  }
  rank(query: string): number[] {
    const q = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])];
    const N = this.docs.length;
    const scores: Array<[number, number]> = [];
    this.docs.forEach((d, i) => {
      let s = 0;
      for (const w of q) {
        const tf = d.filter((x) => x === w).length;
        if (!tf) continue;
        const df = this.df.get(w)!;
        s +=
          (Math.log(1 + (N - df + 0.5) / (df + 0.5)) * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * d.length) / this.avgdl));
      }
      if (s > 0) scores.push([s, i]);
    });
    return scores.sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((x) => x[1]);
  }
}

/** Relation chains per chain template, written here independently of the generator. */
const CHAINS: Record<string, WorldRelation[]> = {
  birthplace: ["born_in"],
  birth_year: ["birth_year"],
  profession: ["profession"],
  founder: ["founded_by"],
  founded_year: ["founded_year"],
  headquarters: ["headquarters"],
  author: ["author"],
  published_year: ["published_year"],
  city_country: ["located_in"],
  birth_country: ["born_in", "located_in"],
  founder_birthplace: ["founded_by", "born_in"],
  founder_birth_year: ["founded_by", "birth_year"],
  founder_profession: ["founded_by", "profession"],
  author_birthplace: ["author", "born_in"],
  author_birth_year: ["author", "birth_year"],
  author_profession: ["author", "profession"],
  hq_country: ["headquarters", "located_in"],
  city_country_capital: ["located_in", "capital"],
  author_birth_country: ["author", "born_in", "located_in"],
  founder_birth_country: ["founded_by", "born_in", "located_in"],
  birth_country_capital: ["born_in", "located_in", "capital"],
  hq_country_capital: ["headquarters", "located_in", "capital"],
};

/** Follow the world's relations from the question's anchors to the answer. */
function answerByRelations(world: World, q: WorldQuestion): string {
  const rel = (subject: string, r: WorldRelation): WorldFact => {
    const f = world.facts.find((x) => x.subject === subject && x.relation === r);
    if (!f) throw new Error(`no ${r} for ${subject}`);
    return f;
  };
  const name = (id: string) => world.entities.find((e) => e.id === id)!.name;
  const t = q.metadata.template;
  const [a, b] = q.metadata.anchors;
  if (CHAINS[t]) {
    let cur = a;
    let last: WorldFact | null = null;
    for (const r of CHAINS[t]) {
      last = rel(cur, r);
      cur = last.object;
    }
    return last!.objectText;
  }
  const year = (id: string, r: WorldRelation) => Number(rel(id, r).object);
  switch (t) {
    case "same_birth_city":
      return rel(a, "born_in").object === rel(b, "born_in").object ? "yes" : "no";
    case "same_country":
      return rel(a, "located_in").object === rel(b, "located_in").object ? "yes" : "no";
    case "born_before":
      return year(a, "birth_year") < year(b, "birth_year") ? "yes" : "no";
    case "born_first":
      return year(a, "birth_year") < year(b, "birth_year") ? name(a) : name(b);
    case "founded_first":
      return year(a, "founded_year") < year(b, "founded_year") ? name(a) : name(b);
    case "published_first":
      return year(a, "published_year") < year(b, "published_year") ? name(a) : name(b);
  }
  throw new Error(`unknown template ${t}`);
}

const tiny = generateWorld(worldConfig("tiny", 7));
const small = generateWorld(worldConfig("small", 1));

describe("world generation", () => {
  it("is deterministic by seed and differs across seeds", () => {
    const again = generateWorld(worldConfig("tiny", 7));
    expect(JSON.stringify(again)).toBe(JSON.stringify(tiny));
    const other = generateWorld(worldConfig("tiny", 8));
    expect(other.passages.map((p) => p.text)).not.toEqual(tiny.passages.map((p) => p.text));
  });

  it("keeps entities and corpus when only the question counts change (independent sub-streams)", () => {
    const more = generateWorld(worldConfig("tiny", 7, { questions: { train: 20, dev: 5, test: 5 } }));
    expect(more.entities).toEqual(tiny.entities);
    expect(more.passages).toEqual(tiny.passages);
    expect(more.questions.length).toBe(30);
  });

  it("passes its own invariant check for several seeds and presets", () => {
    for (const seed of [1, 2, 3]) expect(checkWorld(generateWorld(worldConfig("tiny", seed)))).toEqual([]);
    expect(checkWorld(small)).toEqual([]);
  });

  it("the invariant check catches corrupted worlds", () => {
    const clone = (): World => JSON.parse(JSON.stringify(tiny)) as World;
    const wrongAnswer = clone();
    wrongAnswer.questions[0].answer = "Nowhere";
    expect(checkWorld(wrongAnswer).join("\n")).toMatch(/but the facts give/);

    const ext = tiny.facts.find((f) => !f.internal)!;
    const copied = clone();
    const page = copied.passages.find((p) => p.id === ext.passages[0])!;
    copied.passages.push({
      id: String(copied.passages.length),
      title: "Copy",
      text: page.text,
      kind: "distractor",
      entity: page.entity,
      facts: [],
    });
    expect(checkWorld(copied).join("\n")).toMatch(new RegExp(`fact ${ext.id} is stated in passages`));

    const moved = clone();
    const e = moved.entities.find((x) => x.id === moved.questions[0].metadata.anchors[0])!;
    e.split = e.split === "train" ? "test" : "train";
    expect(checkWorld(moved).join("\n")).toMatch(/is anchored on/);

    const leaky = clone();
    const q = leaky.questions.find((x) => x.metadata.comparison !== "which")!;
    q.question = `${q.question} (${q.answer})`;
    expect(checkWorld(leaky).join("\n")).toMatch(/gives the answer .* away/);
  });

  it("makes the requested questions per split with the requested kind mix", () => {
    for (const split of WORLD_SPLITS) {
      const qs = small.questions.filter((q) => q.metadata.split === split);
      expect(qs.length).toBe(small.config.questions[split]);
      const share = (k: string) => qs.filter((q) => q.metadata.kind === k).length / qs.length;
      expect(share("bridge")).toBeCloseTo(0.45, 1);
      expect(share("comparison")).toBeCloseTo(0.3, 1);
      expect(share("compositional")).toBeCloseTo(0.25, 1);
      const yesNo = qs.filter((q) => q.metadata.comparison === "yes-no");
      const yes = yesNo.filter((q) => q.answer === "yes").length;
      expect(yes / yesNo.length).toBeGreaterThan(0.25);
      expect(yes / yesNo.length).toBeLessThan(0.75);
    }
  });

  it("keeps splits disjoint: anchors, question texts, and idx values", () => {
    const anchors = new Map<string, Set<string>>();
    for (const q of small.questions) {
      for (const a of q.metadata.anchors) {
        const s = anchors.get(a) ?? new Set();
        s.add(q.metadata.split);
        anchors.set(a, s);
      }
    }
    for (const [a, s] of anchors) expect(s.size, `anchor ${a}`).toBe(1);
    const texts = small.questions.map((q) => q.question);
    expect(new Set(texts).size).toBe(texts.length);
    const idx = small.questions.map((q) => q.idx);
    expect(new Set(idx).size).toBe(idx.length);
  });

  it("every question's answer follows from the relations", () => {
    for (const w of [tiny, small])
      for (const q of w.questions) expect(answerByRelations(w, q), q.question).toBe(q.answer);
  });

  it("every fact is stated in exactly its recorded passages, and nowhere else in the corpus", () => {
    for (const f of small.facts) {
      const stating = small.passages
        .filter((p) => p.text.split(/(?<=\.)\s+/).some((s) => sentenceStatesFact(s, f)))
        .map((p) => p.id);
      expect(stating.sort(), f.id).toEqual([...f.passages].sort());
      expect(f.passages.length).toBeGreaterThan(0);
    }
  });

  it("every ideal query's words are in the passage holding the fact, and BM25 ranks that passage first", () => {
    for (const w of [tiny, small]) {
      const bm = new TinyBm25(w.passages.map((p) => `${p.title} ${p.text}`));
      const byId = new Map(w.passages.map((p) => [p.id, p]));
      for (const q of w.questions) {
        for (const s of q.metadata.steps) {
          const page = byId.get(s.passages[0])!;
          const words = new Set(`${page.title} ${page.text}`.toLowerCase().match(/[\p{L}\p{N}]+/gu));
          for (const word of s.query.toLowerCase().split(" "))
            expect(words.has(word), `${s.query} in ${page.id}`).toBe(true);
          expect(bm.rank(s.query)[0], s.query).toBe(Number(s.passages[0]));
        }
        expect(q.metadata.ideal_queries).toEqual([
          ...new Set(q.metadata.steps.filter((s) => !s.internal).map((s) => s.query)),
        ]);
      }
    }
  });

  it("respects the internal share (famous entities per type; facts follow their subject)", () => {
    for (const share of [0, 0.3, 0.5, 1]) {
      const w = generateWorld(worldConfig("tiny", 3, { internalShare: share }));
      for (const type of ["country", "city", "person", "organisation", "work"]) {
        const es = w.entities.filter((e) => e.type === type);
        expect(es.filter((e) => e.famous).length).toBe(Math.round(share * es.length));
      }
      const internal = w.facts.filter((f) => f.internal).length / w.facts.length;
      expect(Math.abs(internal - share)).toBeLessThan(0.08);
      if (share === 0) expect(w.questions.every((q) => q.metadata.ideal_retrievals > 0)).toBe(true);
      if (share === 1) expect(w.questions.every((q) => q.metadata.ideal_retrievals === 0)).toBe(true);
    }
    const st = worldStats(small);
    expect(st.questions.test.meanIdealRetrievals).toBeLessThan(st.questions.test.meanSearchAllRetrievals * 0.7);
  });

  it("takes per-type fame shares (internalShareByType) over the global share", () => {
    const by = { country: 1, city: 1, person: 0, organisation: 1 };
    const w = generateWorld(worldConfig("tiny", 3, { internalShare: 0.5, internalShareByType: by }));
    for (const e of w.entities) {
      if (e.type === "work") continue;
      expect(e.famous, `${e.type} ${e.name}`).toBe(by[e.type] === 1);
    }
    const works = w.entities.filter((e) => e.type === "work");
    expect(works.filter((e) => e.famous).length).toBe(Math.round(0.5 * works.length));
    for (const f of w.facts) expect(f.internal).toBe(w.entities.find((e) => e.id === f.subject)!.famous);
    // person facts are all external, so every question about a person's attribute needs a search
    const personFacts = new Set(w.facts.filter((f) => f.subject.startsWith("person-")).map((f) => f.id));
    for (const q of w.questions)
      if (q.metadata.steps.some((s) => personFacts.has(s.fact))) expect(q.metadata.ideal_retrievals).toBeGreaterThan(0);
    expect(() => worldConfig("tiny", 3, { internalShareByType: { person: 2 } as never })).toThrow();
  });

  it("no question text gives its answer away (choice questions name both options)", () => {
    const words = (s: string) =>
      (s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => !["a", "an", "the"].includes(w));
    for (const q of small.questions) {
      if (q.metadata.comparison === "which") {
        expect(q.metadata.options).toContain(q.answer);
        for (const o of q.metadata.options!) expect(q.question).toContain(o);
      } else {
        const qw = new Set(words(q.question));
        expect(
          words(q.answer).every((w) => qw.has(w)),
          q.question,
        ).toBe(false);
        expect(coverExactMatch(q.question, q.answer), q.question).toBe(false);
      }
    }
  });
});

describe("pre-training and protocol-prior text", () => {
  const pre = worldPretrainDocs(small, r1);
  const text = pre.map((d) => d.text).join("\n");

  it("holds every internal fact and no external fact", () => {
    const sents = text.split(/(?<=\.)\s+|\n/);
    for (const f of small.facts) {
      const stated = sents.some((s) => sentenceStatesFact(s, f));
      expect(stated, `${f.id} internal=${f.internal}`).toBe(f.internal);
    }
  });

  it("never shows the search protocol, nor a dev/test question", () => {
    for (const p of [r1, plus]) expect(text.includes(p.queryOpen)).toBe(false);
    for (const q of small.questions)
      if (q.metadata.split !== "train") expect(text.includes(q.question), q.question).toBe(false);
    expect(pre.some((d) => d.source === "qa" && d.text.includes(r1.answerOpen))).toBe(true);
    expect(new Set(pre.map((d) => d.source))).toEqual(new Set(["facts", "qa", "chains"]));
  });

  it("protocol-prior examples only use facts no dev/test question needs, in the protocol's format", () => {
    const eligible = new Set(trainOnlyFacts(small).map((f) => f.id));
    const heldOut = new Set(
      small.questions.filter((q) => q.metadata.split !== "train").flatMap((q) => q.metadata.steps.map((s) => s.fact)),
    );
    for (const id of eligible) expect(heldOut.has(id)).toBe(false);
    for (const p of [r1, plus]) {
      const docs = protocolPriorDocs(small, p, { count: 40 });
      expect(docs).toHaveLength(40);
      for (const d of docs) {
        expect(d.source).toBe("protocol-prior");
        const q = d.text.match(/Question: (.*)\n/)![1];
        const fact = small.facts.find((f) => singleHopQuestion(f).question === q)!;
        expect(eligible.has(fact.id), q).toBe(true);
        const response = d.text.slice(
          d.text.indexOf("\nAnswer: ") + "\nAnswer: ".length + trajectoryTags(p).thinkOpen.length,
        );
        const parsed = p.parse(response);
        expect(parsed.formatErrors).toEqual([]);
        expect(parsed.answer?.trim()).toBe(fact.objectText);
      }
    }
    expect(protocolPriorDocs(small, r1, { count: 0 })).toEqual([]);
  });
});

describe("ideal trajectories", () => {
  it("parse cleanly in each protocol with the ideal number of retrievals and the gold answer", () => {
    for (const q of small.questions.filter((x) => x.metadata.split === "test")) {
      const a = renderIdealTrajectory(q, plus, { world: small });
      const pa = plus.parse(a.response);
      expect(pa.formatErrors, a.response).toEqual([]);
      expect(pa.retrievals).toBe(q.metadata.ideal_retrievals);
      expect(pa.queries).toEqual(q.metadata.ideal_queries);
      expect(pa.answer?.trim()).toBe(q.answer);
      expect(pa.segments.filter((s) => s.kind === "internal").length).toBe(q.metadata.internal_facts);

      const b = renderIdealTrajectory(q, r1, { world: small });
      const pb = r1.parse(b.response);
      expect(pb.formatErrors, b.response).toEqual([]);
      expect(pb.retrievals).toBe(new Set(q.metadata.steps.map((s) => s.passages.join())).size);
      expect(pb.answer?.trim()).toBe(q.answer);
      // The retrieved documents hold the facts the trajectory then states.
      for (const s of q.metadata.steps) expect(b.response).toContain(s.statement);

      const c = renderIdealTrajectory(q, r1, { world: small, mode: "search-external" });
      expect(r1.parse(c.response).retrievals).toBe(q.metadata.ideal_retrievals);
    }
  });
});
