/**
 * Fuzz: random and malformed trajectories (unbalanced, nested, repeated and truncated tags of every protocol and chat
 * template, huge texts, unicode edge cases, empty) through every protocol's parsers (whole and incremental, in random
 * chunks) and every reward preset (response items and full-text items, as OpenRLHF sends them). Counts crashes (any
 * exception) and rewards outside the preset's documented range (`REWARD_PRESETS[p].range`) or not finite.
 */
import { CHAT_CONTROL_STRINGS, PROTOCOLS, PROTOCOL_NAMES } from "../../src/protocol/index.js";
import { REWARD_PRESETS, REWARD_PRESET_NAMES, scoreBatch, type RewardItem } from "../../src/reward/index.js";
import { Rng } from "../../src/util/rng.js";

export interface FuzzResult {
  trajectories: number;
  parses: number;
  rewards: number;
  crashes: number;
  outOfRange: number;
  examples: string[];
  ms: number;
}

function allTags(): string[] {
  const tags = new Set<string>(CHAT_CONTROL_STRINGS);
  for (const name of PROTOCOL_NAMES) {
    const p = PROTOCOLS[name] as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(p)) if (typeof v === "string" && v.startsWith("<") && k !== "name") tags.add(v);
    for (const r of (p.reservedStrings as string[] | undefined) ?? []) tags.add(r);
  }
  for (const t of ["<think>", "</think>", "<answer>", "</answer>", "<search>", "</search>", "<information>"])
    tags.add(t);
  return [...tags];
}

const UNICODE = [
  "\ud800", // lone high surrogate
  "\udfff", // lone low surrogate
  "\u0000",
  "\ufeff",
  "\ufffd",
  "\u200d", // ZWJ
  "\u202e", // RTL override
  "e\u0301", // combining mark
  "👨‍👩‍👧",
  "\r\n",
  "\r",
  "\u2028",
  "Ｐａｒｉｓ", // full-width
  "İstanbul",
  "ß",
  "\t",
  "𝔓𝔞𝔯𝔦𝔰",
];
const WORDS = ["Paris", "the", "capital", "of", "France", "is", "answer", "yes", "no", "1812", "Let me search", "\n\n"];

/** One random trajectory text. */
export function randomTrajectory(rng: Rng, tags: readonly string[]): string {
  const kind = rng.next();
  if (kind < 0.02) return "";
  if (kind < 0.025) {
    // huge: 50-200 k characters of words and tags
    const n = 50_000 + Math.floor(rng.next() * 150_000);
    let s = "";
    while (s.length < n) s += rng.next() < 0.05 ? rng.pick(tags) : rng.pick(WORDS) + " ";
    return s;
  }
  const parts: string[] = [];
  const len = 1 + Math.floor(rng.next() * 40);
  for (let i = 0; i < len; i++) {
    const r = rng.next();
    if (r < 0.35) parts.push(rng.pick(tags));
    else if (r < 0.45) {
      const t = rng.pick(tags); // a truncated tag
      parts.push(t.slice(0, 1 + Math.floor(rng.next() * (t.length - 1))));
    } else if (r < 0.55) parts.push(rng.pick(UNICODE));
    else if (r < 0.6) {
      const t = rng.pick(tags); // repeated tag
      parts.push(t.repeat(2 + Math.floor(rng.next() * 5)));
    } else if (r < 0.65) {
      const a = rng.pick(tags); // nested
      parts.push(a + rng.pick(tags) + rng.pick(WORDS) + rng.pick(tags) + a);
    } else parts.push(rng.pick(WORDS) + (rng.next() < 0.5 ? " " : ""));
  }
  return parts.join("");
}

function chunked(rng: Rng, s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const n = 1 + Math.floor(rng.next() * 12);
    out.push(s.slice(i, i + n));
    i += n;
  }
  return out;
}

export function runFuzz(n: number, seed = 1): FuzzResult {
  const t0 = performance.now();
  const rng = new Rng(seed);
  const tags = allTags();
  const res: FuzzResult = { trajectories: 0, parses: 0, rewards: 0, crashes: 0, outOfRange: 0, examples: [], ms: 0 };
  const crash = (where: string, text: string, err: unknown) => {
    res.crashes++;
    if (res.examples.length < 5)
      res.examples.push(
        `${where}: ${err instanceof Error ? err.message : String(err)} on ${JSON.stringify(text.slice(0, 80))}`,
      );
  };
  const BATCH = 64;
  for (let b = 0; b < n; b += BATCH) {
    const texts = Array.from({ length: Math.min(BATCH, n - b) }, () => randomTrajectory(rng, tags));
    res.trajectories += texts.length;
    for (const text of texts) {
      for (const name of PROTOCOL_NAMES) {
        const p = PROTOCOLS[name];
        try {
          p.parse(text);
          p.extractAnswer(text);
          p.countRetrievals(text);
          p.extractQuery(text, rng.next() < 0.5 ? "train" : "eval");
          if (text.length < 20_000) {
            const inc = p.createParser();
            for (const c of chunked(rng, text)) inc.push(c);
            inc.finish();
          }
          res.parses++;
        } catch (err) {
          crash(`${name} parse`, text, err);
        }
      }
    }
    for (const preset of REWARD_PRESET_NAMES) {
      const [lo, hi] = REWARD_PRESETS[preset].range;
      const question = "What is the capital of France?";
      // response items (the trainer's path), several samples of one question (group presets score them together)
      const items: RewardItem[] = texts.map((t, i) => ({
        response: t,
        question: i % 2 ? question : t.slice(0, 40),
        gold: i % 3 ? "Paris" : ["Paris", "City of Paris"],
        group: `g${i % 8}`,
      }));
      // full-text items (the reward server's path): a random prompt split, possibly missing its markers
      const full: RewardItem[] = texts.map((t) => ({ text: t, gold: "Paris" }));
      for (const batch of [items, full]) {
        let out;
        try {
          out = scoreBatch(preset, batch, { unknownReward: lo });
        } catch (err) {
          crash(`${preset} reward`, batch[0].response ?? batch[0].text ?? "", err);
          continue;
        }
        for (let i = 0; i < out.length; i++) {
          res.rewards++;
          const r = out[i].reward;
          if (!Number.isFinite(r) || r < lo - 1e-9 || r > hi + 1e-9) {
            res.outOfRange++;
            if (res.examples.length < 5)
              res.examples.push(
                `${preset}: reward ${r} outside [${lo}, ${hi}] on ${JSON.stringify((batch[i].response ?? batch[i].text ?? "").slice(0, 80))}`,
              );
          }
        }
      }
    }
  }
  res.ms = performance.now() - t0;
  return res;
}
