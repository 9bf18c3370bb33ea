/** The recall-or-search breakdown of results.json, on hand-written responses in both protocols. */
import { describe, expect, it } from "vitest";
import { getProtocol } from "../protocol/index.js";
import { stepUse } from "./results.js";

const plus = getProtocol("r1-searcher-plus");
const r1 = getProtocol("r1-searcher");
const steps = [
  { subject: "Fisa Company", relation: "founded_by" as const, object: "Dordel Tordel" },
  { subject: "Dordel Tordel", relation: "born_in" as const, object: "Kelholm" },
];

describe("stepUse", () => {
  it("tells recalled (right or wrong) from searched steps in R1-Searcher++ responses", () => {
    const doc = plus.renderDocumentBlock([
      { id: "1", title: "Dordel Tordel", text: "Dordel Tordel was born in Kelholm." },
    ]);
    const right = `<internal> Fisa Company was founded by Dordel Tordel. </internal> I need to find where Dordel Tordel was born. <external> Dordel Tordel born</external>${doc} So the answer is Kelholm. </think>\n\n<answer> Kelholm </answer>`;
    expect(stepUse(plus, right, steps)).toEqual([
      { recalled: true, recalledCorrect: true, searched: false },
      { recalled: false, recalledCorrect: false, searched: true },
    ]);
    const wrong = `<internal> Fisa Company was founded by Irsa Zancal. </internal> <internal> Irsa Zancal was born in Sagard. </internal> So the answer is Sagard. </think>\n\n<answer> Sagard </answer>`;
    expect(stepUse(plus, wrong, steps)).toEqual([
      { recalled: true, recalledCorrect: false, searched: false },
      { recalled: false, recalledCorrect: false, searched: false },
    ]);
  });

  it("finds the queries of R1-Searcher responses (no recall blocks there)", () => {
    const text = `I need to find who founded Fisa Company. ${r1.queryOpen} Fisa Company founded${r1.queryClose}`;
    expect(stepUse(r1, text, steps)).toEqual([
      { recalled: false, recalledCorrect: false, searched: true },
      { recalled: false, recalledCorrect: false, searched: false },
    ]);
  });
});
