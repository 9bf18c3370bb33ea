/**
 * R1-Searcher++ pipeline end to end on the built-in model, the rollout engine and a BM25 index:
 * `searchrl data rejection-sample` (CLI) → SFT cold start with documents masked → RL with the group reward preset and
 * the memorization loss (template rewriter). The memorization term must make the rewritten, retrieval-free paths more
 * likely than the same RL run without it.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli-process.js";
import { coverExactMatch } from "../src/metrics/answer.js";
import { loadCheckpoint } from "../src/model/checkpoint.js";
import { runRl, runSft } from "../src/train/api.js";
import {
  buildMemorizationSet,
  LlmRewriter,
  TemplateRewriter,
  type RewriteInput,
  type Rewriter,
} from "../src/train/rewriter.js";
import { createBuiltinBackend } from "../src/llm/builtin.js";
import { buildToyWorld, TOY_TEMPLATE, type ToyWorld } from "../src/train/testing/world.js";

const root = mkdtempSync(path.join(os.tmpdir(), "searchrl-train-plus-"));
let w: ToyWorld;

beforeAll(async () => {
  w = await buildToyWorld(path.join(root, "world"), {
    protocol: "r1-searcher-plus",
    internalDemos: true,
    pretrainSteps: 100,
    seed: 2,
  });
}, 120_000);

afterAll(async () => {
  await w?.retriever.close();
});

describe("R1-Searcher++: rejection sampling → SFT → RL with memorization", () => {
  const rsFile = () => path.join(root, "cold-start.jsonl");
  let sftCheckpoint = "";

  it("`searchrl data rejection-sample` keeps correct, well-formed samples and resumes", async () => {
    const args = [
      "data",
      "rejection-sample",
      "--llm",
      w.baseCheckpoint,
      "--retriever",
      w.indexDir,
      "--protocol",
      "r1-searcher-plus",
      "--template",
      TOY_TEMPLATE,
      "--data",
      w.questionsFile,
      "--n",
      "4",
      "--out",
      rsFile(),
      "--k",
      "1",
      "--max-tokens",
      "32",
      "--max-retrievals",
      "2",
      "--max-per-question",
      "2",
      "--seed",
      "1",
      "--quiet",
    ];
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(s.sampled).toBe(24);
    expect(s.kept).toBeGreaterThanOrEqual(3);
    expect(s.kept + Object.values(s.rejected as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(24);
    const rows = readFileSync(rsFile(), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(s.kept);
    for (const row of rows) {
      expect(row.finish).toBe("answer");
      expect(coverExactMatch(w.protocol.extractAnswer(row.response)!, row.gold)).toBe(true);
      expect(w.protocol.parse(row.response).formatErrors).toEqual([]);
      expect(row.prompt).toBe(row.promptText);
      expect(row.responseTokens.length).toBe(row.mask.length);
    }
    // a second run skips the questions already done
    const again = await runCli(args);
    expect(again.code, again.stderr).toBe(0);
    const s2 = JSON.parse(again.stdout.trim().split("\n").pop()!);
    expect(s2.skipped).toBe(6);
    expect(s2.sampled).toBe(0);
    expect(readFileSync(rsFile(), "utf8").trim().split("\n")).toHaveLength(s.kept);
  }, 60_000);

  it("SFT cold start on the kept samples (documents masked)", async () => {
    const model = await loadCheckpoint(w.baseCheckpoint);
    const res = await runSft(
      {
        preset: "r1-searcher-plus-sft",
        runDir: path.join(root, "sft"),
        data: { path: rsFile(), addBos: false, maxSeqLen: 160 },
        epochs: 10,
        batchSize: 8,
        microBatchSize: 8,
        optim: { lr: 1e-3, warmupRatio: 0 },
        run: { saveSteps: 0 },
      },
      { model, tokenizer: w.tokenizer },
      { quiet: true },
    );
    model.dispose();
    const l = res.metrics.map((m) => m.loss!);
    expect(l[l.length - 1]).toBeLessThan(l[0]);
    expect(res.checkpoint).not.toBeNull();
    sftCheckpoint = res.checkpoint!;
  }, 60_000);

  it("RL++ (group reward + μ·L_M) makes the rewritten retrieval-free paths more likely than RL alone", async () => {
    const rewritten: Array<{ input: RewriteInput; text: string }> = [];
    const base = new TemplateRewriter();
    const recording: Rewriter = {
      name: "template",
      rewrite: async (input) => {
        const text = await base.rewrite(input);
        if (text !== null) rewritten.push({ input, text });
        return text;
      },
    };
    const run = async (memorization: boolean) => {
      const model = await loadCheckpoint(sftCheckpoint);
      const metrics: Array<Record<string, unknown>> = [];
      const res = await runRl(
        {
          preset: "r1-searcher-plus-rl",
          runDir: path.join(root, memorization ? "rl-mem" : "rl-nomem"),
          seed: 4,
          data: { path: w.questionsFile },
          protocol: { name: "r1-searcher-plus", template: TOY_TEMPLATE },
          retriever: { spec: w.indexDir, k: 1 },
          rollout: {
            nSamplesPerPrompt: 4,
            rolloutBatchSize: 6,
            maxTokensPerSegment: 32,
            maxRetrievals: 2,
            concurrency: 32,
          },
          algorithm: { trainBatchSize: 24, microTrainBatchSize: 12, microRolloutBatchSize: 24 },
          optim: { lr: 3e-4 },
          run: { numEpisodes: 10, maxSteps: 6, saveSteps: 0 },
          memorization: { enabled: memorization, coef: 0.1 },
        },
        { model, tokenizer: w.tokenizer, retriever: w.retriever, rewriter: recording },
        { quiet: true, onStep: (m) => void metrics.push(m) },
      );
      return { model, res, metrics };
    };

    const mem = await run(true);
    expect(mem.res.steps).toBe(6);
    // the preset: REINFORCE++ with one update per rollout batch, β = 1e-4, the group reward preset
    expect(mem.metrics.every((m) => m.updates === 1)).toBe(true);
    expect(mem.metrics.every((m) => typeof m.group_reward === "number" && typeof m.format_ok === "number")).toBe(true);
    expect(mem.metrics.every((m) => (m.memorization_samples as number) > 0)).toBe(true);
    expect(rewritten.length).toBeGreaterThan(0);
    // rewritten paths: the query/document block became an internal fact from the retrieved passage; answer kept
    for (const { input, text } of rewritten) {
      expect(text).not.toContain("<external>");
      expect(text).not.toContain("<document>");
      const fact = /<internal> (.*?) <\/internal>/.exec(text)?.[1];
      expect(fact).toBeDefined();
      expect(input.trajectory.documents.flat().some((p) => p.text.includes(fact!))).toBe(true);
      expect(coverExactMatch(w.protocol.extractAnswer(text)!, input.gold!)).toBe(true);
    }
    const nomem = await run(false);
    expect(nomem.metrics.every((m) => m.memorization_samples === undefined)).toBe(true);

    // NLL of the rewritten paths (one per question) under both trained models
    const paths = new Map<string, { prompt: number[]; text: string }>();
    for (const { input, text } of rewritten)
      paths.set(input.trajectory.group, { prompt: input.trajectory.promptTokens, text });
    const nll = (m: typeof mem.model) => {
      let s = 0;
      let n = 0;
      for (const p of paths.values()) {
        const resp = [...w.tokenizer.encode(p.text), ...w.tokenizer.eosTokenIds.slice(0, 1)];
        const lp = m.computeLogprobs({ sequences: [[...p.prompt, ...resp]], from: [p.prompt.length] }).logprobs[0];
        for (const x of lp) s -= x;
        n += lp.length;
      }
      return s / n;
    };
    const withMem = nll(mem.model);
    const without = nll(nomem.model);
    expect(withMem, `NLL with memorization ${withMem.toFixed(3)} vs without ${without.toFixed(3)}`).toBeLessThan(
      without - 0.05,
    );
    mem.model.dispose();
    nomem.model.dispose();
  }, 90_000);

  it("the LLM rewriter runs through a real backend and its outputs go through the same re-check", async () => {
    const backend = await createBuiltinBackend({ checkpointDir: w.baseCheckpoint });
    try {
      const rows = readFileSync(rsFile(), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const withSearch = rows.filter((r) => r.retrievals > 0);
      expect(withSearch.length).toBeGreaterThan(0);
      // a compact prompt template (the default one is longer than this model's context)
      const rewriter = new LlmRewriter(backend, {
        maxTokens: 24,
        seed: 1,
        prompt: "{documents}\nQ: {question}\n<think>{internal_open}",
      });
      const qrow = (r: { group: string; question: string; gold: string }) => ({
        id: r.group,
        question: r.question,
        gold: r.gold,
        raw: {},
      });
      const outputs: Array<string | null> = [];
      const recording: Rewriter = {
        name: rewriter.name,
        rewrite: async (i) => {
          const t = await rewriter.rewrite(i);
          outputs.push(t);
          return t;
        },
      };
      const res = await buildMemorizationSet(
        withSearch.map((t) => ({ traj: t, row: qrow(t), correct: true })),
        {
          rewriter: recording,
          protocol: w.protocol,
          tokenizer: w.tokenizer,
          requireRetrieval: true,
          recheck: true,
          maxAnswerWords: 10,
          maxPerQuestion: 1,
          maxPerStep: 0,
          answerCheck: (a, g) => coverExactMatch(a, g),
        },
      );
      expect(rewriter.name).toBe(`llm:${backend.name}`);
      expect(outputs.length).toBe(res.candidates);
      expect(outputs.some((o) => typeof o === "string" && o.length > 0)).toBe(true);
      // whatever the tiny model wrote, only retrieval-free paths with a correct short answer survive
      for (const ex of res.examples) {
        expect(w.protocol.countRetrievals(ex.text)).toBe(0);
        expect(
          coverExactMatch(w.protocol.extractAnswer(ex.text)!, w.questions.find((q) => q.id === ex.group)!.gold!),
        ).toBe(true);
      }
    } finally {
      await backend.close();
    }
  }, 60_000);
});
