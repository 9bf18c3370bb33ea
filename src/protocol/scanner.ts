/**
 * A tag scanner shared by every protocol: it turns response text into segments (reasoning, query, documents, internal,
 * answer), whole or chunk by chunk, with one state machine so that `parse()` and the incremental parser always agree.
 *
 * Rules (documented in docs/protocol.md):
 * - Outside a segment, an opening tag starts a segment; the think tags and stray closing tags are boundaries that belong
 *   to no segment (a stray closing tag is recorded as a format problem).
 * - Reasoning = the text between structural tags; runs that are only whitespace are not reported.
 * - A query / internal / answer segment ends at its own closing tag; any other tag interrupts it (the segment is
 *   reported with `closed: false`) and is then handled as if outside.
 * - A documents segment ends only at its closing tag: every other tag inside it is inert text. Together with
 *   `sanitizePassageText` (retrieved text never contains a protocol string) this keeps passages from forging structure.
 * - Tags split across chunks are held back until they are complete.
 */
import { escapeRegExp, isPyWhitespace } from "../util/pystr.js";
import type { IncrementalParser, Segment, SegmentEvent, SegmentKind } from "./types.js";

export interface TagSpec {
  query: readonly [string, string];
  documents: readonly [string, string];
  answer: readonly [string, string];
  internal?: readonly [string, string];
  /** Think tags: boundaries only (reasoning never includes them). */
  think?: readonly [string, string];
}

/** A boundary tag met outside any segment (think tags, stray closing tags, interrupting tags are not listed). */
export interface TagMark {
  tag: string;
  start: number;
  /** True for a closing tag met outside its segment. */
  stray: boolean;
}

interface TagInfo {
  kind: ContentKind | "think";
  role: "open" | "close";
}

type ContentKind = Exclude<SegmentKind, "reasoning">;

/** Pre-computed matcher for a tag set. */
export class TagTable {
  readonly tags = new Map<string, TagInfo>();
  readonly openers = new Map<ContentKind, string>();
  readonly closers = new Map<ContentKind, string>();
  readonly regex: RegExp;
  private readonly prefixes = new Set<string>();
  readonly maxLen: number;

  constructor(readonly spec: TagSpec) {
    const add = (tag: string, info: TagInfo) => {
      if (tag.length === 0) throw new Error("protocol tags must be non-empty");
      if (this.tags.has(tag)) throw new Error(`protocol tag used twice: ${tag}`);
      this.tags.set(tag, info);
    };
    const kinds: Array<[ContentKind, readonly [string, string] | undefined]> = [
      ["query", spec.query],
      ["documents", spec.documents],
      ["answer", spec.answer],
      ["internal", spec.internal],
    ];
    for (const [kind, pair] of kinds) {
      if (!pair) continue;
      add(pair[0], { kind, role: "open" });
      add(pair[1], { kind, role: "close" });
      this.openers.set(kind, pair[0]);
      this.closers.set(kind, pair[1]);
    }
    if (spec.think) {
      add(spec.think[0], { kind: "think", role: "open" });
      add(spec.think[1], { kind: "think", role: "close" });
    }
    const all = [...this.tags.keys()];
    for (const a of all)
      for (const b of all) if (a !== b && b.startsWith(a)) throw new Error(`protocol tag ${a} is a prefix of ${b}`);
    this.maxLen = Math.max(...all.map((t) => t.length));
    for (const t of all) for (let k = 1; k < t.length; k++) this.prefixes.add(t.slice(0, k));
    this.regex = new RegExp(all.map(escapeRegExp).join("|"), "g");
    const firsts = new Set(all.map((t) => t[0]));
    this.singleFirst = firsts.size === 1 ? all[0][0] : null;
    this.ordered = [...all].sort((a, b) => b.length - a.length);
  }

  /** Tags in longest-first order. */
  private readonly ordered: string[];
  /** The first character shared by every tag, when there is one (fast path: indexOf instead of a regex). */
  private readonly singleFirst: string | null;

  /** The first complete tag at or after `from` in `s`: [index, tag], or null. */
  find(s: string, from: number): [number, string] | null {
    if (this.singleFirst !== null) {
      let i = s.indexOf(this.singleFirst, from);
      while (i >= 0) {
        for (const t of this.ordered) if (s.startsWith(t, i)) return [i, t];
        i = s.indexOf(this.singleFirst, i + 1);
      }
      return null;
    }
    this.regex.lastIndex = from;
    const m = this.regex.exec(s);
    return m ? [m.index, m[0]] : null;
  }

  info(tag: string): TagInfo {
    const i = this.tags.get(tag);
    if (!i) throw new Error(`not a tag: ${tag}`);
    return i;
  }

