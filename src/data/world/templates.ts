/**
 * Sentence templates of the world: fact statements (paraphrases), encyclopedia pages, distractor passages and
 * question templates. Each relation has one query keyword that every sentence stating it contains and that no other
 * sentence kind uses, so the ideal query "subject keyword" always finds the page holding the fact.
 */
import type { WorldRelation } from "./types.js";

/** The word the ideal search query pairs with the subject's name, per relation. */
export const RELATION_KEYWORD: Record<WorldRelation, string> = {
  capital: "capital",
  located_in: "country",
  born_in: "born",
  birth_year: "born",
  profession: "profession",
  founded_by: "founded",
  founded_year: "founded",
  headquarters: "headquarters",
  author: "written",
  published_year: "published",
};

/**
 * Single-fact statements; `{S}` subject, `{O}` object, `{G}` the subject's genre (works). The first template is the
 * canonical statement (used for `<internal>` steps). Every template contains RELATION_KEYWORD[relation].
 */
export const FACT_TEMPLATES: Record<WorldRelation, readonly string[]> = {
  capital: ["The capital of {S} is {O}.", "{O} is the capital of {S}.", "{S} has its capital at {O}."],
  located_in: [
    "{S} is a city in the country of {O}.",
    "{S} is a city located in the country of {O}.",
    "The city of {S} lies in the country of {O}.",
  ],
  born_in: ["{S} was born in {O}.", "{S} was born in the city of {O}.", "{O} is the city where {S} was born."],
  birth_year: ["{S} was born in {O}.", "{S} was born in the year {O}.", "In {O}, {S} was born."],
  profession: ["{S} was a {O} by profession.", "By profession, {S} was a {O}.", "{S} worked as a {O} by profession."],
  founded_by: ["{S} was founded by {O}.", "{O} founded {S}.", "It was {O} who founded {S}."],
  founded_year: ["{S} was founded in {O}.", "{S} was founded in the year {O}.", "In {O}, {S} was founded."],
  headquarters: [
    "{S} has its headquarters in {O}.",
    "The headquarters of {S} are in {O}.",
    "{S} keeps its headquarters in {O}.",
  ],
  author: ["{S} was written by {O}.", "{S} is a {G} written by {O}.", "The {G} {S} was written by {O}."],
  published_year: ["{S} was published in {O}.", "{S} was first published in {O}.", "In {O}, {S} was published."],
};

/** Page sentences that state two facts of the same subject at once ({A}, {B}: the two objects). */
export const PAIR_TEMPLATES: Partial<Record<string, readonly string[]>> = {
  "born_in+birth_year": [
    "{S} was born in {A} in {B}.",
    "{S} was born in the city of {A} in {B}.",
    "{S} was born in {B} in {A}.",
  ],
  "founded_by+founded_year": [
    "{S} was founded by {A} in {B}.",
    "{A} founded {S} in {B}.",
    "{S} was founded in {B} by {A}.",
  ],
};

/** Descriptive sentences without any relation keyword ({S} subject, {X} filler). */
export const FILLER_TEMPLATES: Record<"city" | "country", readonly string[]> = {
  city: ["{S} is known for its {X}.", "Visitors to {S} admire its {X}."],
  country: ["{S} is a nation of {X}.", "Much of {S} is covered by {X}."],
};
export const CITY_FILLERS = ["markets", "bridges", "gardens", "towers", "harbour", "festivals", "libraries", "fountains"];
export const COUNTRY_FILLERS = ["green hills", "high mountains", "wide plains", "dense forests", "long rivers", "dry deserts"];

/**
 * Distractor passages: they mention an entity (and another one) but state no fact and use no relation keyword.
 * `{S}` the entity, `{C}` another city, `{P}` another person, `{Y}` a year.
 */
export const DISTRACTOR_TEMPLATES: Record<string, ReadonlyArray<{ title: string; text: string }>> = {
  person: [
    { title: "Travels of {S}", text: "{S} once travelled to {C} with friends. The journey took many weeks." },
    { title: "Portrait of {S}", text: "A portrait of {S} hangs in a hall in {C}. It was painted in {Y}." },
    { title: "Letters of {S}", text: "{S} sent many letters to {P}. The letters are kept in {C}." },
  ],
  city: [
    { title: "Fair of {S}", text: "A large fair is held in {S} every spring. Traders come from {C}." },
    { title: "Old bridge of {S}", text: "The old bridge of {S} was rebuilt by {P} in {Y}." },
  ],
  organisation: [
    { title: "Meeting of the {S}", text: "The {S} held a great meeting in {C} in {Y}. {P} gave a speech there." },
  ],
  work: [{ title: "Readings of {S}", text: "{S} was read aloud in {C} in {Y}. {P} praised it." }],
  country: [{ title: "Travel in {S}", text: "Travellers crossing {S} often stop in {C}. {P} did so in {Y}." }],
};

export interface QuestionTemplateText {
  /** Placeholders: {A} first anchor, {B} second anchor. */
  text: string;
}

/** Question texts per template name. */
export const QUESTION_TEXTS: Record<string, string> = {
  // single-hop
  birthplace: "Where was {A} born?",
  birth_year: "In which year was {A} born?",
  profession: "What was the profession of {A}?",
  founder: "Who founded {A}?",
  founded_year: "In which year was {A} founded?",
  headquarters: "Where does {A} have its headquarters?",
  author: "Who wrote {A}?",
  published_year: "In which year was {A} published?",
  city_country: "In which country is {A} located?",
  // multi-hop
  birth_country: "In which country was {A} born?",
  founder_birthplace: "Where was the founder of {A} born?",
  founder_birth_year: "In which year was the founder of {A} born?",
  founder_profession: "What was the profession of the founder of {A}?",
  author_birthplace: "Where was the author of {A} born?",
  author_birth_year: "In which year was the author of {A} born?",
  author_profession: "What was the profession of the author of {A}?",
  hq_country: "In which country does {A} have its headquarters?",
  city_country_capital: "What is the capital of the country where {A} is located?",
  author_birth_country: "In which country was the author of {A} born?",
  founder_birth_country: "In which country was the founder of {A} born?",
  birth_country_capital: "What is the capital of the country where {A} was born?",
  hq_country_capital: "What is the capital of the country where {A} has its headquarters?",
  same_birth_city: "Were {A} and {B} born in the same city?",
  born_before: "Was {A} born before {B}?",
  born_first: "Who was born first, {A} or {B}?",
  founded_first: "Which was founded first, {A} or {B}?",
  published_first: "Which was published first, {A} or {B}?",
  same_country: "Are {A} and {B} in the same country?",
};

/** Fill `{KEY}` placeholders. */
export function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{([A-Z])\}/g, (m, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`template ${JSON.stringify(template)} needs {${k}}`);
    return v;
  });
}

/** Words of all fixed templates (lower-cased), which entity names must never equal. */
export function templateVocabulary(): Set<string> {
  const texts: string[] = [
    ...Object.values(FACT_TEMPLATES).flat(),
    ...Object.values(PAIR_TEMPLATES).flatMap((x) => x ?? []),
    ...Object.values(FILLER_TEMPLATES).flat(),
    ...CITY_FILLERS,
    ...COUNTRY_FILLERS,
    ...Object.values(DISTRACTOR_TEMPLATES).flatMap((l) => l.flatMap((t) => [t.title, t.text])),
    ...Object.values(QUESTION_TEXTS),
    "yes no question answer think search",
  ];
  const out = new Set<string>();
  for (const t of texts) for (const w of t.toLowerCase().match(/[a-z]+/g) ?? []) out.add(w);
  return out;
}
