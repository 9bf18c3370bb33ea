/**
 * The seeded world generator: entities with relations, encyclopedia passages (plus distractors) and multi-hop
 * questions with held-out splits. Pure and deterministic: the same config (seed included) gives the same world.
 */
import { Rng, hashSeed } from "../../util/rng.js";
import { GENRES, NAME_VOCABULARY, NameGenerator, PROFESSIONS } from "./names.js";
import {
  CITY_FILLERS,
  COUNTRY_FILLERS,
  DISTRACTOR_TEMPLATES,
  FACT_TEMPLATES,
  FILLER_TEMPLATES,
  PAIR_TEMPLATES,
  QUESTION_TEXTS,
  RELATION_KEYWORD,
  fill,
  templateVocabulary,
} from "./templates.js";
import {
  ENTITY_TYPES,
  WORLD_SPLITS,
  WorldConfigSchema,
  type World,
  type WorldAnswerType,
  type WorldConfig,
  type WorldConfigInput,
  type WorldEntity,
  type WorldEntityType,
  type WorldFact,
  type WorldPassage,
  type WorldQuestion,
  type WorldQuestionKind,
  type WorldQuestionStep,
  type WorldRelation,
  type WorldSplit,
} from "./types.js";

/** A sub-stream per component, so changing e.g. the question counts leaves the entities unchanged. */
function stream(seed: number, tag: string): Rng {
  return new Rng(hashSeed("searchrl-world", seed, tag));
}

/** Largest-remainder rounding of `total * shares` (shares need not sum to 1). */
export function apportion(total: number, shares: readonly number[]): number[] {
  const sum = shares.reduce((a, b) => a + b, 0);
  if (sum <= 0) return shares.map(() => 0);
  const exact = shares.map((s) => (total * s) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    out[i]++;
    left--;
  }
  return out;
}

export function factId(subject: string, relation: WorldRelation): string {
  return `${subject}:${relation}`;
}

interface Structure {
  entities: WorldEntity[];
  byId: Map<string, WorldEntity>;
  facts: WorldFact[];
  factById: Map<string, WorldFact>;
}

function buildEntities(cfg: WorldConfig): Structure {
  if (cfg.cities < cfg.countries) throw new Error("a world needs at least as many cities as countries");
  if (cfg.works > NameGenerator.maxWorks) throw new Error(`at most ${NameGenerator.maxWorks} works`);
  const rng = stream(cfg.seed, "entities");
  const reserved = new Set<string>([...templateVocabulary(), ...NAME_VOCABULARY.map((w) => w.toLowerCase()), ...PROFESSIONS, ...GENRES]);
  const names = new NameGenerator(stream(cfg.seed, "names"), reserved);

  const entities: WorldEntity[] = [];
  const add = (type: WorldEntityType, i: number, name: string, attrs: Record<string, string> = {}): WorldEntity => {
    const e: WorldEntity = { id: `${type}-${i}`, type, name, famous: false, split: null, attrs };
    entities.push(e);
    return e;
  };
  const countries = Array.from({ length: cfg.countries }, (_, i) => add("country", i, names.country()));
  const cities = Array.from({ length: cfg.cities }, (_, i) => add("city", i, names.city()));
  const firstNames = names.firstNames(Math.max(6, Math.ceil(cfg.persons / 4)));
  const persons = Array.from({ length: cfg.persons }, (_, i) =>
    add("person", i, `${rng.pick(firstNames)} ${names.lastName()}`),
  );
  const orgs = Array.from({ length: cfg.organisations }, (_, i) => add("organisation", i, names.organisation()));
  const works = Array.from({ length: cfg.works }, (_, i) =>
    add("work", i, names.workTitle(), { genre: rng.pick(GENRES) }),
  );
  const byId = new Map(entities.map((e) => [e.id, e]));

  // Relations.
  const facts: WorldFact[] = [];
  const addFact = (subject: WorldEntity, relation: WorldRelation, object: string, objectText: string): void => {
    facts.push({
      id: factId(subject.id, relation),
      subject: subject.id,
      subjectText: subject.name,
      relation,
      object,
      objectText,
      internal: false,
      passages: [],
      query: `${subject.name} ${RELATION_KEYWORD[relation]}`,
      statement: fill(FACT_TEMPLATES[relation][0], { S: subject.name, O: objectText, G: subject.attrs.genre ?? "" }),
    });
  };
  const cityCountry = cities.map((_, i) => (i < countries.length ? i : rng.int(countries.length)));
  const citiesOf = countries.map((_, k) => cities.filter((_, i) => cityCountry[i] === k));
  countries.forEach((k, ki) => {
    const cap = rng.pick(citiesOf[ki]);
    addFact(k, "capital", cap.id, cap.name);
  });
  cities.forEach((c, i) => addFact(c, "located_in", countries[cityCountry[i]].id, countries[cityCountry[i]].name));

  // Distinct birth years (so "who was born first" never ties).
  const span = Math.max(260, cfg.persons + 40);
  const years = rng.shuffle(Array.from({ length: span }, (_, i) => 1700 + i)).slice(0, cfg.persons);
  const birthYear = new Map<string, number>();
  persons.forEach((p, i) => {
    const c = rng.pick(cities);
    birthYear.set(p.id, years[i]);
    addFact(p, "born_in", c.id, c.name);
    addFact(p, "birth_year", String(years[i]), String(years[i]));
    const job = rng.pick(PROFESSIONS);
    addFact(p, "profession", job, job);
  });

  const founders = rng.shuffle(persons.slice());
  orgs.forEach((o, i) => {
    const p = founders[i % founders.length];
    const y = birthYear.get(p.id)! + 20 + rng.int(41);
    const c = rng.pick(cities);
    addFact(o, "founded_by", p.id, p.name);
    addFact(o, "founded_year", String(y), String(y));
    addFact(o, "headquarters", c.id, c.name);
  });
  const authors = rng.shuffle(persons.slice());
  works.forEach((w, i) => {
    const p = authors[i % authors.length];
    const y = birthYear.get(p.id)! + 18 + rng.int(53);
    addFact(w, "author", p.id, p.name);
    addFact(w, "published_year", String(y), String(y));
  });
  const factById = new Map(facts.map((f) => [f.id, f]));
  return { entities, byId, facts, factById };
}

