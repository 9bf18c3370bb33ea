/** Parsing shared by the protocols: a tag table + a few policies → `parse`, `createParser`, counts. */
import { isPyWhitespace } from "../util/pystr.js";
import type { IncrementalParser, ParsedResponse, Segment } from "./types.js";
import { scanText, TagScanner, TagTable, type TagSpec } from "./scanner.js";

export interface ProtocolGrammar {
  spec: TagSpec;
  /** What the environment writes right after the documents-closing tag (part of the environment span). */
  documentsSuffix: string;
  /**
   * "prompt-opened": the prompt ends with the think-opening tag, so the response must contain no think-opening tag and
   * exactly one think-closing tag (R1-Searcher). "free": think tags are not checked (Search-R1).
   */
  thinkPolicy: "prompt-opened" | "free";
  /** Training sanitization of a query's inner text (used for `ParsedResponse.queries`). */
  sanitizeQuery: (inner: string) => string;
}

function blank(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isPyWhitespace(s.charCodeAt(i))) return false;
  return true;
}

/** Compiled grammar: parse whole responses or build incremental parsers. */
export class Grammar {
  readonly table: TagTable;
  constructor(readonly g: ProtocolGrammar) {
    this.table = new TagTable(g.spec);
  }

  createParser(): IncrementalParser {
    return new TagScanner(this.table);
  }

  /** Segments of a response (same result as feeding it to `createParser()` in any chunking). */
  segments(text: string): Segment[] {
    return scanText(this.table, text).segments;
  }

  parse(text: string): ParsedResponse {
    const sc = scanText(this.table, text);
    const segs = sc.segments;
    const formatErrors: string[] = [];
    const environmentSpans: Array<[number, number]> = [];
    const queries: string[] = [];
    let retrievals = 0;
    let answers = 0;
    let answer: string | null = null;
    const suffix = this.g.documentsSuffix;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (s.kind === "documents") {
        let end = s.end;
        if (s.closed && suffix.length > 0 && text.startsWith(suffix, end)) end += suffix.length;
        environmentSpans.push([s.start, end]);
        const prev = i > 0 ? segs[i - 1] : undefined;
        const afterQuery =
          prev !== undefined && prev.kind === "query" && prev.closed && blank(text.slice(prev.end, s.start));
        if (!afterQuery) formatErrors.push(`document block at ${s.start} does not follow a closed query`);
        if (!s.closed) formatErrors.push(`unclosed document block at ${s.start}`);
        else if (afterQuery) retrievals++;
      } else if (s.kind === "query") {
        if (!s.closed) {
          formatErrors.push(`unclosed query at ${s.start}`);
          continue;
        }
        const q = this.g.sanitizeQuery(s.text);
        if (q.length > 0) queries.push(q);
        const next = segs[i + 1];
        const hasDocs = next !== undefined && next.kind === "documents" && blank(text.slice(s.end, next.start));
        if (!hasDocs) formatErrors.push(`query at ${s.start} has no document block`);
      } else if (s.kind === "internal") {
        if (!s.closed) formatErrors.push(`unclosed internal block at ${s.start}`);
      } else if (s.kind === "answer") {
        answers++;
        answer = s.text;
        if (!s.closed) formatErrors.push(`unclosed answer at ${s.start}`);
      }
    }
    if (answers === 0) formatErrors.push("no answer");
    else if (answers > 1) formatErrors.push(`${answers} answers (expected one)`);
    let thinkOpen = 0;
    let thinkClose = 0;
    const think = this.g.spec.think;
    for (const m of sc.marks) {
      if (m.stray) formatErrors.push(`stray ${m.tag} at ${m.start}`);
      else if (think && m.tag === think[0]) thinkOpen++;
      else if (think && m.tag === think[1]) thinkClose++;
    }
    if (this.g.thinkPolicy === "prompt-opened" && think) {
      if (thinkOpen > 0) formatErrors.push(`${think[0]} in the response (the prompt already opens it)`);
      if (thinkClose !== 1) formatErrors.push(`expected one ${think[1]}, found ${thinkClose}`);
    }
    return { segments: segs, queries, retrievals, answer, environmentSpans, formatErrors };
  }
}

/** A piece of a response: text written by the policy (`environment: false`) or inserted by the environment. */
export interface ResponsePiece {
  text: string;
  environment: boolean;
}

/**
 * Cut a response into policy and environment pieces along `parse(response).environmentSpans`, in order; the pieces
 * concatenate to the response. Tokenize each piece separately and concatenate the ids to get a token sequence with an
 * exact loss mask (0 for environment pieces) — the way a token-in/token-out rollout builds it — for SFT data that only
 * exists as text.
 */
export function splitByEnvironmentSpans(
  response: string,
  spans: ReadonlyArray<readonly [number, number]>,
): ResponsePiece[] {
  const out: ResponsePiece[] = [];
  let pos = 0;
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0])) {
    if (a < pos || b < a || b > response.length)
      throw new Error(`invalid environment span [${a}, ${b}) for a response of ${response.length} characters`);
    if (a > pos) out.push({ text: response.slice(pos, a), environment: false });
    if (b > a) out.push({ text: response.slice(a, b), environment: true });
    pos = b;
  }
  if (pos < response.length) out.push({ text: response.slice(pos), environment: false });
  return out;
}
