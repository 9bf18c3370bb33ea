/**
 * Writes a runs folder in the formats of docs/run-format.md for the UI and data-route tests: two training runs
 * (metrics.jsonl, samples/step-*.jsonl with `Trajectory` + reward + correct, checkpoints) and two evaluation result
 * files over the same questions (upstream `eval_search_loacl.py` fields + ours, with a summary). Responses are built
 * with the real protocols, so the protocol parser splits them as it would split a model's output.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { getProtocol } from "../src/protocol/index.js";
import type { Trajectory } from "../src/rollout/types.js";
import { Rng } from "../src/util/rng.js";
import type { Passage } from "../src/util/types.js";

export const FIXTURE_QUESTIONS: Array<{
  q: string;
  gold: string;
  facts: Array<{ query: string; title: string; text: string }>;
}> = [
  {
    q: "Who was president of the United States when Citibank was founded?",
    gold: "James Madison",
    facts: [
      {
        query: "Citibank founded year",
        title: "Citibank",
        text: "Citibank was founded in 1812 as the City Bank of New York.",
      },
      {
        query: "US president 1812",
        title: "James Madison",
        text: "James Madison was the fourth president of the United States, serving from 1809 to 1817.",
      },
    ],
  },
  {
    q: "Which river flows through the capital of Hungary?",
    gold: "Danube",
    facts: [
      {
        query: "capital of Hungary river",
        title: "Budapest",
        text: "Budapest, the capital of Hungary, lies on both banks of the Danube.",
      },
    ],
  },
  {
    q: "What is the birth city of the director of the film Alpha Bay?",
    gold: "Lisbon",
    facts: [
      {
        query: "Alpha Bay film director",
        title: "Alpha Bay",
        text: "Alpha Bay is a 1998 drama film directed by Marta Quintela.",
      },
      {
        query: "Marta Quintela birthplace",
        title: "Marta Quintela",
        text: "Marta Quintela (born 1961 in Lisbon) is a Portuguese film director.",
      },
    ],
  },
  {
    q: "Are the Morrow Tower and the Vell Tower in the same country?",
    gold: "no",
    facts: [
      { query: "Morrow Tower country", title: "Morrow Tower", text: "The Morrow Tower is a lighthouse in Norway." },
      {
        query: "Vell Tower location",
        title: "Vell Tower",
        text: "The Vell Tower is a medieval tower in Catalonia, Spain.",
      },
    ],
  },
];

function passage(i: number, f: { title: string; text: string }, score: number): Passage {
  return { id: String(1000 + i), title: f.title, text: f.text, score };
}

/** A response in a protocol's format: reasoning, one query per fact with its documents, then the answer. */
export function fixtureResponse(
  protocolName: string,
  item: (typeof FIXTURE_QUESTIONS)[number],
  answer: string,
  searches: number,
  internal = false,
) {
  const p = getProtocol(protocolName);
  let text = "";
  const queries: string[] = [];
  const documents: Passage[][] = [];
  item.facts.slice(0, searches).forEach((f, i) => {
    text += ` I need to find out: ${f.query.toLowerCase()}. ${p.queryOpen} ${f.query}${p.queryClose}`;
    const docs = [
      passage(i, f, 12.5 - i),
      passage(i + 10, { title: "Unrelated page", text: "Some other text about history." }, 3.1),
    ];
    text += p.renderObservation(docs);
    queries.push(f.query);
    documents.push(docs);
  });
  if (internal && item.facts.length > searches) {
    const f = item.facts[searches];
    text += ` <internal> ${f.text} </internal>`;
  }
  text += ` So the answer is ${answer}. </think>\n\n${p.answerOpen} ${answer} ${p.answerClose}`;
  return { text, queries, documents };
}

function trajectory(
  protocolName: string,
  idx: number,
  correct: boolean,
  searches: number,
  rng: Rng,
): Trajectory & { reward: number; correct: boolean; dataset: string } {
  const item = FIXTURE_QUESTIONS[idx % FIXTURE_QUESTIONS.length];
  const answer = correct ? item.gold : "Unknown Person";
  const { text, queries, documents } = fixtureResponse(
    protocolName,
    item,
    answer,
    searches,
    protocolName === "r1-searcher-plus",
  );
  const n = 40 + rng.int(80);
  return {
    id: `traj-${idx}`,
    group: `q${idx % FIXTURE_QUESTIONS.length}`,
    question: item.q,
    gold: item.gold,
    protocol: protocolName,
    promptText: `User:${item.q}\nAssistant: <think>`,
    promptTokens: Array.from({ length: 30 }, (_, i) => i),
    responseText: text,
    responseTokens: Array.from({ length: n }, (_, i) => i),
    mask: Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1)),
    logprobs: Array.from({ length: n }, () => -1),
    retrievals: queries.length,
    queries,
    documents,
    answer: ` ${answer} `,
    finish: "answer",
    turns: queries.length + 1,
    timings: { totalMs: 200 + rng.int(300), backendMs: 150, retrievalMs: 20 },
    warnings: [],
    reward: correct ? 1 : rng.next() * 0.3,
    correct,
    dataset: idx % 2 === 0 ? "hotpotqa" : "2wikimultihopqa",
  };
}

