import { describe, expect, it } from "vitest";
import { generateWorld, trajectoryTags, worldConfig } from "../data/world/index.js";
import { getProtocol } from "../protocol/index.js";
import { backgroundWorld, buildPretrainMix, groundedRecalls, quickstartPrompts } from "./data.js";
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

describe("recall practice (pretrain.mainRecall)", () => {
  const plus = getProtocol("r1-searcher-plus");
  const r1 = getProtocol("r1-searcher");
  const tags = trajectoryTags(plus);
  const noBackground = { facts: 0, qa: 0, chains: 0, priorSingle: 0, priorMulti: 0 };
  const mix = async (mainRecall: number) => {
    const cfg = quickstartConfig("micro", 2, {
      pretrain: { epochs: 3, mainRecall, mainPriorSingle: 0, mainPriorMulti: 0, background: noBackground },
    });
    const world = generateWorld(worldConfig(cfg.world.preset, cfg.seed, cfg.world.overrides));
    const prompts = quickstartPrompts(cfg, r1, plus);
    const m = await buildPretrainMix(cfg, world, { r1, plus }, prompts, new Map(), () => "/nonexistent");
    return { world, prompts, m };
  };

  it("recalls internal facts only, single-hop, in R1-Searcher++ format, a fresh set each pass", async () => {
    const { world, prompts, m } = await mix(10);
    const recalls = m.rows.filter((d) => d.source === "protocol-prior");
    expect(m.counts["prior:main:plus:recall"]).toBe(30);
    expect(recalls.length).toBe(30);
    const internal = world.facts.filter((f) => f.internal);
    expect(m.counts["prior:main:pool:recall"]).toBe(internal.length);
    const header = prompts.priorWrapper.plus.slice(0, prompts.priorWrapper.plus.indexOf("{question}"));
    const recalled = new Set<string>();
    for (const d of recalls) {
      expect(d.protocol).toBe(plus.name);
      expect(d.text.startsWith(header), d.text).toBe(true);
      const response = d.text.slice(d.text.indexOf("\nAnswer: ") + 9);
      expect(response).not.toContain(plus.queryOpen);
      expect(response).not.toContain(plus.renderDocumentBlock([]).trim().slice(0, 8));
      const block = response.slice(
        response.indexOf(tags.internalOpen!) + tags.internalOpen!.length,
        response.indexOf(tags.internalClose!),
      );
      const fact = internal.find((f) => block.trim() === f.statement);
      expect(fact, block).toBeDefined();
      expect(d.text).toContain(`${plus.answerOpen} ${fact!.objectText} ${plus.answerClose}`);
      recalled.add(fact!.id);
    }
    expect(recalled.size).toBe(30);
  });

  it("adds nothing when off", async () => {
    const { m } = await mix(0);
    expect(m.rows.some((d) => d.source === "protocol-prior")).toBe(false);
    expect(m.counts["prior:main:plus:recall"]).toBeUndefined();
  });
});

describe("multi-hop prior of some question kinds only (pretrain.priorMultiKinds)", () => {
  const plus = getProtocol("r1-searcher-plus");
  const r1 = getProtocol("r1-searcher");
  const noBackground = { facts: 0, qa: 0, chains: 0, priorSingle: 0, priorMulti: 0 };
  const mix = async (priorMultiKinds?: Array<"bridge" | "comparison" | "compositional">) => {
    const cfg = quickstartConfig("micro", 2, {
      pretrain: {
        epochs: 3,
        mainRecall: 0,
        mainPriorSingle: 0,
        mainPriorMulti: 5,
        background: noBackground,
        priorMultiKinds,
      },
    });
    const world = generateWorld(worldConfig(cfg.world.preset, cfg.seed, cfg.world.overrides));
    const m = await buildPretrainMix(cfg, world, { r1, plus }, quickstartPrompts(cfg, r1, plus), new Map(), () => "/x");
    const kindOf = new Map(world.questions.map((q) => [q.idx, q.metadata.kind]));
    return { m, kinds: new Set(m.seenTrainQuestions.map((i) => kindOf.get(i))) };
  };

  it("shows only the named kinds; by default every multi-hop kind", async () => {
    const all = await mix();
    expect(all.kinds.size).toBeGreaterThan(1);
    const only = await mix(["comparison"]);
    expect([...only.kinds]).toEqual(["comparison"]);
    expect(only.m.counts["prior:main:r1:multi"]).toBe(15);
    expect(only.m.counts["prior:main:pool:multi"]).toBeLessThan(all.m.counts["prior:main:pool:multi"]!);
  });
});