function assignFameAndSplits(cfg: WorldConfig, s: Structure): void {
  const fameRng = stream(cfg.seed, "fame");
  const splitRng = stream(cfg.seed, "splits");
  const shares = WORLD_SPLITS.map((k) => cfg.splitShares[k]);
  for (const type of ENTITY_TYPES) {
    const ofType = s.entities.filter((e) => e.type === type);
    const nFamous = Math.round((cfg.internalShareByType[type] ?? cfg.internalShare) * ofType.length);
    fameRng.shuffle(ofType.slice()).forEach((e, i) => (e.famous = i < nFamous));
    if (type === "country") continue;
    const counts = apportion(ofType.length, shares);
    // Every split with a positive share gets at least one anchor when there are enough entities.
    for (let i = 0; i < counts.length; i++) {
      if (shares[i] > 0 && counts[i] === 0) {
        const donor = counts.indexOf(Math.max(...counts));
        if (counts[donor] > 1) {
          counts[donor]--;
          counts[i]++;
        }
      }
    }
    const order = splitRng.shuffle(ofType.slice());
    let at = 0;
    WORLD_SPLITS.forEach((split, i) => {
      for (let j = 0; j < counts[i]; j++) order[at++].split = split;
    });
  }
  for (const f of s.facts) f.internal = s.byId.get(f.subject)!.famous;
}

