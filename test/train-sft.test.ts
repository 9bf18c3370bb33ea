/**
 * SFT / pre-training end to end on the built-in model: `searchrl sft` pre-trains a fresh model from text (config with
 * `model.create`), and the library `runSft` fine-tunes it on prompt/response rows with the retrieved documents masked.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./cli-process.js";
import { loadCheckpoint } from "../src/model/checkpoint.js";
import { trainBpe } from "../src/model/tokenizer/bpe.js";
import { loadTokenizer } from "../src/model/tokenizer/hf.js";
import { getProtocol } from "../src/protocol/index.js";
import { runSft } from "../src/train/api.js";
import { buildSftExamples } from "../src/train/data.js";

const root = mkdtempSync(path.join(os.tmpdir(), "searchrl-train-sft-"));

const FACTS = [
  "The zorb is blue.",
  "The quilm is red.",
  "The mepto is green.",
  "The dravik is gold.",
  "The fenlo is gray.",
];

describe("SFT end to end (built-in model)", () => {
  const protocol = getProtocol("r1-searcher");
  const tokDir = path.join(root, "tok");
  const tok = trainBpe([...FACTS, "What color is the zorb?"], {
    vocabSize: 330,
    specialTokens: ["<|endoftext|>"],
    addedTokens: [
      protocol.queryOpen,
      protocol.queryClose,
      "<|begin_of_documents|>",
      "<|end_of_documents|>",
      protocol.answerOpen,
      protocol.answerClose,
    ],
    bos: null,
  });

  it("`searchrl sft` pre-trains a fresh model on text: loss falls, checkpoint loads", async () => {
    const tokFile = path.join(tokDir, "tokenizer.json");
    await import("node:fs").then((fs) => fs.mkdirSync(tokDir, { recursive: true }));
    writeFileSync(tokFile, JSON.stringify(tok.toJson()));
    const data = path.join(root, "text.jsonl");
    writeFileSync(data, FACTS.map((t) => JSON.stringify({ text: `${t} ${t}` })).join("\n") + "\n");
    const cfg = path.join(root, "pretrain.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        stage: "pretrain",
        runDir: "run-pretrain",
        seed: 7,
        model: {
          create: {
            vocabSize: tok.vocabSize,
            hiddenSize: 48,
            intermediateSize: 96,
            numLayers: 2,
            numHeads: 4,
            maxPositions: 128,
            eosTokenIds: [...tok.eosTokenIds],
          },
          tokenizer: "tok/tokenizer.json",
        },
        data: { path: "text.jsonl", maxSeqLen: 64, addBos: false },
        mask: "none",
        epochs: 60,
        batchSize: 5,
        microBatchSize: 5,
        optim: { lr: 5e-3, schedule: "cosine_with_min_lr", warmupRatio: 0.05 },
        run: { saveSteps: 20 },
      }),
    );
    const r = await runCli(["sft", "--config", cfg, "--quiet"]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(summary.steps).toBe(60);
    const runDir = path.join(root, "run-pretrain");
    const metrics = readFileSync(path.join(runDir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(60);
    expect(metrics[0]).toMatchObject({ step: 1, stage: "pretrain", lr: 0 }); // warmup starts at 0
    expect(metrics[59].loss, metrics.map((m) => m.loss.toFixed(2)).join(" ")).toBeLessThan(metrics[0].loss / 4);
    for (const k of ["loss", "lr", "grad_norm", "tokens_per_s", "samples"])
      expect(typeof metrics[5][k], k).toBe("number");
    // the checkpoint is a loadable model folder whose likelihood of the training text is high
    const ck = path.join(runDir, "checkpoints", "step-000060");
    const model = await loadCheckpoint(ck);
    const t2 = await loadTokenizer(ck);
    const ids = t2.encode(`${FACTS[0]} ${FACTS[0]}`);
    const lp = model.computeLogprobs({ sequences: [ids] }).logprobs[0];
    const meanNll = -lp.reduce((a, b) => a + b, 0) / lp.length;
    expect(meanNll).toBeLessThan(metrics[0].loss / 4);
    model.dispose();
    const state = JSON.parse(readFileSync(path.join(ck, "trainer_state.json"), "utf8"));
    expect(state).toMatchObject({
      stage: "pretrain",
      step: 60,
      optimizerSteps: 60,
      optimizerFile: "optimizer.safetensors",
    });
  }, 60_000);

  it("runSft with objects: documents are masked, loss falls on the policy tokens", async () => {
    const model = await loadCheckpoint(path.join(root, "run-pretrain", "checkpoints", "step-000060"));
    const docs = protocol.renderDocumentBlock([{ id: "1", title: "Zorb", text: "The zorb is blue." }]);
    const rows = [0, 1, 2].map((i) => ({
      prompt: `Q: What color is the ${["zorb", "quilm", "mepto"][i]}?\n`,
      response: `${protocol.queryOpen}${["zorb", "quilm", "mepto"][i]} color${docs}${protocol.answerOpen}${["blue", "red", "green"][i]}${protocol.answerClose}`,
    }));
    const data = path.join(root, "sft.jsonl");
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    // the mask: every token of the document block (and only those) is 0
    const ex = buildSftExamples(rows[0], "row 1", {
      tokenizer: tok,
      protocol,
      maskEnvironment: true,
      maxSeqLen: 128,
      addBos: false,
      addEos: true,
      format: "auto",
      textKey: "text",
      promptKey: "prompt",
      responseKey: "response",
    })[0];
    const spans = protocol.parse(rows[0].response).environmentSpans;
    expect(spans.length).toBe(1);
    const envTokens = tok.encode(rows[0].response.slice(spans[0][0], spans[0][1])).length;
    expect(rows[0].response.slice(spans[0][0], spans[0][1])).toMatch(
      /^<\|begin_of_documents\|>[^]*<\|end_of_documents\|>\n\n$/,
    );
    expect(ex.mask.filter((m) => m === 0)).toHaveLength(envTokens);
    const steps: number[] = [];
    const res = await runSft(
      {
        stage: "sft",
        runDir: path.join(root, "run-sft"),
        data: { path: data, maxSeqLen: 128, addBos: false },
        epochs: 25,
        batchSize: 3,
        microBatchSize: 2,
        optim: { lr: 2e-3, schedule: "constant" },
        run: { saveSteps: 0 },
      },
      { model, tokenizer: tok, protocol },
      { quiet: true, onStep: (m) => void steps.push(m.loss!) },
    );
    expect(res.steps).toBe(25);
    expect(steps[24]).toBeLessThan(steps[0] / 3);
    const trained = res.metrics[0].trained_tokens as number;
    const allResp = rows.reduce((a, r) => a + tok.encode(r.response).length + 1, 0);
    expect(trained).toBe(allResp - 3 * envTokens);
    model.dispose();
  }, 60_000);
});