function metricsRows(steps: number, seed: number, rl: boolean, variant = 0) {
  const rng = new Rng(seed);
  const rows: Array<Record<string, unknown>> = [];
  for (let step = 1; step <= steps; step++) {
    const t = step / steps;
    rows.push({
      step,
      time: 1732190000 + step * 30,
      stage: rl ? "rl" : "sft",
      lr: 1e-5,
      reward_mean: 0.15 + (0.6 - 0.15 * variant) * t + (rng.next() - 0.5) * 0.08,
      reward_std: 0.4,
      accuracy: 0.1 + (0.5 - 0.1 * variant) * t + (rng.next() - 0.5) * 0.06,
      retrievals_mean: variant === 0 ? 0.4 + 1.5 * t : 1.8 - 0.9 * t,
      response_length_mean: 60 + 50 * t + rng.next() * 5,
      kl: 0.0005 * step * (1 + variant),
      loss: 1.2 - (0.8 - 0.2 * variant) * t,
      samples: 16,
    });
  }
  return rows;
}

/** Write the fixture folder; returns its layout. */
export function writeUiFixtures(root: string) {
  const runs = [
    { name: "r1-searcher-rl", protocol: "r1-searcher", seed: 1 },
    { name: "r1-plus-rl", protocol: "r1-searcher-plus", seed: 2 },
  ];
  for (const run of runs) {
    const dir = path.join(root, run.name);
    mkdirSync(path.join(dir, "samples"), { recursive: true });
    writeFileSync(
      path.join(dir, "config.json"),
      JSON.stringify({ protocol: run.protocol, algorithm: "reinforce++", lr: 1e-5 }, null, 2),
    );
    // The last line is half-written, as while the trainer appends: the reader must skip it.
    writeFileSync(
      path.join(dir, "metrics.jsonl"),
      metricsRows(30, run.seed, true, run.seed - 1)
        .map((r) => JSON.stringify(r))
        .join("\n") + '\n{"step": 31, "rew',
    );
    const rng = new Rng(run.seed);
    for (const step of [10, 20]) {
      const rows = Array.from({ length: 8 }, (_, i) =>
        trajectory(run.protocol, i, (i + step / 10) % 3 !== 0, 1 + (i % 2), rng),
      );
      writeFileSync(
        path.join(dir, "samples", `step-${String(step).padStart(6, "0")}.jsonl`),
        rows.map((r) => JSON.stringify(r)).join("\n") + "\n",
      );
    }
    mkdirSync(path.join(dir, "checkpoints", "step-000020"), { recursive: true });
    writeFileSync(path.join(dir, "checkpoints", "latest"), "step-000020\n");
  }
  const evals = [
    { name: "evals/model-a", correctEvery: 1 },
    { name: "evals/model-b", correctEvery: 2 },
  ];
  for (const ev of evals) {
    const dir = path.join(root, ev.name);
    mkdirSync(dir, { recursive: true });
    const rows = FIXTURE_QUESTIONS.map((item, i) => {
      const correct = i % ev.correctEvery === 0;
      const answer = correct ? item.gold : "Paris";
      const { text, queries } = fixtureResponse("r1-searcher", item, answer, item.facts.length);
      return {
        question: item.q,
        answer: [item.gold],
        pred_ans: ` ${answer} `,
        stop_reason_final: "finished",
        gen_text_store: text,
        idx: i,
        dataset: i < 2 ? "hotpotqa" : "bamboogle",
        retrievals: queries.length,
        queries,
        prompt_tokens: 300,
        response_tokens: 120,
        timings: { totalMs: 900, backendMs: 700, retrievalMs: 80 },
        em: correct ? 1 : 0,
        cem: correct ? 1 : 0,
        f1: correct ? 1 : 0.1,
      };
    });
    writeFileSync(path.join(dir, "results.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const acc = rows.filter((r) => r.em === 1).length / rows.length;
    writeFileSync(
      path.join(dir, "results.summary.json"),
      JSON.stringify({ count: rows.length, em: acc, cem: acc, f1: acc, retrievals_mean: 1.75 }),
    );
  }
  return { runs: runs.map((r) => r.name), results: evals.map((e) => `${e.name}/results.jsonl`) };
}