function buildPassages(cfg: WorldConfig, s: Structure): WorldPassage[] {
  const rng = stream(cfg.seed, "passages");
  const fact = (e: WorldEntity, r: WorldRelation): WorldFact => s.factById.get(factId(e.id, r))!;
  const one = (f: WorldFact, e: WorldEntity): string =>
    fill(rng.pick(FACT_TEMPLATES[f.relation]), { S: e.name, O: f.objectText, G: e.attrs.genre ?? "" });
  const pair = (key: string, e: WorldEntity, a: WorldFact, b: WorldFact): string =>
    fill(rng.pick(PAIR_TEMPLATES[key]!), { S: e.name, A: a.objectText, B: b.objectText });

  const pages: Array<Omit<WorldPassage, "id">> = [];
  const persons = s.entities.filter((e) => e.type === "person");
  const cities = s.entities.filter((e) => e.type === "city");
  for (const e of s.entities) {
    let sentences: string[];
    let facts: WorldFact[];
    switch (e.type) {
      case "country": {
        const f = fact(e, "capital");
        facts = [f];
        sentences = [one(f, e), fill(rng.pick(FILLER_TEMPLATES.country), { S: e.name, X: rng.pick(COUNTRY_FILLERS) })];
        break;
      }
      case "city": {
        const f = fact(e, "located_in");
        facts = [f];
        sentences = [one(f, e)];
        if (rng.next() < 0.5) sentences.push(fill(rng.pick(FILLER_TEMPLATES.city), { S: e.name, X: rng.pick(CITY_FILLERS) }));
        break;
      }
      case "person": {
        const a = fact(e, "born_in");
        const b = fact(e, "birth_year");
        const p = fact(e, "profession");
        facts = [a, b, p];
        sentences = [pair("born_in+birth_year", e, a, b), one(p, e)];
        break;
      }
      case "organisation": {
        const a = fact(e, "founded_by");
        const b = fact(e, "founded_year");
        const h = fact(e, "headquarters");
        facts = [a, b, h];
        sentences = [pair("founded_by+founded_year", e, a, b), one(h, e)];
        if (rng.next() < 0.5) sentences.reverse();
        break;
      }
      case "work": {
        const a = fact(e, "author");
        const y = fact(e, "published_year");
        facts = [a, y];
        sentences = [one(a, e), one(y, e)];
        break;
      }
    }
    pages.push({ title: e.name, text: sentences.join(" "), kind: "entity", entity: e.id, facts: facts.map((f) => f.id) });

    // Distractors: mention the entity, state nothing.
    const pool = DISTRACTOR_TEMPLATES[e.type].slice();
    let n = Math.floor(cfg.distractorRate) + (rng.next() < cfg.distractorRate % 1 ? 1 : 0);
    n = Math.min(n, pool.length);
    const related = new Set(s.facts.filter((f) => f.subject === e.id).map((f) => f.object));
    for (const t of rng.shuffle(pool).slice(0, n)) {
      let c = rng.pick(cities);
      for (let tries = 0; tries < 10 && related.has(c.id); tries++) c = rng.pick(cities);
      let p = rng.pick(persons);
      for (let tries = 0; tries < 10 && (p.id === e.id || related.has(p.id)); tries++) p = rng.pick(persons);
      const vars = { S: e.name, C: c.name, P: p.name, Y: String(1700 + rng.int(300)) };
      pages.push({ title: fill(t.title, vars), text: fill(t.text, vars), kind: "distractor", entity: e.id, facts: [] });
    }
  }
  const shuffled = rng.shuffle(pages);
  const passages: WorldPassage[] = shuffled.map((p, i) => ({ id: String(i), ...p }));
  for (const p of passages) for (const f of p.facts) s.factById.get(f)!.passages.push(p.id);
  return passages;
}

// ---------------------------------------------------------------------------------------------------------------
// Questions

interface Draft {
  template: string;
  kind: WorldQuestionKind;
  comparison: "yes-no" | "which" | null;
  answerType: WorldAnswerType;
  anchors: string[];
  question: string;
  answer: string;
  steps: string[];
  options?: string[];
}

type Single = (a: WorldEntity) => Draft | null;
type Pair = (a: WorldEntity, b: WorldEntity) => Draft | null;

interface TemplateSpec {
  name: string;
  kind: WorldQuestionKind;
  anchorType: WorldEntityType;
  ofOne?: Single;
  ofTwo?: Pair;
  /** Pair templates whose answer is yes/no by a property of the pair: the generator balances yes and no. */
  balance?: (a: WorldEntity, b: WorldEntity) => boolean;
}

function kindOf(hops: number): WorldQuestionKind {
  return hops === 1 ? "single" : hops === 2 ? "bridge" : "compositional";
}

