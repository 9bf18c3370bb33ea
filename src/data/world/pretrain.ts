/**
 * Text for pre-training the built-in model on the world, and the optional "protocol prior".
 *
 * Pre-training text (`worldPretrainDocs`) is what a base model would have read: the INTERNAL facts only (famous
 * entities), as encyclopedia paragraphs in varied paraphrases, plus short question/answer texts about those facts in
 * the think/answer format. It never shows the search protocol and never holds an external fact.
 *
 * The protocol prior (`protocolPriorDocs`) is a separate, clearly labelled text: a short search-tool manual with worked
 * single-hop examples in a protocol's format. A tiny model never emits multi-token query tags by chance, so without
 * some prior the RL stage that rewards searching has nothing to reinforce. The examples only use facts that no dev or
 * test question needs, and the amount is a parameter (0 disables it). See docs/world.md.
 */
import type { ResponseProtocol } from "../../protocol/types.js";
import { Rng, hashSeed } from "../../util/rng.js";
import { FACT_TEMPLATES, PAIR_TEMPLATES, QUESTION_TEXTS, fill } from "./templates.js";
import { renderIdealTrajectory, trajectoryTags, type IdealMode, type IdealTrajectoryOptions } from "./trajectory.js";
import type { World, WorldFact, WorldQuestion, WorldQuestionMeta, WorldQuestionStep, WorldRelation } from "./types.js";

export type PretrainSource = "facts" | "qa" | "chains" | "protocol-prior";

export interface PretrainDoc {
  text: string;
  source: PretrainSource;
  /** The protocol of a protocol-prior document. */
  protocol?: string;
}

/** Single-hop question template per relation (the subject is {A}). */
export const SINGLE_HOP_TEMPLATE: Record<WorldRelation, string> = {
  capital: "What is the capital of {A}?",
  located_in: QUESTION_TEXTS.city_country,
  born_in: QUESTION_TEXTS.birthplace,
  birth_year: QUESTION_TEXTS.birth_year,
  profession: QUESTION_TEXTS.profession,
  founded_by: QUESTION_TEXTS.founder,
  founded_year: QUESTION_TEXTS.founded_year,
  headquarters: QUESTION_TEXTS.headquarters,
  author: QUESTION_TEXTS.author,
  published_year: QUESTION_TEXTS.published_year,
};

export function singleHopQuestion(f: WorldFact): { question: string; answer: string } {
  return { question: fill(SINGLE_HOP_TEMPLATE[f.relation], { A: f.subjectText }), answer: f.objectText };
}

function stepOf(f: WorldFact): WorldQuestionStep {
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
}

/** A single-hop pseudo-question about one fact (for Q/A texts and protocol-prior examples; never in a split file). */
export function singleHopWorldQuestion(f: WorldFact): Pick<WorldQuestion, "question" | "answer" | "metadata"> {
  const { question, answer } = singleHopQuestion(f);
  const meta: WorldQuestionMeta = {
    id: `fact-${f.id}`,
    split: "train",
    kind: "single",
    template: `single:${f.relation}`,
    comparison: null,
    answer_type: /^\d+$/.test(f.objectText) ? "year" : f.relation === "profession" ? "profession" : "entity",
    hops: 1,
    steps: [stepOf(f)],
    internal_facts: f.internal ? 1 : 0,
    external_facts: f.internal ? 0 : 1,
    ideal_retrievals: f.internal ? 0 : 1,
    ideal_queries: f.internal ? [] : [f.query],
    anchors: [f.subject],
  };
  return { question, answer, metadata: meta };
}

export interface PretrainOptions {
  /** Paraphrased encyclopedia paragraphs per famous entity (default: the world config's `pretrainFactRepeats`). */
  factRepeats?: number;
  /** Single-hop Q/A texts per internal fact (default: the world config's `pretrainQaPerFact`). */
  qaPerFact?: number;
  /** Add multi-hop reasoning texts (no search) for TRAIN questions whose facts are all internal (default true). */
  trainChains?: boolean;
  /** Wrapper of Q/A texts; `{question}` is replaced (default "Question: {question}\nAnswer: "). */
  qaWrapper?: string;
  seed?: number;
}

