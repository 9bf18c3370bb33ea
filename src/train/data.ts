/**
 * Training data: question rows for RL (upstream JSONL with idx/question/answer) and SFT / pre-training examples
 * (text, prompt + response, or rollout trajectories) turned into token sequences with a loss mask. Retrieved-document
 * spans are masked by tokenizing the response piecewise (policy text, environment span, ...), the way the rollout
 * engine inserts observations, so the mask follows the spans exactly.
 */
import type { ResponseProtocol } from "../protocol/types.js";
import { encodeWithSpans } from "../rollout/mask.js";
import type { Tokenizer } from "../util/types.js";
import { readJsonlAll } from "../util/jsonl.js";
import { hashSeed, Rng } from "../util/rng.js";
import type { TokenSequence } from "./policy.js";

export interface QuestionRow {
  /** Group key: the row's id field or its line number. */
  id: string;
  question: string;
  gold?: string | string[];
  /** The raw row (for reward presets that need other fields). */
  raw: Record<string, unknown>;
}

export async function loadQuestions(
  file: string,
  opts: { questionKey?: string; answerKey?: string; idKey?: string; limit?: number } = {},
): Promise<QuestionRow[]> {
  const qk = opts.questionKey ?? "question";
  const ak = opts.answerKey ?? "answer";
  const ik = opts.idKey ?? "idx";
  const rows = await readJsonlAll<Record<string, unknown>>(file, opts.limit ?? Infinity);
  return rows.map((r, i) => questionFromRow(r, i, { qk, ak, ik, file }));
}

export function questionFromRow(
  r: Record<string, unknown>,
  i: number,
  keys: { qk: string; ak: string; ik: string; file?: string },
): QuestionRow {
  const where = `${keys.file ?? "data"}:${i + 1}`;
  if (typeof r !== "object" || r === null) throw new Error(`${where}: expected a JSON object`);
  const q = r[keys.qk];
  if (typeof q !== "string" || q.length === 0) throw new Error(`${where}: missing string field "${keys.qk}"`);
  const a = r[keys.ak];
  let gold: string | string[] | undefined;
  if (typeof a === "string") gold = a;
  else if (Array.isArray(a) && a.every((x) => typeof x === "string")) gold = a as string[];
  else if (typeof a === "number" || typeof a === "boolean") gold = String(a);
  const idv = r[keys.ik];
  const id = typeof idv === "string" || typeof idv === "number" ? String(idv) : `row-${i}`;
  return { id, question: q, gold, raw: r };
}

/** Deterministic epoch order: a seeded shuffle (or identity) of 0..n−1. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean, tag = "data"): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  if (shuffle) new Rng(hashSeed(seed, tag, epoch)).shuffle(idx);
  return idx;
}

/**
 * The prompts of RL step `step` (0-based): episodes of floor(n / batch) steps over a per-episode seeded shuffle,
 * dropping the last partial batch (upstream sampler `drop_last`).
 */
export function rlStepPrompts(
  n: number,
  batch: number,
  step: number,
  seed: number,
  shuffle: boolean,
): { indices: number[]; episode: number; index: number } {
  const perEpisode = Math.floor(n / batch);
  if (perEpisode < 1) throw new Error(`the prompt set has ${n} rows, fewer than one rollout batch of ${batch}`);
  const episode = Math.floor(step / perEpisode);
  const pos = step % perEpisode;
  const order = epochOrder(n, seed, episode, shuffle, "rl-prompts");
  return { indices: order.slice(pos * batch, (pos + 1) * batch), episode, index: (pos + 1) * batch };
}

/** One SFT / pre-training example: a token sequence with the loss mask over `tokens[start..]`. */
export interface SftExample extends TokenSequence {
  /** Per scored token: 1 = trained, 0 = masked (retrieved documents). */
  mask: number[];
}

export interface SftBuildOptions {
  tokenizer: Tokenizer;
  /** Protocol used to find environment spans in response text (null: no masking of text responses). */
  protocol: ResponseProtocol | null;
  maskEnvironment: boolean;
  maxSeqLen: number;
  addBos: boolean;
  addEos: boolean;
  format: "auto" | "text" | "prompt-response" | "trajectory";
  textKey: string;
  promptKey: string;
  responseKey: string;
}

function bos(tok: Tokenizer, add: boolean): number[] {
  return add && tok.bosTokenId !== null ? [tok.bosTokenId] : [];
}

function eos(tok: Tokenizer, add: boolean): number[] {
  return add && tok.eosTokenIds.length > 0 ? [tok.eosTokenIds[0]] : [];
}

function isNumArray(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === "number");
}