function questionTemplates(s: Structure): TemplateSpec[] {
  const F = (e: WorldEntity | string, r: WorldRelation): WorldFact => {
    const id = typeof e === "string" ? e : e.id;
    const f = s.factById.get(factId(id, r));
    if (!f) throw new Error(`missing fact ${id} ${r}`);
    return f;
  };
  const q1 = (name: string, a: WorldEntity): string => fill(QUESTION_TEXTS[name], { A: a.name });
  const q2 = (name: string, a: WorldEntity, b: WorldEntity): string => fill(QUESTION_TEXTS[name], { A: a.name, B: b.name });
  const draft = (
    name: string,
    kind: WorldQuestionKind,
    anchors: WorldEntity[],
    question: string,
    answer: string,
    steps: WorldFact[],
    answerType: WorldAnswerType,
    comparison: Draft["comparison"] = null,
    options?: string[],
  ): Draft => ({
    template: name,
    kind,
    comparison,
    answerType,
    anchors: anchors.map((a) => a.id),
    question,
    answer,
    steps: steps.map((f) => f.id),
    ...(options ? { options } : {}),
  });

  // A chain of relations from an anchor: each step's object is the next step's subject.
  const chain = (start: WorldEntity, rels: WorldRelation[]): WorldFact[] => {
    const out: WorldFact[] = [];
    let cur = start.id;
    for (const r of rels) {
      const f = F(cur, r);
      out.push(f);
      cur = f.object;
    }
    return out;
  };
  const chainTemplate = (name: string, type: WorldEntityType, rels: WorldRelation[], answerType: WorldAnswerType): TemplateSpec => ({
    name,
    kind: kindOf(rels.length),
    anchorType: type,
    ofOne: (a) => {
      const steps = chain(a, rels);
      const last = steps[steps.length - 1];
      // The answer must not appear in the question (e.g. a capital city asked about itself).
      if (last.object === a.id || last.objectText === a.name) return null;
      return draft(name, kindOf(rels.length), [a], q1(name, a), last.objectText, steps, answerType);
    },
  });
  const year = (e: WorldEntity, r: WorldRelation): number => Number(F(e, r).object);

  return [
    chainTemplate("birthplace", "person", ["born_in"], "entity"),
    chainTemplate("birth_year", "person", ["birth_year"], "year"),
    chainTemplate("profession", "person", ["profession"], "profession"),
    chainTemplate("founder", "organisation", ["founded_by"], "entity"),
    chainTemplate("founded_year", "organisation", ["founded_year"], "year"),
    chainTemplate("headquarters", "organisation", ["headquarters"], "entity"),
    chainTemplate("author", "work", ["author"], "entity"),
    chainTemplate("published_year", "work", ["published_year"], "year"),
    chainTemplate("city_country", "city", ["located_in"], "entity"),
    chainTemplate("birth_country", "person", ["born_in", "located_in"], "entity"),
    chainTemplate("founder_birthplace", "organisation", ["founded_by", "born_in"], "entity"),
    chainTemplate("founder_birth_year", "organisation", ["founded_by", "birth_year"], "year"),
    chainTemplate("founder_profession", "organisation", ["founded_by", "profession"], "profession"),
    chainTemplate("author_birthplace", "work", ["author", "born_in"], "entity"),
    chainTemplate("author_birth_year", "work", ["author", "birth_year"], "year"),
    chainTemplate("author_profession", "work", ["author", "profession"], "profession"),
    chainTemplate("hq_country", "organisation", ["headquarters", "located_in"], "entity"),
    chainTemplate("city_country_capital", "city", ["located_in", "capital"], "entity"),
    chainTemplate("author_birth_country", "work", ["author", "born_in", "located_in"], "entity"),
    chainTemplate("founder_birth_country", "organisation", ["founded_by", "born_in", "located_in"], "entity"),
    chainTemplate("birth_country_capital", "person", ["born_in", "located_in", "capital"], "entity"),
    chainTemplate("hq_country_capital", "organisation", ["headquarters", "located_in", "capital"], "entity"),
    {
      name: "same_birth_city",
      kind: "comparison",
      anchorType: "person",
      balance: (a, b) => F(a, "born_in").object === F(b, "born_in").object,
      ofTwo: (a, b) => {
        const fa = F(a, "born_in");
        const fb = F(b, "born_in");
        const ans = fa.object === fb.object ? "yes" : "no";
        return draft("same_birth_city", "comparison", [a, b], q2("same_birth_city", a, b), ans, [fa, fb], "yes-no", "yes-no");
      },
    },
    {
      name: "born_before",
      kind: "comparison",
      anchorType: "person",
      ofTwo: (a, b) => {
        const ans = year(a, "birth_year") < year(b, "birth_year") ? "yes" : "no";
        const steps = [F(a, "birth_year"), F(b, "birth_year")];
        return draft("born_before", "comparison", [a, b], q2("born_before", a, b), ans, steps, "yes-no", "yes-no");
      },
    },
    {
      name: "born_first",
      kind: "comparison",
      anchorType: "person",
      ofTwo: (a, b) => {
        const ya = year(a, "birth_year");
        const yb = year(b, "birth_year");
        if (ya === yb) return null;
        const steps = [F(a, "birth_year"), F(b, "birth_year")];
        return draft("born_first", "comparison", [a, b], q2("born_first", a, b), ya < yb ? a.name : b.name, steps, "entity", "which", [a.name, b.name]);
      },
    },
    {
      name: "founded_first",
      kind: "comparison",
      anchorType: "organisation",
      ofTwo: (a, b) => {
        const ya = year(a, "founded_year");
        const yb = year(b, "founded_year");
        if (ya === yb) return null;
        const steps = [F(a, "founded_year"), F(b, "founded_year")];
        return draft("founded_first", "comparison", [a, b], q2("founded_first", a, b), ya < yb ? a.name : b.name, steps, "entity", "which", [a.name, b.name]);
      },
    },
    {
      name: "published_first",
      kind: "comparison",
      anchorType: "work",
      ofTwo: (a, b) => {
        const ya = year(a, "published_year");
        const yb = year(b, "published_year");
        if (ya === yb) return null;
        const steps = [F(a, "published_year"), F(b, "published_year")];
        return draft("published_first", "comparison", [a, b], q2("published_first", a, b), ya < yb ? a.name : b.name, steps, "entity", "which", [a.name, b.name]);
      },
    },
    {
      name: "same_country",
      kind: "comparison",
      anchorType: "city",
      balance: (a, b) => F(a, "located_in").object === F(b, "located_in").object,
      ofTwo: (a, b) => {
        const fa = F(a, "located_in");
        const fb = F(b, "located_in");
        const ans = fa.object === fb.object ? "yes" : "no";
        return draft("same_country", "comparison", [a, b], q2("same_country", a, b), ans, [fa, fb], "yes-no", "yes-no");
      },
    },
  ];
}

