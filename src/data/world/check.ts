/**
 * Invariants of a generated world (checked by `searchrl data world --check` and the tests) and its statistics.
 */
import { RELATION_KEYWORD } from "./templates.js";
import { WORLD_SPLITS, type World, type WorldFact, type WorldQuestion } from "./types.js";

/** Lower-case word tokens (letters and digits), as a keyword retriever would see them. */
export function wordTokens(s: string): string[] {
  return s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Rough token count for a small-vocabulary BPE: one per punctuation mark and digit, one per 5 letters of a word. */
export function approxTokens(s: string): number {
  let n = 0;
  for (const m of s.match(/\p{L}+|\p{N}|[^\s\p{L}\p{N}]/gu) ?? []) n += /\p{L}/u.test(m) ? Math.ceil(m.length / 5) : 1;
  return n;
}

function sentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+/);
}

function containsName(sentence: string, name: string): boolean {
  const norm = (s: string) => ` ${s.replace(/[.,!?;:()]/g, " ").replace(/\s+/g, " ").trim()} `;
  return norm(sentence).includes(norm(name));
}

/** True when a sentence is about the fact's subject and relation: it names the subject and uses the relation's keyword. */
export function sentenceAboutFact(sentence: string, f: Pick<WorldFact, "subjectText" | "relation">): boolean {
  return containsName(sentence, f.subjectText) && wordTokens(sentence).includes(RELATION_KEYWORD[f.relation]);
}

/** True when a sentence states the fact: it names the subject and the object and uses the relation's keyword. */
export function sentenceStatesFact(sentence: string, f: Pick<WorldFact, "subjectText" | "objectText" | "relation">): boolean {
  return sentenceAboutFact(sentence, f) && containsName(sentence, f.objectText);
}

const ARTICLES = new Set(["a", "an", "the"]);

/** True when every (non-article) word of the answer occurs in the question: the question gives the answer away. */
export function answerLeaks(question: string, answer: string): boolean {
  const q = new Set(wordTokens(question));
  const a = wordTokens(answer).filter((w) => !ARTICLES.has(w));
  return a.length > 0 && a.every((w) => q.has(w));
}

/** Derive a question's answer from the world's facts, following its template (independent of the stored answer). */
export function deriveAnswer(world: World, q: WorldQuestion, facts = new Map(world.facts.map((f) => [f.id, f]))): string {
  const steps = q.metadata.steps.map((s) => {
    const f = facts.get(s.fact);
    if (!f) throw new Error(`question ${q.idx}: unknown fact ${s.fact}`);
    return f;
  });
  const t = q.metadata.template;
  if (q.metadata.kind !== "comparison") {
    if (steps[0].subject !== q.metadata.anchors[0]) throw new Error(`question ${q.idx}: chain does not start at its anchor`);
    for (let i = 1; i < steps.length; i++) {
      if (steps[i].subject !== steps[i - 1].object) throw new Error(`question ${q.idx}: broken chain at step ${i + 1}`);
    }
    return steps[steps.length - 1].objectText;
  }
  const [a, b] = steps;
  if (a.subject !== q.metadata.anchors[0] || b.subject !== q.metadata.anchors[1]) {
    throw new Error(`question ${q.idx}: comparison steps do not match its anchors`);
  }
  const name = (id: string) => {
    const e = world.entities.find((x) => x.id === id);
    if (!e) throw new Error(`question ${q.idx}: unknown entity ${id}`);
    return e.name;
  };
  switch (t) {
    case "same_birth_city":
    case "same_country":
      return a.object === b.object ? "yes" : "no";
    case "born_before":
      return Number(a.object) < Number(b.object) ? "yes" : "no";
    case "born_first":
    case "founded_first":
    case "published_first":
      return Number(a.object) < Number(b.object) ? name(a.subject) : name(b.subject);
    default:
      throw new Error(`question ${q.idx}: unknown comparison template ${t}`);
  }
}

