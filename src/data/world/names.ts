/**
 * Entity names built from a small fixed syllable inventory, so a small-vocabulary BPE tokenizer learns each syllable
 * (and each type suffix) as one token and a name costs 2-4 tokens. Every name word is unique across the world
 * (first names excepted, which come from a shared pool), so a name never collides with another entity, an answer or
 * a template word.
 */
import type { Rng } from "../../util/rng.js";

export const SYLLABLES = [
  "ka", "lo", "mi", "ra", "ven", "tor", "sa", "bel", "dor", "fi", "gan", "hel", "ir", "jo", "kel", "lu",
  "mar", "nor", "os", "pel", "ren", "sil", "tam", "ul", "var", "wen", "zan", "bro", "cal", "del", "eth", "gor",
] as const;

const CITY_SUFFIXES = ["ford", "mere", "holm", "gard"] as const;
const COUNTRY_SUFFIXES = ["ia", "land"] as const;
const ORG_KINDS = ["Guild", "Company", "Society", "Academy", "Bank"] as const;
const WORK_ADJECTIVES = [
  "Silent", "Golden", "Broken", "Hidden", "Distant", "Frozen", "Burning", "Quiet", "Wandering", "Scarlet", "Hollow",
  "Endless", "Ancient", "Bitter", "Gentle", "Restless",
] as const;
const WORK_NOUNS = [
  "River", "Tower", "Garden", "Mirror", "Harbour", "Lantern", "Meadow", "Crown", "Bridge", "Orchard", "Winter",
  "Shadow", "Voyage", "Letter", "Island", "Forest",
] as const;

export const PROFESSIONS = [
  "painter", "poet", "sculptor", "merchant", "builder", "teacher", "doctor", "singer", "farmer", "soldier", "judge",
  "banker",
] as const;
export const GENRES = ["novel", "poem", "play", "song"] as const;

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Draws unique names; `reserved` holds lower-cased words that must never be produced (template words). */
export class NameGenerator {
  private readonly used = new Set<string>();
  private readonly titles = new Set<string>();
  constructor(
    private readonly rng: Rng,
    reserved: Iterable<string> = [],
  ) {
    for (const w of reserved) this.used.add(w.toLowerCase());
  }

  private syllables(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += this.rng.pick(SYLLABLES);
    return s;
  }

  /** A fresh word made of `n` syllables plus an optional suffix (tries more syllables when the space runs dry). */
  private word(n: number, suffix = ""): string {
    for (let attempt = 0; attempt < 20000; attempt++) {
      const len = n + Math.floor(attempt / 400);
      const w = cap(this.syllables(len) + suffix);
      const key = w.toLowerCase();
      if (this.used.has(key)) continue;
      // Avoid doubled syllables like "Kaka", which tokenize poorly and read oddly.
      if (/^(.{2,3})\1/i.test(w)) continue;
      this.used.add(key);
      return w;
    }
    throw new Error("name space exhausted: make the world smaller");
  }

  country(): string {
    return this.word(1, this.rng.pick(COUNTRY_SUFFIXES));
  }
  city(): string {
    return this.word(1, this.rng.pick(CITY_SUFFIXES));
  }
  /** A pool of first names shared by persons. */
  firstNames(n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.word(2));
    return out;
  }
  lastName(): string {
    return this.word(2);
  }
  organisation(): string {
    return `${this.word(2)} ${this.rng.pick(ORG_KINDS)}`;
  }
  /** "The Adjective Noun" titles; unique as a whole (their words are English and shared between titles). */
  workTitle(): string {
    for (let attempt = 0; attempt < 5000; attempt++) {
      const t = `The ${this.rng.pick(WORK_ADJECTIVES)} ${this.rng.pick(WORK_NOUNS)}`;
      if (this.titles.has(t)) continue;
      this.titles.add(t);
      return t;
    }
    throw new Error("work title space exhausted: make the world smaller");
  }
  static readonly maxWorks = WORK_ADJECTIVES.length * WORK_NOUNS.length;
}

/** Words used by the fixed (non-name) vocabulary of names: kinds, title words. */
export const NAME_VOCABULARY: readonly string[] = [...ORG_KINDS, ...WORK_ADJECTIVES, ...WORK_NOUNS, "The"];