/** Draws questions of one template for one split, without repetition. */
class TemplateSampler {
  private readonly singles: WorldEntity[] = [];
  private readonly pairs: Array<[WorldEntity, WorldEntity]> = [];
  private readonly yes: Array<[WorldEntity, WorldEntity]> = [];
  private readonly no: Array<[WorldEntity, WorldEntity]> = [];
  private wantYes: boolean;
  constructor(
    readonly spec: TemplateSpec,
    anchors: WorldEntity[],
    private readonly rng: Rng,
  ) {
    this.wantYes = rng.next() < 0.5;
    if (spec.ofOne) {
      this.singles = rng.shuffle(anchors.slice());
    } else {
      const all: Array<[WorldEntity, WorldEntity]> = [];
      for (let i = 0; i < anchors.length; i++)
        for (let j = i + 1; j < anchors.length; j++)
          all.push(rng.next() < 0.5 ? [anchors[i], anchors[j]] : [anchors[j], anchors[i]]);
      rng.shuffle(all);
      if (spec.balance) for (const p of all) (spec.balance(p[0], p[1]) ? this.yes : this.no).push(p);
      else this.pairs = all;
    }
  }
  next(): Draft | null {
    const { spec } = this;
    for (;;) {
      if (spec.ofOne) {
        const a = this.singles.pop();
        if (!a) return null;
        const d = spec.ofOne(a);
        if (d) return d;
        continue;
      }
      let p: [WorldEntity, WorldEntity] | undefined;
      if (spec.balance) {
        const first = this.wantYes ? this.yes : this.no;
        const second = this.wantYes ? this.no : this.yes;
        p = first.pop() ?? second.pop();
        this.wantYes = !this.wantYes;
      } else p = this.pairs.pop();
      if (!p) return null;
      const d = spec.ofTwo!(p[0], p[1]);
      if (d) return d;
    }
  }
}

