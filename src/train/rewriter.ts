/**
 * R1-Searcher++ external-knowledge memorization: turn correct, retrieval-using rollouts into retrieval-free reasoning
 * paths ("rewriter"), keep those whose answer is still correct, and train on them with μ·L_M.
 *
 * Two rewriters:
 *   - `TemplateRewriter` (deterministic, no model): every query + document block becomes
 *     `<internal> fact </internal>`, where the fact is the retrieved sentence that best supports the step (overlap with
 *     the query and the final answer). Works for tiny models that could not act as a rewriter themselves.
 *   - `LlmRewriter`: any LLMBackend with a prompt (the paper uses a separately trained rewriting model).
 * Decisions (D8) are documented in docs/training.md.
 */
import type { LLMBackend } from "../llm/types.js";
import type { ResponseProtocol, Segment } from "../protocol/types.js";
import type { Trajectory } from "../rollout/types.js";
import { pyStrip, pyWords } from "../util/pystr.js";
import type { Passage, Tokenizer } from "../util/types.js";
import type { QuestionRow } from "./data.js";
import type { TokenSequence } from "./policy.js";

export interface RewriteInput {
  question: string;
  gold?: string | string[];
  trajectory: Trajectory;
  protocol: ResponseProtocol;
}

export interface Rewriter {
  readonly name: string;
  /** The retrieval-free response text, or null when this trajectory cannot be rewritten. */
  rewrite(input: RewriteInput): Promise<string | null>;
}

/** Tags of the internal-knowledge block: the protocol's when it declares them, else R1-Searcher++'s spelling. */
export function internalTags(protocol: ResponseProtocol): { open: string; close: string } {
  const p = protocol as unknown as { internalOpen?: unknown; internalClose?: unknown };
  return {
    open: typeof p.internalOpen === "string" ? p.internalOpen : "<internal>",
    close: typeof p.internalClose === "string" ? p.internalClose : "</internal>",
  };
}

const STOPWORDS = new Set(
  "a an the of in on at to for by with from and or is was were are be been who what when where which whose how why did does do that this it its as into".split(
    " ",
  ),
);

function contentWords(s: string): string[] {
  return pyWords(s.toLowerCase().replace(/[^\p{L}\p{N}\s]/gu, " ")).filter((w) => !STOPWORDS.has(w));
}

