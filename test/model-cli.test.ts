/** `searchrl model ...` spawned as a real process: tokenizer-train -> init -> info -> export-gguf, and bad input. */
import { ROOT, runCli } from "./cli-process.js";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCheckpoint, loadTokenizer } from "../src/model/index.js";

const dir = mkdtempSync(path.join(tmpdir(), "searchrl-cli-model-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

describe("searchrl model", () => {
  const corpus = path.join(dir, "corpus.jsonl");
  writeFileSync(
    corpus,
    readFileSync(path.join(ROOT, "data/r1-searcher/eval_set/musique_500.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .slice(0, 300)
      .join("\n") + "\n",
  );

  it("trains a tokenizer, initialises a model, describes it and exports GGUF", async () => {
    const tok = path.join(dir, "tok");
    let r = await run([
      "model",
      "tokenizer-train",
      "--corpus",
      corpus,
      "--field",
      "question",
      "--vocab",
      "600",
      "--out",
      tok,
      "--added-tokens",
      "<|begin_of_query|>,<|end_of_query|>",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const t = await loadTokenizer(tok);
    expect(t.vocabSize).toBe(600);
    expect(t.encode("<|begin_of_query|>")).toHaveLength(1);
    expect(t.eosTokenIds).toEqual([t.tokenToId("<|endoftext|>")]);

    const cfg = path.join(dir, "cfg.yaml");
    writeFileSync(cfg, "hiddenSize: 32\nintermediateSize: 64\nnumLayers: 1\nnumHeads: 2\nmaxPositions: 64\n");
    const m = path.join(dir, "m");
    r = await run(["model", "init", "--config", cfg, "--tokenizer", tok, "--out", m, "--seed", "3"]);
    expect(r.code).toBe(0);
    const model = await loadCheckpoint(m);
    expect(model.config.vocabSize).toBe(600);
    expect(model.config.eosTokenIds).toEqual([...t.eosTokenIds]);
    model.dispose();

    r = await run(["model", "info", m, "--json"]);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.parameters).toBeGreaterThan(0);
    expect(info.tokenizer.byteLevelBpe).toBe(true);

    const gguf = path.join(dir, "m.gguf");
    r = await run(["model", "export-gguf", m, gguf]);
    expect(r.code).toBe(0);
    expect(readFileSync(gguf).subarray(0, 4).toString()).toBe("GGUF");
  });

  it("reports bad input clearly", async () => {
    let r = await run([
      "model",
      "tokenizer-train",
      "--corpus",
      path.join(dir, "missing.txt"),
      "--vocab",
      "300",
      "--out",
      path.join(dir, "x"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not found/);
    r = await run(["model", "tokenizer-train", "--corpus", corpus, "--vocab", "12", "--out", path.join(dir, "x")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--vocab must be > 256/);
    expect(existsSync(path.join(dir, "x"))).toBe(false);
    r = await run(["model", "info", path.join(dir, "nope")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a folder/);
  });
});
