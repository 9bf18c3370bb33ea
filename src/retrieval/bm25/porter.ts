/**
 * The Porter (1980) suffix-stripping stemmer, in the form of the reference implementation used by Lucene's
 * `PorterStemFilter` (with its documented departures: `bli`→`ble` and `logi`→`log` in step 2).
 * Input must be lower-case; words of one or two letters are returned unchanged.
 */

function isConsonant(w: string, i: number): boolean {
  const c = w.charCodeAt(i);
  // a e i o u
  if (c === 97 || c === 101 || c === 105 || c === 111 || c === 117) return false;
  if (c === 121) return i === 0 ? true : !isConsonant(w, i - 1); // y
  return true;
}

/** m(): the number of VC sequences in w[0..end). */
function measure(w: string, end: number): number {
  let n = 0;
  let i = 0;
  while (i < end && isConsonant(w, i)) i++;
  while (i < end) {
    while (i < end && !isConsonant(w, i)) i++;
    if (i >= end) break;
    while (i < end && isConsonant(w, i)) i++;
    n++;
  }
  return n;
}

function hasVowel(w: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (!isConsonant(w, i)) return true;
  return false;
}

function doubleConsonant(w: string, end: number): boolean {
  return end >= 2 && w.charCodeAt(end - 1) === w.charCodeAt(end - 2) && isConsonant(w, end - 1);
}

/** *o: the stem ends consonant-vowel-consonant and the last consonant is not w, x or y. */
function cvc(w: string, end: number): boolean {
  if (end < 3 || !isConsonant(w, end - 1) || isConsonant(w, end - 2) || !isConsonant(w, end - 3)) return false;
  const c = w.charCodeAt(end - 1);
  return c !== 119 && c !== 120 && c !== 121;
}

type Rule = readonly [suffix: string, replacement: string];

const STEP2: readonly Rule[] = [
  ["ational", "ate"],
  ["tional", "tion"],
  ["enci", "ence"],
  ["anci", "ance"],
  ["izer", "ize"],
  ["bli", "ble"],
  ["alli", "al"],
  ["entli", "ent"],
  ["eli", "e"],
  ["ousli", "ous"],
  ["ization", "ize"],
  ["ation", "ate"],
  ["ator", "ate"],
  ["alism", "al"],
  ["iveness", "ive"],
  ["fulness", "ful"],
  ["ousness", "ous"],
  ["aliti", "al"],
  ["iviti", "ive"],
  ["biliti", "ble"],
  ["logi", "log"],
];

const STEP3: readonly Rule[] = [
  ["icate", "ic"],
  ["ative", ""],
  ["alize", "al"],
  ["iciti", "ic"],
  ["ical", "ic"],
  ["ful", ""],
  ["ness", ""],
];

const STEP4 = [
  "al",
  "ance",
  "ence",
  "er",
  "ic",
  "able",
  "ible",
  "ant",
  "ement",
  "ment",
  "ent",
  "ion",
  "ou",
  "ism",
  "ate",
  "iti",
  "ous",
  "ive",
  "ize",
];

/**
 * Apply the first rule (by the reference implementation's order: rules are grouped by the suffix's penultimate letter,
 * and the first matching suffix decides) whose suffix matches; replace when m(stem) > minM.
 */
function applyRules(w: string, rules: readonly Rule[], minM: number): string {
  // Group order in the reference implementation is by the penultimate letter of the word; within a group the listed
  // order. Since no two rules of different groups can match the same word, "first matching rule in list order among
  // those sharing the word's penultimate letter" equals "first matching rule whose suffix matches".
  let best: Rule | null = null;
  for (const r of rules) {
    if (w.endsWith(r[0])) {
      best = r;
      break;
    }
  }
  if (!best) return w;
  const stemEnd = w.length - best[0].length;
  return measure(w, stemEnd) > minM ? w.slice(0, stemEnd) + best[1] : w;
}

/** Porter-stem one lower-case word. */
export function porterStem(word: string): string {
  if (word.length <= 2) return word;
  let w = word;
  // Step 1a
  if (w.endsWith("sses")) w = w.slice(0, -2);
  else if (w.endsWith("ies")) w = w.slice(0, -2);
  else if (!w.endsWith("ss") && w.endsWith("s")) w = w.slice(0, -1);
  // Step 1b
  let extra = false;
  if (w.endsWith("eed")) {
    if (measure(w, w.length - 3) > 0) w = w.slice(0, -1);
  } else if (w.endsWith("ed") && hasVowel(w, w.length - 2)) {
    w = w.slice(0, -2);
    extra = true;
  } else if (w.endsWith("ing") && hasVowel(w, w.length - 3)) {
    w = w.slice(0, -3);
    extra = true;
  }
  if (extra) {
    if (w.endsWith("at") || w.endsWith("bl") || w.endsWith("iz")) w += "e";
    else if (doubleConsonant(w, w.length)) {
      const c = w.charCodeAt(w.length - 1);
      if (c !== 108 && c !== 115 && c !== 122) w = w.slice(0, -1); // not l, s, z
    } else if (measure(w, w.length) === 1 && cvc(w, w.length)) w += "e";
  }
  // Step 1c
  if (w.endsWith("y") && hasVowel(w, w.length - 1)) w = w.slice(0, -1) + "i";
  // Step 2, 3
  w = applyRules(w, STEP2, 0);
  w = applyRules(w, STEP3, 0);
  // Step 4
  for (const s of STEP4) {
    if (!w.endsWith(s)) continue;
    const stemEnd = w.length - s.length;
    if (measure(w, stemEnd) > 1) {
      if (s === "ion") {
        const c = stemEnd > 0 ? w.charCodeAt(stemEnd - 1) : 0;
        if (c === 115 || c === 116) w = w.slice(0, stemEnd); // s or t
      } else w = w.slice(0, stemEnd);
    }
    break;
  }
  // Step 5a
  if (w.endsWith("e")) {
    const m = measure(w, w.length - 1);
    if (m > 1 || (m === 1 && !cvc(w, w.length - 1))) w = w.slice(0, -1);
  }
  // Step 5b
  if (w.endsWith("ll") && measure(w, w.length) > 1) w = w.slice(0, -1);
  return w;
}