/** Sentences of a passage (title kept separately). */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+(?=[\p{Lu}\p{N}"'(])/u)
    .map((s) => pyStrip(s))
    .filter((s) => s.length > 0);
}

/**
 * Pick the retrieved sentence that best supports a step: score = |query words ∩ sentence words| plus, when an answer
 * is known, 3 per answer word in the sentence (5 more when the whole answer appears). Ties keep the earlier sentence.
 */
export function selectSupportingSentence(
  passages: readonly Passage[],
  query: string,
  answer: string | null,
  select: "query+answer" | "query" | "answer" = "query+answer",
): { sentence: string; passage: Passage } | null {
  const qw = new Set(contentWords(query));
  const aw = answer ? contentWords(answer) : [];
  const aLower = answer ? answer.toLowerCase().trim() : "";
  let best: { sentence: string; passage: Passage; score: number } | null = null;
  for (const p of passages) {
    const titleWords = new Set(contentWords(p.title));
    for (const sent of splitSentences(p.text)) {
      const sw = new Set([...contentWords(sent), ...titleWords]);
      let score = 0;
      if (select !== "answer") for (const w of qw) if (sw.has(w)) score += 1;
      if (select !== "query" && aw.length > 0) {
        for (const w of aw) if (sw.has(w)) score += 3;
        if (aLower && sent.toLowerCase().includes(aLower)) score += 5;
      }
      if (!best || score > best.score) best = { sentence: sent, passage: p, score };
    }
  }
  return best ? { sentence: best.sentence, passage: best.passage } : null;
}

/** Documents of a block when the trajectory does not carry them: the block's lines `(j)text`. */
function passagesFromBlock(text: string): Passage[] {
  return text
    .split("\n")
    .map((l) => pyStrip(l.replace(/^\(\d+\)/, "")))
    .filter((l) => l.length > 0 && l !== "None")
    .map((l, i) => ({ id: String(i), title: "", text: l }));
}

export class TemplateRewriter implements Rewriter {
  readonly name = "template";
  constructor(private readonly opts: { select?: "query+answer" | "query" | "answer" } = {}) {}

  async rewrite(input: RewriteInput): Promise<string | null> {
    const { trajectory: t, protocol } = input;
    const text = t.responseText;
    const parsed = protocol.parse(text);
    const { open, close } = internalTags(protocol);
    const segs = parsed.segments;
    const edits: Array<{ start: number; end: number; replacement: string }> = [];
    let retrieval = 0;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (s.kind === "documents") {
        // a document block with no query before it (should not happen): drop it
        edits.push({ start: s.start, end: blockEnd(s, parsed.environmentSpans), replacement: "" });
        continue;
      }
      if (s.kind !== "query") continue;
      const docs = nextDocuments(segs, i);
      if (!docs) {
        // an unanswered query (cut off): drop it
        edits.push({ start: s.start, end: s.end, replacement: "" });
        continue;
      }
      const passages = t.documents[retrieval] ?? passagesFromBlock(docs.seg.text);
      retrieval++;
      const pick = selectSupportingSentence(passages, s.text, t.answer, this.opts.select ?? "query+answer");
      const end = blockEnd(docs.seg, parsed.environmentSpans);
      if (!pick) {
        // "Info: None": nothing was retrieved, so nothing to recall — drop the step
        edits.push({ start: s.start, end, replacement: "" });
      } else {
        const title = pick.passage.title.trim();
        const fact =
          title && !pick.sentence.toLowerCase().includes(title.toLowerCase())
            ? `${title}: ${pick.sentence}`
            : pick.sentence;
        edits.push({ start: s.start, end, replacement: `${open} ${fact} ${close}` });
      }
      i = docs.index;
    }
    if (edits.length === 0) return null;
    let out = "";
    let pos = 0;
    for (const e of edits.sort((a, b) => a.start - b.start)) {
      if (e.start < pos) continue;
      out += text.slice(pos, e.start) + e.replacement;
      pos = e.end;
    }
    out += text.slice(pos);
    return out;
  }
}

function nextDocuments(segs: readonly Segment[], i: number): { seg: Segment; index: number } | null {
  for (let j = i + 1; j < segs.length; j++) {
    if (segs[j].kind === "documents") return { seg: segs[j], index: j };
    if (segs[j].kind === "reasoning" && segs[j].text.trim() === "") continue;
    return null;
  }
  return null;
}

/** End of a document block including the environment-written newlines that follow it. */
function blockEnd(seg: Segment, spans: ReadonlyArray<readonly [number, number]>): number {
  let end = seg.end;
  for (const [s, e] of spans) if (s <= seg.end && e > end && s < seg.end + 1) end = e;
  return end;
}

export const DEFAULT_REWRITER_PROMPT = [
  "Rewrite the reasoning below so that it needs no search engine.",
  "Replace every search query and its retrieved documents with the fact they established, written as {internal_open} fact {internal_close}.",
  "Do not issue any search. Keep the reasoning short and end with the final answer as {answer_open} answer {answer_close}.",
  "",
  "Question: {question}",
  "Retrieved information:",
  "{documents}",
  "Original reasoning:",
  "{reasoning}",
  "Final answer: {answer}",
  "",
  "Rewritten reasoning:",
  "",
].join("\n");

export class LlmRewriter implements Rewriter {
  readonly name: string;
  constructor(
    private readonly backend: LLMBackend,
    private readonly opts: { prompt?: string; temperature?: number; maxTokens?: number; seed?: number } = {},
  ) {
    this.name = `llm:${backend.name}`;
  }