export const DEFAULT_QA_WRAPPER = "Question: {question}\nAnswer: ";

function wrap(wrapper: string, question: string): string {
  return wrapper.replace("{question}", question);
}

/** Sentences stating the facts of one entity, with random paraphrases (pair templates where the page uses them). */
function entityParagraph(facts: WorldFact[], rng: Rng, genre: string | undefined): string {
  const by = new Map(facts.map((f) => [f.relation, f]));
  const out: string[] = [];
  const used = new Set<string>();
  for (const key of Object.keys(PAIR_TEMPLATES)) {
    const [ra, rb] = key.split("+") as [WorldRelation, WorldRelation];
    const a = by.get(ra);
    const b = by.get(rb);
    if (a && b && rng.next() < 0.5) {
      out.push(fill(rng.pick(PAIR_TEMPLATES[key]!), { S: a.subjectText, A: a.objectText, B: b.objectText }));
      used.add(a.id).add(b.id);
    }
  }
  for (const f of facts) {
    if (used.has(f.id)) continue;
    out.push(fill(rng.pick(FACT_TEMPLATES[f.relation]), { S: f.subjectText, O: f.objectText, G: genre ?? "" }));
  }
  return rng.shuffle(out).join(" ");
}

/**
 * The pre-training documents of a world: internal facts only. Q/A texts never repeat a dev/test question.
 * `protocol` gives the think/answer tags of the Q/A texts (both built-in R1 protocols share them).
 */
export function worldPretrainDocs(world: World, protocol: ResponseProtocol, opts: PretrainOptions = {}): PretrainDoc[] {
  const cfg = world.config;
  const rng = new Rng(hashSeed("searchrl-pretrain", opts.seed ?? cfg.seed));
  const repeats = opts.factRepeats ?? cfg.pretrainFactRepeats;
  const qaPer = opts.qaPerFact ?? cfg.pretrainQaPerFact;
  const wrapper = opts.qaWrapper ?? DEFAULT_QA_WRAPPER;
  const tags = trajectoryTags(protocol);
  const heldOut = new Set(world.questions.filter((q) => q.metadata.split !== "train").map((q) => q.question));
  const docs: PretrainDoc[] = [];

  const internalBySubject = new Map<string, WorldFact[]>();
  for (const f of world.facts) {
    if (!f.internal) continue;
    const l = internalBySubject.get(f.subject) ?? [];
    l.push(f);
    internalBySubject.set(f.subject, l);
  }
  const genre = new Map(world.entities.map((e) => [e.id, e.attrs.genre]));
  for (let r = 0; r < repeats; r++) {
    for (const [subject, facts] of internalBySubject) {
      docs.push({ text: entityParagraph(facts, rng, genre.get(subject)), source: "facts" });
    }
  }
  const answerText = (reasoning: string, answer: string): string =>
    tags.thinkOpen +
    ` ${reasoning} ${tags.thinkClose}\n\n${protocol.answerOpen} ${answer} ${protocol.answerClose}`;
  for (let r = 0; r < qaPer; r++) {
    for (const f of world.facts) {
      if (!f.internal) continue;
      const { question, answer } = singleHopQuestion(f);
      if (heldOut.has(question)) continue;
      const statement = fill(rng.pick(FACT_TEMPLATES[f.relation]), { S: f.subjectText, O: f.objectText, G: genre.get(f.subject) ?? "" });
      docs.push({ text: wrap(wrapper, question) + answerText(statement, answer), source: "qa" });
    }
  }
  if (opts.trainChains ?? true) {
    for (const q of world.questions) {
      if (q.metadata.split !== "train" || q.metadata.external_facts > 0) continue;
      const reasoning = q.metadata.steps.map((s) => s.statement).join(" ") + ` So the answer is ${q.answer}.`;
      docs.push({ text: wrap(wrapper, q.question) + answerText(reasoning, q.answer), source: "chains" });
    }
  }
  return rng.shuffle(docs);
}

/** Facts that no dev or test question needs (the only facts protocol-prior examples may use). */
export function trainOnlyFacts(world: World): WorldFact[] {
  const heldOut = new Set<string>();
  for (const q of world.questions) if (q.metadata.split !== "train") for (const s of q.metadata.steps) heldOut.add(s.fact);
  return world.facts.filter((f) => !heldOut.has(f.id));
}