  /** Length of the longest suffix of `s` that is a proper prefix of some tag (text to hold back). */
  heldSuffix(s: string): number {
    for (let k = Math.min(this.maxLen - 1, s.length); k >= 1; k--)
      if (this.prefixes.has(s.slice(s.length - k))) return k;
    return 0;
  }
}

function hasNonWhitespace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isPyWhitespace(s.charCodeAt(i))) return true;
  return false;
}

/** The scanner state machine. `segments` and `marks` grow as text is pushed. */
export class TagScanner implements IncrementalParser {
  readonly segments: Segment[] = [];
  readonly marks: TagMark[] = [];
  private buf = "";
  private bufStart = 0;
  private state: ContentKind | null = null;
  private segStart = 0;
  private segText = "";
  private reasoningOpen = false;
  private pending = "";
  private gapStart = 0;
  private events: SegmentEvent[] = [];
  private finished = false;

  constructor(private readonly table: TagTable) {}

  /** Total characters consumed so far. */
  get length(): number {
    return this.bufStart + this.buf.length;
  }

  push(chunk: string): SegmentEvent[] {
    if (this.finished) throw new Error("parser already finished");
    this.events = [];
    if (chunk.length === 0) return this.events;
    const buf = this.buf + chunk;
    const base = this.bufStart;
    let pos = 0;
    let m: [number, string] | null;
    while ((m = this.table.find(buf, pos)) !== null) {
      const [index, tag] = m;
      if (index > pos) this.text(buf.slice(pos, index), base + pos);
      this.tag(tag, base + index);
      pos = index + tag.length;
    }
    const tail = buf.slice(pos);
    const hold = this.table.heldSuffix(tail);
    if (tail.length > hold) this.text(tail.slice(0, tail.length - hold), base + pos);
    this.buf = tail.slice(tail.length - hold);
    this.bufStart = base + pos + (tail.length - hold);
    return this.events;
  }

  finish(): SegmentEvent[] {
    if (this.finished) return [];
    this.events = [];
    if (this.buf.length > 0) this.text(this.buf, this.bufStart);
    this.bufStart += this.buf.length;
    this.buf = "";
    const end = this.bufStart;
    if (this.state !== null) this.closeContent(end, false);
    else this.closeReasoning(end);
    this.finished = true;
    return this.events;
  }

  private text(s: string, absStart: number): void {
    if (this.state !== null) {
      this.segText += s;
      this.events.push({ type: "delta", kind: this.state, text: s });
      return;
    }
    if (this.reasoningOpen) {
      this.segText += s;
      this.events.push({ type: "delta", kind: "reasoning", text: s });
      return;
    }
    if (this.pending.length === 0) this.gapStart = absStart;
    this.pending += s;
    if (hasNonWhitespace(s)) {
      this.reasoningOpen = true;
      this.segStart = this.gapStart;
      this.segText = this.pending;
      this.events.push({ type: "open", kind: "reasoning" });
      this.events.push({ type: "delta", kind: "reasoning", text: this.pending });
      this.pending = "";
    }
  }

  private closeReasoning(end: number): void {
    if (this.reasoningOpen) {
      this.segments.push({ kind: "reasoning", text: this.segText, start: this.segStart, end, closed: true });
      this.events.push({ type: "close", kind: "reasoning", text: this.segText });
    }
    this.reasoningOpen = false;
    this.pending = "";
    this.segText = "";
  }

  private closeContent(end: number, closed: boolean): void {
    const kind = this.state as ContentKind;
    this.segments.push({ kind, text: this.segText, start: this.segStart, end, closed });
    this.events.push({ type: "close", kind, text: this.segText });
    this.state = null;
    this.segText = "";
  }

  private tag(tag: string, start: number): void {
    const info = this.table.info(tag);
    const end = start + tag.length;
    if (this.state === "documents") {
      if (info.kind === "documents" && info.role === "close") this.closeContent(end, true);
      else this.text(tag, start);
      return;
    }
    if (this.state !== null) {
      if (info.kind === this.state && info.role === "close") {
        this.closeContent(end, true);
        return;
      }
      this.closeContent(start, false);
    }
    this.closeReasoning(start);
    if (info.kind === "think") {
      this.marks.push({ tag, start, stray: false });
      return;
    }
    if (info.role === "close") {
      this.marks.push({ tag, start, stray: true });
      return;
    }
    this.state = info.kind as ContentKind;
    this.segStart = start;
    this.segText = "";
    this.events.push({ type: "open", kind: info.kind });
  }
}

/** Scan a whole text. */
export function scanText(table: TagTable, text: string): TagScanner {
  const s = new TagScanner(table);
  s.push(text);
  s.finish();
  return s;
}
