/**
 * `searchrl model ...`: train a byte-level BPE tokenizer, initialise a model, describe a model folder, export GGUF.
 * Thin wrappers over src/model.
 */
import { existsSync, promises as fsp, statSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import {
  BpeTokenizer,
  Transformer,
  countParameters,
  describeEngine,
  exportGgufFromCheckpoint,
  fromHfConfig,
  loadTokenizer,
  readCheckpointConfig,
  resolveModelConfig,
  saveCheckpoint,
  trainBpe,
} from "../../model/index.js";
import { atomicWriteDir } from "../../util/fsutil.js";
import { readLines } from "../../util/jsonl.js";
import type { RegisterCommands } from "../groups.js";

function fail(cmd: string, issues: z.core.$ZodIssue[]): never {
  throw new Error(`model ${cmd}: ${issues.map((i) => `${i.path.join(".") || "option"}: ${i.message}`).join("; ")}`);
}

const list = (v: string | undefined): string[] =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const TrainSchema = z.object({
  corpus: z.string().min(1, "--corpus is required"),
  vocab: z.coerce.number().int().min(257, "--vocab must be > 256"),
  out: z.string().min(1, "--out is required"),
  specialTokens: z.string().optional(),
  addedTokens: z.string().optional(),
  field: z.string().optional(),
  maxLines: z.coerce.number().int().positive().optional(),
});

/** Texts of a corpus file: plain text (one paragraph per line) or JSONL (a string field per record). */
async function* corpusTexts(
  file: string,
  field: string | undefined,
  maxLines: number | undefined,
): AsyncGenerator<string> {
  const jsonl = /\.jsonl$/i.test(file);
  let n = 0;
  for await (const line of readLines(file)) {
    if (maxLines !== undefined && n >= maxLines) return;
    n++;
    if (!jsonl) {
      yield line + "\n";
      continue;
    }
    if (!line.trim()) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new Error(`${file}:${n}: not valid JSON`);
    }
    const keys = field ? [field] : ["text", "contents", "content", "question"];
    const k = keys.find((x) => typeof rec[x] === "string");
    if (k) yield rec[k] as string;
  }
}