/** Every invariant violation of a world (empty when the world is sound). */
export function checkWorld(world: World): string[] {
  const problems: string[] = [];
  const bad = (s: string) => {
    if (problems.length < 200) problems.push(s);
  };
  const names = new Map<string, string>();
  for (const e of world.entities) {
    const k = e.name.toLowerCase();
    if (names.has(k)) bad(`entity name "${e.name}" is used twice (${names.get(k)}, ${e.id})`);
    names.set(k, e.id);
  }
  const passageIds = new Set<string>();
  world.passages.forEach((p, i) => {
    if (p.id !== String(i)) bad(`passage ${i} has id ${p.id} (expected the row number)`);
    if (/[\t\n]/.test(p.title + p.text)) bad(`passage ${p.id} holds a TAB or newline`);
    passageIds.add(p.id);
  });
  // Facts: stated in exactly their passages, queries findable there.
  const sentencesOf = world.passages.map((p) => ({ id: p.id, s: sentences(p.text), words: new Set(wordTokens(`${p.title} ${p.text}`)) }));
  // Inverted index: word -> passages, to visit only the passages that mention a fact's subject.
  const postings = new Map<string, number[]>();
  sentencesOf.forEach((p, i) => {
    for (const w of p.words) {
      const l = postings.get(w);
      if (l) l.push(i);
      else postings.set(w, [i]);
    }
  });
  const mentioning = (name: string): number[] => {
    const lists = wordTokens(name).map((w) => postings.get(w) ?? []);
    if (lists.length === 0) return [];
    lists.sort((a, b) => a.length - b.length);
    return lists[0].filter((i) => lists.every((l) => l.includes(i)));
  };
  const entityById = new Map(world.entities.map((e) => [e.id, e]));
  for (const f of world.facts) {
    if (f.passages.length === 0) bad(`fact ${f.id} is in no passage`);
    const stating = mentioning(f.subjectText)
      .map((i) => sentencesOf[i])
      .filter((p) => p.s.some((s) => sentenceStatesFact(s, f)))
      .map((p) => p.id);
    const want = [...f.passages].sort();
    if (stating.sort().join(",") !== want.join(",")) {
      bad(`fact ${f.id} is stated in passages [${stating}] but recorded in [${want}]`);
    }
    for (const pid of f.passages) {
      const words = sentencesOf[Number(pid)]?.words;
      const missing = wordTokens(f.query).filter((w) => !words?.has(w));
      if (missing.length) bad(`fact ${f.id}: query "${f.query}" words [${missing}] are not in passage ${pid}`);
    }
    const subj = entityById.get(f.subject);
    if (!subj || subj.famous !== f.internal) bad(`fact ${f.id}: internal flag does not follow its subject's fame`);
  }
  // Questions.
  const facts = new Map(world.facts.map((f) => [f.id, f]));
  const entities = new Map(world.entities.map((e) => [e.id, e]));
  const texts = new Map<string, number>();
  const idxs = new Set<number>();
  const anchorSplit = new Map<string, string>();
  for (const q of world.questions) {
    const m = q.metadata;
    if (idxs.has(q.idx)) bad(`question idx ${q.idx} is used twice`);
    idxs.add(q.idx);
    if (texts.has(q.question)) bad(`question text repeated: "${q.question}" (idx ${texts.get(q.question)} and ${q.idx})`);
    texts.set(q.question, q.idx);
    try {
      const derived = deriveAnswer(world, q, facts);
      if (derived !== q.answer) bad(`question ${q.idx}: answer "${q.answer}" but the facts give "${derived}"`);
    } catch (err) {
      bad((err as Error).message);
    }
    if (m.comparison === "which") {
      if (!m.options || m.options.length !== 2 || !m.options.includes(q.answer)) bad(`question ${q.idx}: answer is not one of its options`);
      for (const o of m.options ?? []) if (!q.question.includes(o)) bad(`question ${q.idx}: option "${o}" is not in the question`);
    } else if (answerLeaks(q.question, q.answer)) {
      bad(`question ${q.idx}: the question text gives the answer "${q.answer}" away`);
    }
    for (const a of m.anchors) {
      const e = entities.get(a);
      if (!e || e.split !== m.split) bad(`question ${q.idx} (${m.split}) is anchored on ${a} of split ${e?.split}`);
      const prev = anchorSplit.get(a);
      if (prev && prev !== m.split) bad(`entity ${a} anchors questions of two splits`);
      anchorSplit.set(a, m.split);
    }
    let internal = 0;
    const extPages = new Set<string>();
    for (const s of m.steps) {
      const f = facts.get(s.fact);
      if (!f) continue;
      if (s.internal !== f.internal || s.query !== f.query || s.passages.join() !== f.passages.join() || s.object !== f.objectText) {
        bad(`question ${q.idx}: step ${s.fact} disagrees with the world's fact`);
      }
      if (f.internal) internal++;
      else extPages.add(f.passages.join(","));
    }
    if (m.hops !== m.steps.length) bad(`question ${q.idx}: hops ${m.hops} != ${m.steps.length} steps`);
    if (m.internal_facts !== internal || m.external_facts !== m.steps.length - internal) bad(`question ${q.idx}: wrong internal/external counts`);
    if (m.ideal_retrievals !== extPages.size || m.ideal_queries.length !== extPages.size) bad(`question ${q.idx}: ideal retrievals ${m.ideal_retrievals} != ${extPages.size} external pages`);
  }
  return problems;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

export interface WorldStats {
  entities: Record<string, number>;
  famousEntities: number;
  facts: number;
  internalFacts: number;
  internalFactShare: number;
  passages: { entity: number; distractor: number; meanWords: number; meanTokens: number; maxTokens: number };
  questions: Record<
    string,
    {
      total: number;
      byKind: Record<string, number>;
      byTemplate: Record<string, number>;
      yesNo: { yes: number; no: number };
      meanHops: number;
      /** Share of the needed facts that are internal. */
      internalStepShare: number;
      meanIdealRetrievals: number;
      /** Mean retrievals when every page is searched (R1-Searcher behaviour). */
      meanSearchAllRetrievals: number;
      fullyInternal: number;
      fullyExternal: number;
      meanQuestionTokens: number;
      /** Share of this split's needed facts that some train question also needs. */
      factOverlapWithTrain: number;
    }
  >;
}

export function worldStats(world: World): WorldStats {
  const entities: Record<string, number> = {};
  for (const e of world.entities) entities[e.type] = (entities[e.type] ?? 0) + 1;
  const internalFacts = world.facts.filter((f) => f.internal).length;
  const ent = world.passages.filter((p) => p.kind === "entity");
  const lens = world.passages.map((p) => approxTokens(`${p.title} ${p.text}`));
  const trainFacts = new Set(world.questions.filter((q) => q.metadata.split === "train").flatMap((q) => q.metadata.steps.map((s) => s.fact)));
  const questions: WorldStats["questions"] = {};
  for (const split of WORLD_SPLITS) {
    const qs = world.questions.filter((q) => q.metadata.split === split);
    const byKind: Record<string, number> = {};
    const byTemplate: Record<string, number> = {};
    for (const q of qs) {
      byKind[q.metadata.kind] = (byKind[q.metadata.kind] ?? 0) + 1;
      byTemplate[q.metadata.template] = (byTemplate[q.metadata.template] ?? 0) + 1;
    }
    const steps = qs.flatMap((q) => q.metadata.steps);
    questions[split] = {
      total: qs.length,
      byKind,
      byTemplate,
      yesNo: { yes: qs.filter((q) => q.answer === "yes").length, no: qs.filter((q) => q.answer === "no").length },
      meanHops: round(mean(qs.map((q) => q.metadata.hops))),
      internalStepShare: round(steps.length ? steps.filter((s) => s.internal).length / steps.length : 0),
      meanIdealRetrievals: round(mean(qs.map((q) => q.metadata.ideal_retrievals))),
      meanSearchAllRetrievals: round(mean(qs.map((q) => new Set(q.metadata.steps.map((s) => s.passages.join(","))).size))),
      fullyInternal: qs.filter((q) => q.metadata.external_facts === 0).length,
      fullyExternal: qs.filter((q) => q.metadata.internal_facts === 0).length,
      meanQuestionTokens: round(mean(qs.map((q) => approxTokens(q.question))), 1),
      factOverlapWithTrain: round(steps.length ? steps.filter((s) => trainFacts.has(s.fact)).length / steps.length : 0),
    };
  }
  return {
    entities,
    famousEntities: world.entities.filter((e) => e.famous).length,
    facts: world.facts.length,
    internalFacts,
    internalFactShare: round(internalFacts / Math.max(1, world.facts.length)),
    passages: {
      entity: ent.length,
      distractor: world.passages.length - ent.length,
      meanWords: round(mean(world.passages.map((p) => wordTokens(`${p.title} ${p.text}`).length)), 1),
      meanTokens: round(mean(lens), 1),
      maxTokens: Math.max(0, ...lens),
    },
    questions,
  };
}