/** Turn one JSONL row into training examples (text rows longer than maxSeqLen become several windows). */
export function buildSftExamples(row: Record<string, unknown>, where: string, o: SftBuildOptions): SftExample[] {
  const tok = o.tokenizer;
  let kind = o.format;
  if (kind === "auto") {
    // text first (tokenizer-independent); token ids only when no text is given
    if (typeof row[o.responseKey] === "string") kind = "prompt-response";
    else if (typeof row[o.textKey] === "string") kind = "text";
    else if (isNumArray(row.responseTokens) && isNumArray(row.promptTokens)) kind = "trajectory";
    else if (typeof row.responseText === "string") kind = "prompt-response";
    else
      throw new Error(
        `${where}: cannot tell the row kind (expected "${o.textKey}", "${o.promptKey}"+"${o.responseKey}", or a trajectory)`,
      );
  }
  if (kind === "text") {
    const text = row[o.textKey];
    if (typeof text !== "string") throw new Error(`${where}: missing string field "${o.textKey}"`);
    const ids = [...bos(tok, o.addBos), ...tok.encode(text), ...eos(tok, o.addEos)];
    if (ids.length < 2) return [];
    const out: SftExample[] = [];
    // windows of maxSeqLen tokens overlapping by one token so every token after the first is predicted once
    const win = Math.max(2, o.maxSeqLen);
    for (let s = 0; s < ids.length - 1; s += win - 1) {
      const tokens = ids.slice(s, s + win);
      if (tokens.length < 2) break;
      out.push({ tokens, start: 1, mask: new Array(tokens.length - 1).fill(1) });
    }
    return out;
  }
  if (kind === "trajectory") {
    const p = row.promptTokens;
    const r = row.responseTokens;
    if (!isNumArray(p) || !isNumArray(r))
      throw new Error(`${where}: a trajectory row needs promptTokens and responseTokens`);
    const m = isNumArray(row.mask) ? row.mask : new Array(r.length).fill(1);
    if (m.length !== r.length)
      throw new Error(`${where}: mask has ${m.length} entries for ${r.length} response tokens`);
    const prompt = p.length ? p.slice() : bos(tok, true);
    if (prompt.length === 0) throw new Error(`${where}: empty prompt and the tokenizer has no BOS`);
    const tokens = [...prompt, ...r];
    const mask = o.maskEnvironment ? m.map((x) => (x ? 1 : 0)) : m.map(() => 1);
    return [truncate({ tokens, start: prompt.length, mask }, o.maxSeqLen)].filter((e) => e.mask.length > 0);
  }
  // prompt-response
  const promptText = (row[o.promptKey] ?? row.promptText ?? "") as unknown;
  const responseText = (row[o.responseKey] ?? row.responseText) as unknown;
  if (typeof promptText !== "string" || typeof responseText !== "string") {
    throw new Error(`${where}: "${o.promptKey}" and "${o.responseKey}" must be strings`);
  }
  const spans = o.maskEnvironment && o.protocol ? o.protocol.parse(responseText).environmentSpans : [];
  const prompt = [...bos(tok, o.addBos), ...tok.encode(promptText)];
  if (prompt.length === 0)
    throw new Error(`${where}: empty prompt and the tokenizer has no BOS (set addBos or give a prompt)`);
  const resp = encodeWithSpans(tok, responseText, spans);
  const tail = eos(tok, o.addEos);
  const tokens = [...prompt, ...resp.tokens, ...tail];
  const mask = [...resp.mask, ...tail.map(() => 1)];
  return [truncate({ tokens, start: prompt.length, mask }, o.maxSeqLen)].filter((e) => e.mask.length > 0);
}

/** Fit an example into maxLen tokens: the prompt loses tokens from its front (at most maxLen − 1 kept), the response its end. */
function truncate(e: SftExample, maxLen: number): SftExample {
  if (e.tokens.length <= maxLen) return e;
  const keepPrompt = Math.min(e.start, Math.max(1, maxLen - 1));
  const prompt = e.tokens.slice(e.start - keepPrompt, e.start);
  const respLen = Math.max(0, maxLen - keepPrompt);
  return {
    tokens: [...prompt, ...e.tokens.slice(e.start, e.start + respLen)],
    start: keepPrompt,
    mask: e.mask.slice(0, respLen),
  };
}

export async function loadSftExamples(file: string, o: SftBuildOptions & { limit?: number }): Promise<SftExample[]> {
  const rows = await readJsonlAll<Record<string, unknown>>(file, o.limit ?? Infinity);
  const out: SftExample[] = [];
  rows.forEach((r, i) => out.push(...buildSftExamples(r, `${file}:${i + 1}`, o)));
  if (out.length === 0) throw new Error(`${file}: no training examples (empty file or every row too short)`);
  return out;
}
