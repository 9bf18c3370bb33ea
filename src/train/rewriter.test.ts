/** The memorization rewriter and set builder on the real protocols (no model needed). */
import { describe, expect, it } from "vitest";
import { coverExactMatch } from "../metrics/answer.js";
import { getProtocol } from "../protocol/index.js";
import type { Trajectory } from "../rollout/types.js";
import type { Passage } from "../util/types.js";
import type { QuestionRow } from "./data.js";
import {
  buildMemorizationSet,
  LlmRewriter,
  selectSupportingSentence,
  splitSentences,
  TemplateRewriter,
} from "./rewriter.js";
import { CharTokenizer } from "./testing/tabular.js";

const plus = getProtocol("r1-searcher-plus");

const P1: Passage = {
  id: "7",
  title: "Citibank",
  text: "Citibank is a bank. It was founded in 1812 in New York. Its logo is blue.",
};
const P2: Passage = {
  id: "9",
  title: "James Madison",
  text: "James Madison was the fourth president. He was president in 1812.",
};

function traj(response: string, docs: Passage[][], extra: Partial<Trajectory> = {}): Trajectory {
  return {
    id: "t",
    group: "q1",
    question: "Who was president when Citibank was founded?",
    protocol: plus.name,
    promptText: "Q",
    promptTokens: [0, 5],
    responseText: response,
    responseTokens: [3, 4, 1],
    mask: [1, 1, 1],
    logprobs: [0, 0, 0],
    retrievals: docs.length,
    queries: [],
    documents: docs,
    answer: plus.extractAnswer(response),
    finish: "answer",
    turns: 1,
    timings: { totalMs: 0, backendMs: 0, retrievalMs: 0 },
    warnings: [],
    ...extra,
  };
}

const block = (ps: Passage[]) => plus.renderDocumentBlock(ps);
const response =
  `I need the founding year. <external>when was citibank founded` +
  block([P1]) +
  `So it was 1812. <external>who was president in 1812` +
  block([P2]) +
  `</think>\n<answer>James Madison</answer>`;

describe("template rewriter", () => {
  it("splits sentences and picks the one supporting the step", () => {
    expect(splitSentences(P1.text)).toEqual([
      "Citibank is a bank.",
      "It was founded in 1812 in New York.",
      "Its logo is blue.",
    ]);
    expect(selectSupportingSentence([P1], "when was citibank founded", "1812")!.sentence).toBe(
      "It was founded in 1812 in New York.",
    );
    expect(selectSupportingSentence([P2], "who was president in 1812", "James Madison")!.sentence).toBe(
      "James Madison was the fourth president.",
    );
    expect(selectSupportingSentence([P2], "who was president in 1812", null, "query")!.sentence).toBe(
      "He was president in 1812.",
    );
    expect(selectSupportingSentence([], "x", null)).toBeNull();
  });

  it("replaces every query + document block with an internal fact and keeps the rest verbatim", async () => {
    const out = await new TemplateRewriter().rewrite({
      question: "q",
      trajectory: traj(response, [[P1], [P2]]),
      protocol: plus,
    });
    expect(out).toBe(
      "I need the founding year. <internal> Citibank: It was founded in 1812 in New York. </internal>" +
        "So it was 1812. <internal> James Madison was the fourth president. </internal>" +
        "</think>\n<answer>James Madison</answer>",
    );
    expect(plus.countRetrievals(out!)).toBe(0);
    expect(plus.parse(out!).formatErrors).toEqual([]);
  });

  it("drops a step whose search returned nothing, and returns null without any retrieval", async () => {
    const r = `<external>who founded citibank` + block([]) + `</think>\n<answer>x</answer>`;
    expect(await new TemplateRewriter().rewrite({ question: "q", trajectory: traj(r, [[]]), protocol: plus })).toBe(
      "</think>\n<answer>x</answer>",
    );
    const none = `</think>\n<answer>x</answer>`;
    expect(
      await new TemplateRewriter().rewrite({ question: "q", trajectory: traj(none, []), protocol: plus }),
    ).toBeNull();
  });

  it("falls back to the block text when the trajectory carries no passages", async () => {
    const out = await new TemplateRewriter().rewrite({ question: "q", trajectory: traj(response, []), protocol: plus });
    // the block lines are "(j)" + the raw corpus line without its id ("Title   text")
    expect(out).toContain("<internal> Citibank   Citibank is a bank. </internal>");
    expect(out).not.toContain("<document>");
  });
});

describe("memorization set", () => {
  const tok = new CharTokenizer("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:?<>/\n\t|()_-'");
  const row: QuestionRow = { id: "q1", question: "Who?", gold: "James Madison", raw: {} };
  const opts = {
    rewriter: new TemplateRewriter(),
    protocol: plus,
    tokenizer: tok,
    requireRetrieval: true,
    recheck: true,
    maxAnswerWords: 10,
    maxPerQuestion: 1,
    maxPerStep: 0,
    answerCheck: (a: string, g: string | string[]) => coverExactMatch(a, g),
  };
  it("keeps correct, retrieval-using rollouts, one per question, re-checked, EOS kept", async () => {
    const good = traj(response, [[P1], [P2]], { responseTokens: [3, 4, 1] }); // ends with EOS (id 1)
    const wrongAnswer = traj(response.replace("James Madison</answer>", "John Adams</answer>"), [[P1], [P2]]);
    const noSearch = traj(`</think>\n<answer>James Madison</answer>`, [], { retrievals: 0 });
    const res = await buildMemorizationSet(
      [
        { traj: noSearch, row, correct: true },
        { traj: wrongAnswer, row, correct: true }, // marked correct by the reward, but the rewrite fails the re-check
        { traj: good, row, correct: false },
        { traj: good, row, correct: true },
        { traj: good, row, correct: true }, // over maxPerQuestion
      ],
      opts,
    );
    expect(res.candidates).toBe(2);
    expect(res.examples).toHaveLength(1);
    const ex = res.examples[0];
    expect(ex.start).toBe(2);
    expect(ex.tokens.slice(0, 2)).toEqual([0, 5]);
    expect(ex.tokens[ex.tokens.length - 1]).toBe(1);
    expect(tok.decode(ex.tokens.slice(2))).toBe(ex.text);
    expect(ex.text).toContain("<internal>");
  });
  it("rejects rewrites with too long answers", async () => {
    const long = traj(
      response.replace("James Madison</answer>", "James Madison and many other people of that young nation</answer>"),
      [[P1], [P2]],
    );
    const res = await buildMemorizationSet([{ traj: long, row, correct: true }], { ...opts, maxAnswerWords: 5 });
    expect(res.examples).toHaveLength(0);
  });
});

describe("LLM rewriter prompt", () => {
  it("fills every placeholder", () => {
    const rw = new LlmRewriter({
      name: "x",
      tokenizer: new CharTokenizer("a"),
      generate: async () => {
        throw new Error("unused");
      },
      close: async () => {},
    });
    const p = rw.buildPrompt({ question: "Who?", trajectory: traj(response, [[P1], [P2]]), protocol: plus });
    expect(p).toContain("Question: Who?");
    expect(p).toContain("(1) Citibank: Citibank is a bank.");
    expect(p).toContain("(2) James Madison: James Madison was the fourth president.");
    expect(p).toContain("written as <internal> fact </internal>");
    expect(p).toContain("Final answer: James Madison");
    expect(p).not.toMatch(/\{[a-z_]+\}/);
  });
});
