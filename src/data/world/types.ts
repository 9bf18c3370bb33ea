/**
 * The synthetic encyclopedic world: entities, facts, corpus passages and multi-hop questions.
 * See docs/world.md for the design.
 */
import { z } from "zod";

export const ENTITY_TYPES = ["country", "city", "person", "organisation", "work"] as const;
export type WorldEntityType = (typeof ENTITY_TYPES)[number];

export const WORLD_SPLITS = ["train", "dev", "test"] as const;
export type WorldSplit = (typeof WORLD_SPLITS)[number];

/** Relations between an entity (the subject) and an object (another entity or a literal). */
export const RELATIONS = [
  "capital", // country -> city
  "located_in", // city -> country
  "born_in", // person -> city
  "birth_year", // person -> year
  "profession", // person -> profession (literal)
  "founded_by", // organisation -> person
  "founded_year", // organisation -> year
  "headquarters", // organisation -> city
  "author", // work -> person
  "published_year", // work -> year
] as const;
export type WorldRelation = (typeof RELATIONS)[number];

export const QUESTION_KINDS = ["single", "bridge", "comparison", "compositional"] as const;
export type WorldQuestionKind = (typeof QUESTION_KINDS)[number];

export type WorldAnswerType = "entity" | "year" | "profession" | "yes-no";

export interface WorldEntity {
  id: string;
  type: WorldEntityType;
  name: string;
  /**
   * Famous entities are the ones a model knows from pre-training: every fact whose subject is famous is an
   * internal fact (written into the pre-training text); the facts of other entities are external (corpus only).
   */
  famous: boolean;
  /** Question split this entity anchors (persons, organisations, works, cities); null for countries. */
  split: WorldSplit | null;
  /** Non-relational descriptive attributes used in passages (e.g. a work's genre). */
  attrs: Record<string, string>;
}

export interface WorldFact {
  id: string;
  subject: string;
  relation: WorldRelation;
  /** Entity id for entity-valued relations, the literal otherwise. */
  object: string;
  /** Surface text of the object (entity name or literal). */
  objectText: string;
  subjectText: string;
  /** True when the fact is in the pre-training text (its subject is famous). */
  internal: boolean;
  /** Ids of the corpus passages that state this fact (exactly these; see checkWorld). */
  passages: string[];
  /** Ideal keyword query for this fact ("entity relation-keyword"); every word occurs in the passage. */
  query: string;
  /** Canonical one-sentence statement of the fact (used for `<internal>` steps and memorization). */
  statement: string;
}

export type WorldPassageKind = "entity" | "distractor";

export interface WorldPassage {
  /** Numeric string id (the upstream clients strip a leading `^\d+\s+` from corpus lines). */
  id: string;
  title: string;
  text: string;
  kind: WorldPassageKind;
  /** The entity the page is about (distractors: the entity they mention). */
  entity: string;
  /** Facts stated in this passage. */
  facts: string[];
}

/** One reasoning step of a question: a fact to look up (or recall). */
export interface WorldQuestionStep {
  fact: string;
  subject: string;
  relation: WorldRelation;
  object: string;
  internal: boolean;
  passages: string[];
  query: string;
  statement: string;
}

export interface WorldQuestionMeta {
  id: string;
  split: WorldSplit;
  kind: WorldQuestionKind;
  /** Question template name (e.g. "birth_country", "same_birth_city"). */
  template: string;
  /** "yes-no" and "which" for comparisons; null otherwise. */
  comparison: "yes-no" | "which" | null;
  answer_type: WorldAnswerType;
  /** Number of facts the question needs (reasoning hops). */
  hops: number;
  /** The facts needed, in reasoning order. */
  steps: WorldQuestionStep[];
  internal_facts: number;
  external_facts: number;
  /** Fewest retrievals a perfect agent needs: the distinct passages holding the external facts. */
  ideal_retrievals: number;
  /** The ideal search queries, one per needed retrieval, in order. */
  ideal_queries: string[];
  /** Entities the question is about (its split is decided by them). */
  anchors: string[];
  /** For "which" comparisons: the two options in question order. */
  options?: string[];
}

/** A question row: upstream R1-Searcher fields (`idx`, `question`, `answer`, `gen_text_store`) + `metadata`. */
export interface WorldQuestion {
  idx: number;
  question: string;
  answer: string;
  gen_text_store: string;
  metadata: WorldQuestionMeta;
}

export interface World {
  config: WorldConfig;
  entities: WorldEntity[];
  facts: WorldFact[];
  passages: WorldPassage[];
  questions: WorldQuestion[];
}

const mix = z
  .object({
    single: z.number().min(0).default(0),
    bridge: z.number().min(0),
    comparison: z.number().min(0),
    compositional: z.number().min(0),
  })
  .refine((m) => m.single + m.bridge + m.comparison + m.compositional > 0, "question mix must not be all zero");

export const WorldConfigSchema = z.object({
  preset: z.string().default("custom"),
  seed: z.number().int().nonnegative().default(1),
  countries: z.number().int().min(2),
  cities: z.number().int().min(2),
  persons: z.number().int().min(4),
  organisations: z.number().int().min(2),
  works: z.number().int().min(2),
  /** Share of entities (per type) that are famous; facts about them are internal. */
  internalShare: z.number().min(0).max(1),
  /**
   * Per-type overrides of `internalShare` (e.g. `{ country: 1, city: 1, person: 0 }`): which kinds of entities a model
   * knows, like a real model that knows geography better than obscure people. Types not named use `internalShare`.
   */
  internalShareByType: z.partialRecord(z.enum(ENTITY_TYPES), z.number().min(0).max(1)).default({}),
  /** Share of anchor entities per split (train / dev / test); normalized. */
  splitShares: z.object({ train: z.number().min(0), dev: z.number().min(0), test: z.number().min(0) }),
  /** Questions per split (upper bounds: fewer are made when the split's anchors allow fewer distinct questions). */
  questions: z.object({ train: z.number().int().min(0), dev: z.number().int().min(0), test: z.number().int().min(0) }),
  /** Target share of question kinds. */
  mix,
  /**
   * When a split's anchors give fewer questions of a kind than its share asks for: false (default) scales every kind
   * down so the mix holds; true fills the shortfall with questions of the other kinds.
   */
  fillShortfall: z.boolean().default(false),
  /** Distractor passages per entity (expected value; 0 = none). */
  distractorRate: z.number().min(0).max(3),
  /** How many paraphrases of each internal fact the pre-training text holds. */
  pretrainFactRepeats: z.number().int().min(0),
  /** How many single-hop question/answer texts per internal fact the pre-training text holds. */
  pretrainQaPerFact: z.number().int().min(0),
});
export type WorldConfig = z.infer<typeof WorldConfigSchema>;
export type WorldConfigInput = z.input<typeof WorldConfigSchema>;