  buildPrompt(input: RewriteInput): string {
    const { trajectory: t, protocol } = input;
    const { open, close } = internalTags(protocol);
    const docs = t.documents
      .flat()
      .map((p, i) => `(${i + 1}) ${p.title ? p.title + ": " : ""}${p.text}`)
      .join("\n");
    const vars: Record<string, string> = {
      question: input.question,
      documents: docs || "None",
      reasoning: t.responseText,
      answer: t.answer ?? "",
      internal_open: open,
      internal_close: close,
      answer_open: protocol.answerOpen,
      answer_close: protocol.answerClose,
    };
    return (this.opts.prompt ?? DEFAULT_REWRITER_PROMPT).replace(/\{(\w+)\}/g, (m, k: string) =>
      k in vars ? vars[k] : m,
    );
  }

  async rewrite(input: RewriteInput): Promise<string | null> {
    const prompt = this.buildPrompt(input);
    const res = await this.backend.generate({
      tokens: this.backend.tokenizer.encode(prompt),
      text: prompt,
      params: {
        temperature: this.opts.temperature ?? 0,
        topP: 1,
        maxTokens: this.opts.maxTokens ?? 512,
        stop: [input.protocol.answerClose],
        seed: this.opts.seed,
        logprobs: false,
      },
    });
    let out = pyStrip(res.text);
    if (res.finishReason === "stop" && res.stopString === input.protocol.answerClose) out += input.protocol.answerClose;
    return out.length ? out : null;
  }
}

export interface MemorizationExample extends TokenSequence {
  group: string;
  /** The rewritten response text. */
  text: string;
}

export interface MemorizationOptions {
  rewriter: Rewriter;
  protocol: ResponseProtocol;
  tokenizer: Tokenizer;
  requireRetrieval: boolean;
  recheck: boolean;
  maxAnswerWords: number;
  maxPerQuestion: number;
  /** 0 = no limit. */
  maxPerStep: number;
  answerCheck?: (answer: string, gold: string | string[]) => boolean;
}

/**
 * Build the memorization set T of one rollout step: correct rollouts (with ≥ 1 retrieval when required), rewritten,
 * kept when the rewrite has no retrieval and — with `recheck` — its answer still passes the answer check with at most
 * `maxAnswerWords` words. Token sequences are prompt + rewritten response (+ EOS when the original ended with one).
 */
export async function buildMemorizationSet(
  items: ReadonlyArray<{ traj: Trajectory; row: QuestionRow; correct: boolean }>,
  o: MemorizationOptions,
): Promise<{ examples: MemorizationExample[]; candidates: number }> {
  const perQuestion = new Map<string, number>();
  const examples: MemorizationExample[] = [];
  let candidates = 0;
  const eosIds = new Set(o.tokenizer.eosTokenIds);
  for (const { traj, row, correct } of items) {
    if (!correct || traj.finish === "error") continue;
    if (o.requireRetrieval && traj.retrievals < 1) continue;
    if ((perQuestion.get(traj.group) ?? 0) >= o.maxPerQuestion) continue;
    if (o.maxPerStep > 0 && examples.length >= o.maxPerStep) break;
    candidates++;
    const text = await o.rewriter.rewrite({
      question: row.question,
      gold: row.gold,
      trajectory: traj,
      protocol: o.protocol,
    });
    if (text === null) continue;
    if (o.protocol.countRetrievals(text) > 0) continue;
    if (o.recheck) {
      const ans = o.protocol.extractAnswer(text);
      if (ans === null || row.gold === undefined || !o.answerCheck) continue;
      if (pyWords(ans).length > o.maxAnswerWords) continue;
      if (!o.answerCheck(ans, row.gold)) continue;
    }
    const last = traj.responseTokens[traj.responseTokens.length - 1];
    const tail = last !== undefined && eosIds.has(last) ? [last] : [];
    const resp = [...o.tokenizer.encode(text), ...tail];
    if (resp.length === 0) continue;
    examples.push({
      tokens: [...traj.promptTokens, ...resp],
      start: traj.promptTokens.length,
      group: traj.group,
      text,
    });
    perQuestion.set(traj.group, (perQuestion.get(traj.group) ?? 0) + 1);
  }
  return { examples, candidates };
}
