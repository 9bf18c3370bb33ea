/**
 * Gold ("ideal") trajectories for world questions in a response protocol: the fewest retrievals, one query per
 * needed page, documents rendered by the protocol, the final answer in the protocol's answer tags. Every tag comes
 * from the protocol object (src/protocol is the only place that knows tag strings).
 */
import { R1_TAGS, SEARCH_R1_TAGS } from "../../protocol/index.js";
import type { ResponseProtocol } from "../../protocol/types.js";
import { pyStrip } from "../../util/pystr.js";
import type { Passage } from "../../util/types.js";
import type { World, WorldPassage, WorldQuestion, WorldQuestionStep, WorldRelation } from "./types.js";

/** The think tags, the internal-knowledge tags (if any) of a protocol, and whether its prompt opens the think block. */
export interface TrajectoryTags {
  thinkOpen: string;
  thinkClose: string;
  internalOpen: string | null;
  internalClose: string | null;
  /** True when `buildPrompt` ends with `thinkOpen` (R1-Searcher style): the response must not open it again. */
  promptOpensThink: boolean;
}

/** Read the tags a trajectory needs from a protocol object. */
export function trajectoryTags(protocol: ResponseProtocol): TrajectoryTags {
  const p = protocol as ResponseProtocol & {
    thinkOpen?: string;
    thinkClose?: string;
    internalOpen?: string;
    internalClose?: string;
    config?: { think?: readonly [string, string] };
  };
  let think: readonly [string, string] | undefined;
  if (p.thinkOpen && p.thinkClose) think = [p.thinkOpen, p.thinkClose];
  else if (p.config?.think) think = p.config.think;
  else if (p.name === "r1-searcher") think = [R1_TAGS.thinkOpen, R1_TAGS.thinkClose];
  else if (p.name === "search-r1") think = [SEARCH_R1_TAGS.thinkOpen, SEARCH_R1_TAGS.thinkClose];
  if (!think) throw new Error(`protocol "${protocol.name}": its think tags are unknown`);
  return {
    thinkOpen: think[0],
    thinkClose: think[1],
    internalOpen: p.internalOpen ?? null,
    internalClose: p.internalClose ?? null,
    promptOpensThink: protocol.buildPrompt("?").endsWith(think[0]),
  };
}

/** What the agent needs to find, per relation ("I need to find where X was born."). */
const NEED: Record<WorldRelation, string> = {
  capital: "the capital of {S}",
  located_in: "which country {S} is in",
  born_in: "where {S} was born",
  birth_year: "when {S} was born",
  profession: "the profession of {S}",
  founded_by: "who founded {S}",
  founded_year: "when {S} was founded",
  headquarters: "where {S} has its headquarters",
  author: "who wrote {S}",
  published_year: "when {S} was published",
};

export function needPhrase(step: Pick<WorldQuestionStep, "relation" | "subject">): string {
  return NEED[step.relation].replace("{S}", step.subject);
}

/** How steps are resolved: search every page ("search-all", R1-Searcher), or recall internal facts ("search-external"). */
export type IdealMode = "search-all" | "search-external";

export interface IdealTrajectoryOptions {
  /** Default: "search-external" when the protocol has internal tags, else "search-all". */
  mode?: IdealMode;
  /**
   * Passages shown for a query (best first). Default: the world passages that hold the step's fact (needs `world`
   * or `passages`). Pass real retriever results to render what a search engine would return.
   */
  documents?: (query: string, step: WorldQuestionStep) => Passage[];
  /** World passages by id (for the default `documents`); taken from `world` when given. */
  world?: Pick<World, "passages">;
}

export interface IdealTrajectory {
  /** Response text (what follows the prompt), with document blocks inserted as the rollout inserts them. */
  response: string;
  queries: string[];
  retrievals: number;
  /** Steps recalled without search. */
  recalled: number;
}

/** A world passage as a shared `Passage`. */
export function worldPassageToPassage(p: WorldPassage): Passage {
  return { id: p.id, title: p.title, text: p.text };
}

function recallSentence(statement: string): string {
  return "I know that " + (statement.startsWith("The ") || statement.startsWith("In ") ? statement[0].toLowerCase() + statement.slice(1) : statement);
}

/**
 * Render the ideal trajectory of a question. Segments are joined as the rollout joins them: each query segment is
 * stripped and followed by the protocol's document block; the answer segment ends with the answer-closing tag.
 */
export function renderIdealTrajectory(
  q: Pick<WorldQuestion, "answer" | "metadata">,
  protocol: ResponseProtocol,
  opts: IdealTrajectoryOptions = {},
): IdealTrajectory {
  const tags = trajectoryTags(protocol);
  const mode: IdealMode = opts.mode ?? (tags.internalOpen ? "search-external" : "search-all");
  let byId: Map<string, WorldPassage> | null = null;
  const documents =
    opts.documents ??
    ((_: string, step: WorldQuestionStep): Passage[] => {
      if (!opts.world) throw new Error("renderIdealTrajectory: pass `world` or `documents`");
      byId ??= new Map(opts.world.passages.map((p) => [p.id, p]));
      return step.passages.map((id) => {
        const p = byId!.get(id);
        if (!p) throw new Error(`passage ${id} is not in the world`);
        return worldPassageToPassage(p);
      });
    });

  let response = "";
  let segment = tags.promptOpensThink ? "" : tags.thinkOpen + " ";
  const queries: string[] = [];
  const searchedPages = new Set<string>();
  let recalled = 0;
  const say = (s: string): void => {
    segment += (segment === "" || segment.endsWith(" ") ? "" : " ") + s;
  };
  for (const step of q.metadata.steps) {
    const page = step.passages.join(",");
    const search = mode === "search-all" || !step.internal;
    if (search && !searchedPages.has(page)) {
      searchedPages.add(page);
      say(`I need to find ${needPhrase(step)}. ${protocol.queryOpen} ${step.query}`);
      response += pyStrip(segment) + protocol.renderDocumentBlock(documents(step.query, step));
      segment = "";
      queries.push(step.query);
      say(step.statement);
    } else if (search) {
      say(step.statement);
    } else if (tags.internalOpen && tags.internalClose) {
      say(`${tags.internalOpen} ${step.statement} ${tags.internalClose}`);
      recalled++;
    } else {
      say(recallSentence(step.statement));
      recalled++;
    }
  }
  say(`So the answer is ${q.answer}. ${tags.thinkClose}\n\n${protocol.answerOpen} ${q.answer} ${protocol.answerClose}`);
  response += segment;
  return { response, queries, retrievals: queries.length, recalled };
}