function buildQuestions(cfg: WorldConfig, s: Structure): WorldQuestion[] {
  const specs = questionTemplates(s);
  const kinds: WorldQuestionKind[] = ["single", "bridge", "comparison", "compositional"];
  const out: WorldQuestion[] = [];
  let idx = 1;
  for (const split of WORLD_SPLITS) {
    const rng = stream(cfg.seed, `questions-${split}`);
    const target = cfg.questions[split];
    const samplers = new Map<WorldQuestionKind, TemplateSampler[]>();
    for (const k of kinds) samplers.set(k, []);
    for (const spec of specs) {
      const anchors = s.entities.filter((e) => e.type === spec.anchorType && e.split === split);
      samplers.get(spec.kind)!.push(new TemplateSampler(spec, anchors, rng));
    }
    const drafts: Draft[] = [];
    const seen = new Set<string>();
    const cursor = new Map<WorldQuestionKind, number>(kinds.map((k) => [k, rng.int(1000)]));
    // Take one question of kind k (round-robin over its templates); null when the kind is exhausted.
    const takeOne = (k: WorldQuestionKind): Draft | null => {
      const list = samplers.get(k)!;
      for (let tries = 0; tries < list.length; tries++) {
        const c = cursor.get(k)!;
        cursor.set(k, c + 1);
        const sampler = list[c % list.length];
        for (;;) {
          const d = sampler.next();
          if (!d) break;
          if (seen.has(d.question)) continue;
          seen.add(d.question);
          return d;
        }
      }
      return null;
    };
    const quota = apportion(target, kinds.map((k) => cfg.mix[k]));
    const byKind = new Map<WorldQuestionKind, Draft[]>(kinds.map((k) => [k, []]));
    kinds.forEach((k, i) => {
      const list = byKind.get(k)!;
      while (list.length < quota[i]) {
        const d = takeOne(k);
        if (!d) break;
        list.push(d);
      }
    });
    if (cfg.fillShortfall) {
      // Fill what an exhausted kind could not give from the other kinds, in mix order (the mix drifts).
      const exhausted = new Set<WorldQuestionKind>();
      let total = kinds.reduce((a, k) => a + byKind.get(k)!.length, 0);
      while (total < target && exhausted.size < kinds.length) {
        for (const k of kinds) {
          if (total >= target || exhausted.has(k)) continue;
          const d = takeOne(k);
          if (d) {
            byKind.get(k)!.push(d);
            total++;
          } else exhausted.add(k);
        }
      }
      for (const k of kinds) drafts.push(...byKind.get(k)!);
    } else {
      // Keep the mix: scale every kind down by the most limiting one.
      let scale = 1;
      kinds.forEach((k, i) => {
        if (quota[i] > 0) scale = Math.min(scale, byKind.get(k)!.length / quota[i]);
      });
      const finalQuota = scale < 1 ? apportion(Math.floor(target * scale), kinds.map((k) => cfg.mix[k])) : quota;
      kinds.forEach((k, i) => drafts.push(...byKind.get(k)!.slice(0, finalQuota[i])));
    }
    rng.shuffle(drafts);
    for (const d of drafts) out.push(finishQuestion(d, split, idx++, s));
  }
  return out;
}

function finishQuestion(d: Draft, split: WorldSplit, idx: number, s: Structure): WorldQuestion {
  const steps: WorldQuestionStep[] = d.steps.map((id) => {
    const f = s.factById.get(id)!;
    return {
      fact: f.id,
      subject: f.subjectText,
      relation: f.relation,
      object: f.objectText,
      internal: f.internal,
      passages: f.passages.slice(),
      query: f.query,
      statement: f.statement,
    };
  });
  const seenPassages = new Set<string>();
  const idealQueries: string[] = [];
  for (const st of steps) {
    if (st.internal) continue;
    const key = st.passages.join(",");
    if (seenPassages.has(key)) continue;
    seenPassages.add(key);
    idealQueries.push(st.query);
  }
  const internal = steps.filter((x) => x.internal).length;
  return {
    idx,
    question: d.question,
    answer: d.answer,
    gen_text_store: "",
    metadata: {
      id: `${split}-${idx}`,
      split,
      kind: d.kind,
      template: d.template,
      comparison: d.comparison,
      answer_type: d.answerType,
      hops: steps.length,
      steps,
      internal_facts: internal,
      external_facts: steps.length - internal,
      ideal_retrievals: idealQueries.length,
      ideal_queries: idealQueries,
      anchors: d.anchors,
      ...(d.options ? { options: d.options } : {}),
    },
  };
}

/** Generate a world from a config (a preset's config from `worldConfig(preset, seed)`, or a custom one). */
export function generateWorld(input: WorldConfig | WorldConfigInput): World {
  const parsed = WorldConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new Error(`invalid world config: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const cfg = parsed.data;
  const s = buildEntities(cfg);
  assignFameAndSplits(cfg, s);
  const passages = buildPassages(cfg, s);
  const questions = buildQuestions(cfg, s);
  return { config: cfg, entities: s.entities, facts: s.facts, passages, questions };
}
