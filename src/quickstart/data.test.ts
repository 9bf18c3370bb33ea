import { describe, expect, it } from "vitest";
import { generateWorld, trajectoryTags, worldConfig } from "../data/world/index.js";
import { getProtocol } from "../protocol/index.js";
import { backgroundWorld, groundedRecalls } from "./data.js";
import { quickstartConfig } from "./presets.js";

describe("groundedRecalls (cold-start filter)", () => {
  const world = generateWorld(worldConfig("tiny", 3, { internalShare: 0.5 }));
  const plus = getProtocol("r1-searcher-plus");
  const tags = trajectoryTags(plus);
  const recall = (s: string) => `${tags.internalOpen} ${s} ${tags.internalClose} `;
  const answer = (a: string) => `${tags.thinkClose}\n\n${plus.answerOpen} ${a} ${plus.answerClose}`;
  const internal = world.facts.find((f) => f.internal)!;
  const external = world.facts.find((f) => !f.internal)!;
  const page = world.passages.find((p) => p.id === external.passages[0])!;
  // another object of the same kind as the internal fact's: an invented value for a known subject
  const wrong = world.facts.find((f) => f.relation === internal.relation && f.objectText !== internal.objectText)!;

  it("accepts a recall of a fact the pre-training text taught", () => {
    expect(groundedRecalls(world, plus, recall(internal.statement) + answer(internal.objectText))).toEqual({
      recalls: 1,
      grounded: 1,
    });
  });

  it("rejects an external fact recalled without a search (a guess, even when it is true)", () => {
    expect(groundedRecalls(world, plus, recall(external.statement) + answer(external.objectText))).toEqual({
      recalls: 1,
      grounded: 0,
    });
  });

  it("rejects an invented value for a known subject", () => {
    const invented = internal.statement.replace(internal.objectText, wrong.objectText);
    expect(invented).not.toBe(internal.statement);
    expect(groundedRecalls(world, plus, recall(invented) + answer(wrong.objectText)).grounded).toBe(0);
  });

  it("accepts restating a fact that a document retrieved earlier in the response holds", () => {
    const search = `${plus.queryOpen} ${external.query} ${plus.queryClose}`;
    const docs = plus.renderDocumentBlock([{ id: page.id, title: page.title, text: page.text }]);
    const text = search + docs + " " + recall(external.statement) + recall(internal.statement) + answer("x");
    expect(groundedRecalls(world, plus, text)).toEqual({ recalls: 2, grounded: 2 });
    // the same recall before the search is a guess
    const before = recall(external.statement) + search + docs + answer("x");
    expect(groundedRecalls(world, plus, before)).toEqual({ recalls: 1, grounded: 0 });
  });

  it("counts no recalls in a response that only searches", () => {
    expect(groundedRecalls(world, plus, `${plus.queryOpen} a b ${plus.queryClose}` + answer("x"))).toEqual({
      recalls: 0,
      grounded: 0,
    });
  });
});

describe("backgroundWorld", () => {
  it("knows the same kinds of things as the main world (its per-type fame shares)", () => {
    const by = { country: 1, city: 1, person: 0, organisation: 1, work: 1 };
    const cfg = quickstartConfig("micro", 1, { world: { overrides: { internalShare: 0.5, internalShareByType: by } } });
    const bg = backgroundWorld(cfg, 0);
    for (const e of bg.entities) expect(e.famous, `${e.type} ${e.name}`).toBe(by[e.type] === 1);
    // without per-type shares: the global share, per type
    const plain = backgroundWorld(quickstartConfig("micro", 1), 0);
    const persons = plain.entities.filter((e) => e.type === "person");
    expect(persons.filter((e) => e.famous).length).toBe(Math.round(0.5 * persons.length));
  });
});