async function readConfigFile(file: string): Promise<unknown> {
  const text = await fsp.readFile(file, "utf8");
  try {
    return /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch {
    throw new Error(`${file}: not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"}`);
  }
}

export const register: RegisterCommands = (_program, groups) => {
  const model = groups.model;

  model
    .command("tokenizer-train")
    .description("train a byte-level BPE tokenizer and save it as a Hugging Face tokenizer.json")
    .requiredOption(
      "--corpus <file>",
      "training text: a text file (one paragraph per line) or JSONL (field text/contents)",
    )
    .requiredOption("--vocab <n>", "vocabulary size including the 256 byte tokens and the added tokens")
    .requiredOption("--out <dir>", "output folder (tokenizer.json, tokenizer_config.json)")
    .option("--special-tokens <list>", "comma-separated special tokens (first = EOS)", "<|endoftext|>")
    .option("--added-tokens <list>", "comma-separated strings that must be single tokens (e.g. protocol tags)")
    .option("--field <name>", "JSONL field holding the text")
    .option("--max-lines <n>", "read at most this many lines")
    .action(async (raw: unknown) => {
      const p = TrainSchema.safeParse(raw);
      if (!p.success) fail("tokenizer-train", p.error.issues);
      const o = p.data;
      if (!existsSync(o.corpus)) throw new Error(`model tokenizer-train: corpus file ${o.corpus} not found`);
      const texts: string[] = [];
      for await (const t of corpusTexts(o.corpus, o.field, o.maxLines)) texts.push(t);
      if (texts.length === 0) throw new Error(`model tokenizer-train: no text read from ${o.corpus}`);
      const t0 = Date.now();
      const tok = trainBpe(texts, {
        vocabSize: o.vocab,
        specialTokens: list(o.specialTokens),
        addedTokens: list(o.addedTokens),
      });
      const json = tok.toJson();
      const eos = tok.eosTokenIds[0];
      await atomicWriteDir(o.out, async (tmp) => {
        await fsp.writeFile(path.join(tmp, "tokenizer.json"), JSON.stringify(json) + "\n");
        const tc: Record<string, unknown> = {
          tokenizer_class: "PreTrainedTokenizerFast",
          clean_up_tokenization_spaces: false,
        };
        if (eos !== undefined) tc.eos_token = tok.vocab[eos];
        await fsp.writeFile(path.join(tmp, "tokenizer_config.json"), JSON.stringify(tc, null, 2) + "\n");
      });
      process.stdout.write(
        `tokenizer: ${tok.vocabSize} tokens (${tok.merges.length} merges, ${tok.added.length} added) from ${texts.length} texts in ${((Date.now() - t0) / 1000).toFixed(1)}s -> ${path.join(o.out, "tokenizer.json")}\n`,
      );
    });

  model
    .command("init")
    .description("create a randomly initialised model folder (config.json, model.safetensors, tokenizer.json)")
    .requiredOption(
      "--config <file>",
      "model config (JSON/YAML): built-in fields (hiddenSize, numLayers, ...) or a HF config.json",
    )
    .requiredOption("--out <dir>", "output model folder")
    .option(
      "--tokenizer <path>",
      "tokenizer.json (or folder) to include; sets vocabSize/EOS when the config omits them",
    )
    .option("--seed <n>", "random seed", "0")
    .action(async (raw: unknown) => {
      const p = z
        .object({
          config: z.string(),
          out: z.string(),
          tokenizer: z.string().optional(),
          seed: z.coerce.number().int(),
        })
        .safeParse(raw);
      if (!p.success) fail("init", p.error.issues);
      const o = p.data;
      const cfgIn = (await readConfigFile(o.config)) as Record<string, unknown>;
      let tokJson: Record<string, unknown> | undefined;
      let tokVocab: number | undefined;
      let tokEos: number[] = [];
      if (o.tokenizer) {
        const tok = await loadTokenizer(o.tokenizer);
        tokJson = tok.json;
        tokVocab = tok.vocabSize;
        tokEos = [...tok.eosTokenIds];
      }
      const cfg =
        "hidden_size" in cfgIn
          ? fromHfConfig(cfgIn)
          : resolveModelConfig({
              ...cfgIn,
              vocabSize: (cfgIn.vocabSize as number | undefined) ?? tokVocab ?? 0,
              eosTokenIds: (cfgIn.eosTokenIds as number[] | undefined) ?? tokEos,
            } as never);
      if (tokVocab !== undefined && tokVocab > cfg.vocabSize) {
        throw new Error(`model init: tokenizer has ${tokVocab} tokens but vocabSize is ${cfg.vocabSize}`);
      }
      const m = await Transformer.create(cfg, { seed: o.seed });
      try {
        await saveCheckpoint(m, o.out, { tokenizerJson: tokJson });
      } finally {
        m.dispose();
      }
      process.stdout.write(`initialised ${countParameters(cfg).toLocaleString("en-US")} parameters -> ${o.out}\n`);
    });

  model
    .command("info")
    .description("describe a model folder (config, parameter count, tokenizer, files)")
    .argument("<dir>", "model folder")
    .option("--json", "print JSON")
    .action(async (dir: string, raw: { json?: boolean }) => {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`model info: ${dir} is not a folder`);
      const cfg = await readCheckpointConfig(dir);
      const files = (await fsp.readdir(dir)).sort();
      let tokenizer: Record<string, unknown> | null = null;
      if (files.includes("tokenizer.json")) {
        const t = await loadTokenizer(dir);
        let byteLevelBpe = false;
        try {
          BpeTokenizer.fromJson(t.json);
          byteLevelBpe = true;
        } catch {
          byteLevelBpe = false;
        }
        tokenizer = { vocabSize: t.vocabSize, bosTokenId: t.bosTokenId, eosTokenIds: t.eosTokenIds, byteLevelBpe };
      }
      const info = { dir, config: cfg, parameters: countParameters(cfg), tokenizer, files, engine: describeEngine() };
      if (raw.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + "\n");
        return;
      }
      const c = cfg;
      process.stdout.write(
        [
          `${dir}`,
          `  architecture  ${c.architecture} (d_model ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads / ${c.numKvHeads} kv, head ${c.headDim}, ffn ${c.intermediateSize})`,
          `  parameters    ${countParameters(c).toLocaleString("en-US")}`,
          `  vocab         ${c.vocabSize}${c.tieEmbeddings ? " (tied embeddings)" : ""}`,
          `  context       ${c.maxPositions} (rope theta ${c.ropeTheta})`,
          `  tokenizer     ${tokenizer ? `${tokenizer.vocabSize} tokens, eos ${JSON.stringify(tokenizer.eosTokenIds)}${tokenizer.byteLevelBpe ? ", byte-level BPE (GGUF-exportable)" : ""}` : "none"}`,
          `  files         ${files.join(", ")}`,
          `  engine        ${info.engine} (SEARCHRL_ENGINE=native|wasm overrides)`,
        ].join("\n") + "\n",
      );
    });

  model
    .command("export-gguf")
    .description("export a model folder with a byte-level BPE tokenizer to GGUF (llama architecture) for llama.cpp")
    .argument("<checkpoint>", "model folder")
    .argument("<out>", "output .gguf file")
    .option("--f16", "store matrices as float16")
    .action(async (dir: string, out: string, raw: { f16?: boolean }) => {
      if (!existsSync(path.join(dir, "config.json"))) throw new Error(`model export-gguf: ${dir} has no config.json`);
      await exportGgufFromCheckpoint(dir, out, { f16: Boolean(raw.f16) });
      process.stdout.write(`wrote ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB)\n`);
    });
};