export interface ProtocolPriorOptions {
  /** Number of worked examples (default: one per eligible external fact). 0 gives no documents. */
  count?: number;
  /** Also show examples of recalling an internal fact (protocols with internal tags; default true). */
  includeInternal?: boolean;
  /** Passages per query (default 3): the fact's page first, then other pages of the same subject or random ones. */
  k?: number;
  /** Real retrieval results instead of the default (see `renderIdealTrajectory`). */
  documents?: IdealTrajectoryOptions["documents"];
  mode?: IdealMode;
  qaWrapper?: string;
  /** Prepend the one-paragraph search-tool manual to every example (default true). */
  manual?: boolean;
  seed?: number;
}

/** The one-paragraph search-tool manual, in a protocol's tags. */
export function searchToolManual(protocol: ResponseProtocol): string {
  const tags = trajectoryTags(protocol);
  let s = `Search tool manual. To look up a fact, write ${protocol.queryOpen} keywords ${protocol.queryClose} with the name and one keyword, for example ${protocol.queryOpen} Name born ${protocol.queryClose}. The search system then shows the matching pages. Read them and answer with ${protocol.answerOpen} answer ${protocol.answerClose}.`;
  if (tags.internalOpen && tags.internalClose) {
    s += ` When you already know a fact, write it as ${tags.internalOpen} fact ${tags.internalClose} instead of searching.`;
  }
  return s;
}

/**
 * Worked single-hop examples of the search protocol on facts that no dev/test question needs (a "search tool
 * manual" a base model might have read). Clearly separate from the pre-training text: the quickstart decides how
 * much of it to mix in.
 */
export function protocolPriorDocs(world: World, protocol: ResponseProtocol, opts: ProtocolPriorOptions = {}): PretrainDoc[] {
  const rng = new Rng(hashSeed("searchrl-prior", opts.seed ?? world.config.seed, protocol.name));
  const tags = trajectoryTags(protocol);
  const k = opts.k ?? 3;
  const wrapper = opts.qaWrapper ?? DEFAULT_QA_WRAPPER;
  const eligible = trainOnlyFacts(world).filter((f) => !f.internal || ((opts.includeInternal ?? true) && tags.internalOpen));
  const pool = rng.shuffle(eligible.slice());
  const count = Math.min(opts.count ?? pool.filter((f) => !f.internal).length, pool.length);
  const bySubject = new Map<string, string[]>();
  for (const p of world.passages) {
    const l = bySubject.get(p.entity) ?? [];
    l.push(p.id);
    bySubject.set(p.entity, l);
  }
  const byId = new Map(world.passages.map((p) => [p.id, p]));
  const factById = new Map(world.facts.map((f) => [f.id, f]));
  const documents =
    opts.documents ??
    ((_: string, step: WorldQuestionStep) => {
      const f = factById.get(step.fact)!;
      const ids = [...step.passages];
      for (const id of rng.shuffle((bySubject.get(f.subject) ?? []).slice())) if (ids.length < k && !ids.includes(id)) ids.push(id);
      while (ids.length < Math.min(k, world.passages.length)) {
        const id = rng.pick(world.passages).id;
        if (!ids.includes(id)) ids.push(id);
      }
      // The page holding the fact is not always ranked first.
      const [head, ...rest] = ids;
      const order = rng.next() < 0.7 ? [head, ...rest] : rng.shuffle([head, ...rest]);
      return order.map((id) => {
        const p = byId.get(id)!;
        return { id: p.id, title: p.title, text: p.text };
      });
    });
  const docs: PretrainDoc[] = [];
  for (const f of pool.slice(0, count)) {
    const q = singleHopWorldQuestion(f);
    const traj = renderIdealTrajectory(q, protocol, { mode: opts.mode, documents });
    const prompt = wrap(wrapper, q.question) + (tags.promptOpensThink ? tags.thinkOpen : "");
    const text = ((opts.manual ?? true) ? searchToolManual(protocol) + "\n" : "") + prompt + traj.response;
    docs.push({ text, source: "protocol-prior", protocol: protocol.name });
  }
  return docs;
}
