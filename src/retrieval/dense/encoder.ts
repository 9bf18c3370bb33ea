/**
 * Text embedding with a local ONNX model (onnxruntime-node, CPU) and a Hugging Face `tokenizer.json`, following the
 * conventions of the bge and e5 families (ecosystem-contracts §6):
 *
 * | preset | query text | passage text | pooling | normalize |
 * |---|---|---|---|---|
 * | `bge` (R1-Searcher) | `"Represent this sentence for searching relevant passages:" + q` — **no** space | the passage's TSV text field `title   text`, no instruction | CLS | L2 |
 * | `bge` + `instructionSpace` (Search-R1, FlashRAG) | same instruction **with** a trailing space | `"Title"\ntext` | CLS | L2 |
 * | `e5` | `"query: " + q` | `"passage: " + "Title"\ntext` | mean over non-padding tokens | L2 |
 *
 * An index is only valid with the encoder, prefix, pooling, normalization and max length used to build it; all of them
 * are recorded in the index manifest and re-applied at query time.
 *
 * The model folder must hold `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`. Nothing is downloaded.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { Passage } from "../../util/types.js";
import { createSession, loadOrt } from "./ort.js";
import type * as OrtTypes from "onnxruntime-node";

export const BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages:";

export type Pooling = "cls" | "mean";
export type PassageTextStyle = "tsv-field" | "contents" | "text";

export const EmbeddingConfigSchema = z.object({
  preset: z.string(),
  queryPrefix: z.string(),
  passagePrefix: z.string(),
  pooling: z.enum(["cls", "mean"]),
  normalize: z.boolean(),
  queryMaxLength: z.number().int().positive(),
  passageMaxLength: z.number().int().positive(),
  passageText: z.enum(["tsv-field", "contents", "text"]),
});
export type EmbeddingConfig = z.infer<typeof EmbeddingConfigSchema>;

export type EmbeddingPresetName = "bge" | "e5";

export interface EmbeddingPresetOptions {
  /** bge only: add a space after the instruction (Search-R1/FlashRAG) — default false (R1-Searcher). */
  instructionSpace?: boolean;
  pooling?: Pooling;
  queryMaxLength?: number;
  passageMaxLength?: number;
  passageText?: PassageTextStyle;
}

/** The embedding conventions of a preset (see the table above). */
export function embeddingPreset(name: EmbeddingPresetName, opts: EmbeddingPresetOptions = {}): EmbeddingConfig {
  if (name === "bge") {
    const space = opts.instructionSpace ?? false;
    return {
      preset: space ? "bge+space" : "bge",
      queryPrefix: BGE_QUERY_INSTRUCTION + (space ? " " : ""),
      passagePrefix: "",
      pooling: opts.pooling ?? "cls",
      normalize: true,
      queryMaxLength: opts.queryMaxLength ?? (space ? 256 : 512),
      passageMaxLength: opts.passageMaxLength ?? (space ? 256 : 300),
      passageText: opts.passageText ?? (space ? "contents" : "tsv-field"),
    };
  }
  if (name === "e5") {
    return {
      preset: "e5",
      queryPrefix: "query: ",
      passagePrefix: "passage: ",
      pooling: opts.pooling ?? "mean",
      normalize: true,
      queryMaxLength: opts.queryMaxLength ?? 256,
      passageMaxLength: opts.passageMaxLength ?? 256,
      passageText: opts.passageText ?? "contents",
    };
  }
  throw new Error(`unknown embedding preset "${String(name)}" (expected bge or e5)`);
}

/** The text a passage is embedded as (before the passage prefix). */
export function passageEmbeddingText(p: Passage, style: PassageTextStyle): string {
  if (style === "text") return p.text;
  if (style === "contents") return `"${p.title}"\n${p.text}`;
  // R1-Searcher: the second TAB-separated field of the corpus line.
  if (p.raw !== undefined) {
    const parts = p.raw.split("\t");
    if (parts.length >= 2) return parts[1];
  }
  return p.title ? `${p.title}   ${p.text}` : p.text;
}

/** Files a model folder must contain. */
export function findModelFiles(dir: string): { model: string; tokenizer: string; tokenizerConfig: string | null } {
  const model = ["model.onnx", path.join("onnx", "model.onnx")]
    .map((f) => path.join(dir, f))
    .find((f) => existsSync(f));
  const tokenizer = path.join(dir, "tokenizer.json");
  const missing: string[] = [];
  if (!model) missing.push("model.onnx (or onnx/model.onnx)");
  if (!existsSync(tokenizer)) missing.push("tokenizer.json");
  if (missing.length > 0) {
    throw new Error(
      `embedding model folder ${dir} is missing ${missing.join(" and ")}. ` +
        "Expected a local ONNX export of the encoder (inputs input_ids, attention_mask[, token_type_ids]; output last_hidden_state) " +
        "plus its Hugging Face tokenizer.json; searchrl never downloads models.",
    );
  }
  const tc = path.join(dir, "tokenizer_config.json");
  return { model: model!, tokenizer, tokenizerConfig: existsSync(tc) ? tc : null };
}

interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  token_to_id(token: string): number | undefined;
}

export interface TextEmbedder {
  readonly dim: number;
  readonly config: EmbeddingConfig;
  /** Embed queries (prefix applied); returns n × dim float32, row-major. */
  embedQueries(queries: readonly string[], opts?: { signal?: AbortSignal }): Promise<Float32Array>;
  /** Embed passages (passage text style and prefix applied). */
  embedPassages(passages: readonly Passage[]): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface OnnxEmbedderOptions {
  /** ONNX Runtime intra-op threads (default 1). */
  threads?: number;
  /** Texts per ONNX run (default 32). */
  batchSize?: number;
}

/** A {@link TextEmbedder} running a local ONNX encoder. */
export class OnnxEmbedder implements TextEmbedder {
  private constructor(
    private readonly ort: typeof OrtTypes,
    private readonly session: OrtTypes.InferenceSession,
    private readonly tokenizer: HfTokenizer,
    readonly config: EmbeddingConfig,
    readonly dim: number,
    private readonly padId: number,
    private readonly outputName: string,
    private readonly batchSize: number,
    readonly modelDir: string,
  ) {}

  static async open(modelDir: string, config: EmbeddingConfig, opts: OnnxEmbedderOptions = {}): Promise<OnnxEmbedder> {
    const files = findModelFiles(modelDir);
    const { Tokenizer } = await import("@huggingface/tokenizers");
    let tokJson: unknown;
    try {
      tokJson = JSON.parse(readFileSync(files.tokenizer, "utf8"));
    } catch (err) {
      throw new Error(`${files.tokenizer}: not valid JSON (${(err as Error).message})`);
    }
    const tokCfg = files.tokenizerConfig
      ? (JSON.parse(readFileSync(files.tokenizerConfig, "utf8")) as Record<string, unknown>)
      : {};
    const tokenizer = new Tokenizer(tokJson as object, tokCfg) as unknown as HfTokenizer;
    const ort = await loadOrt();
    const session = await createSession(files.model, { threads: opts.threads ?? 1 });
    for (const name of ["input_ids", "attention_mask"]) {
      if (!session.inputNames.includes(name))
        throw new Error(`${files.model}: the model has no "${name}" input (inputs: ${session.inputNames.join(", ")})`);
    }
    const outputName =
      ["last_hidden_state", "token_embeddings", "sentence_embedding"].find((n) => session.outputNames.includes(n)) ??
      session.outputNames[0];
    const padTok = typeof tokCfg.pad_token === "string" ? tokCfg.pad_token : "[PAD]";
    const padId = tokenizer.token_to_id(padTok) ?? tokenizer.token_to_id("<pad>") ?? 0;
    const emb = new OnnxEmbedder(ort, session, tokenizer, config, 0, padId, outputName, opts.batchSize ?? 32, modelDir);
    // Probe the output width once.
    const probe = await emb.run(["probe"], 8);
    (emb as { dim: number }).dim = probe.length;
    return emb;
  }

  /** Token ids with the tokenizer's special tokens, truncated to maxLength keeping the special prefix/suffix. */
  private encodeIds(text: string, maxLength: number): number[] {
    const full = this.tokenizer.encode(text, { add_special_tokens: true }).ids;
    if (full.length <= maxLength) return full;
    const body = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    let pre = 0;
    while (pre < full.length && (pre >= body.length || full[pre] !== body[0])) pre++;
    const suf = Math.max(0, full.length - pre - body.length);
    const keep = Math.max(0, maxLength - pre - suf);
    return [...full.slice(0, pre), ...body.slice(0, keep), ...full.slice(full.length - suf)];
  }

  private async run(texts: readonly string[], maxLength: number): Promise<Float32Array> {
    const ids = texts.map((t) => this.encodeIds(t, maxLength));
    const B = ids.length;
    const T = Math.max(1, ...ids.map((x) => x.length));
    const inputIds = new BigInt64Array(B * T).fill(BigInt(this.padId));
    const mask = new BigInt64Array(B * T);
    ids.forEach((row, b) => {
      for (let t = 0; t < row.length; t++) {
        inputIds[b * T + t] = BigInt(row[t]);
        mask[b * T + t] = 1n;
      }
    });
    const feeds: Record<string, OrtTypes.Tensor> = {
      input_ids: new this.ort.Tensor("int64", inputIds, [B, T]),
      attention_mask: new this.ort.Tensor("int64", mask, [B, T]),
    };
    if (this.session.inputNames.includes("token_type_ids"))
      feeds.token_type_ids = new this.ort.Tensor("int64", new BigInt64Array(B * T), [B, T]);
    const out = (await this.session.run(feeds))[this.outputName];
    const data = out.data as Float32Array;
    const dims = out.dims;
    let H: number;
    let pooled: Float32Array;
    if (dims.length === 2) {
      H = dims[1];
      pooled = data.slice(0, B * H);
    } else if (dims.length === 3) {
      H = dims[2];
      pooled = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        if (this.config.pooling === "cls") {
          pooled.set(data.subarray(b * T * H, b * T * H + H), b * H);
        } else {
          const n = ids[b].length;
          for (let t = 0; t < n; t++) {
            const o = (b * T + t) * H;
            for (let h = 0; h < H; h++) pooled[b * H + h] += data[o + h];
          }
          for (let h = 0; h < H; h++) pooled[b * H + h] /= Math.max(1, n);
        }
      }
    } else
      throw new Error(
        `embedding model output "${this.outputName}" has rank ${dims.length}; expected [batch, tokens, hidden] or [batch, hidden]`,
      );
    if (this.config.normalize) {
      for (let b = 0; b < B; b++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += pooled[b * H + h] ** 2;
        const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
        for (let h = 0; h < H; h++) pooled[b * H + h] *= inv;
      }
    }
    return pooled;
  }

  private async embedTexts(texts: readonly string[], maxLength: number, signal?: AbortSignal): Promise<Float32Array> {
    const out = new Float32Array(texts.length * this.dim);
    for (let s = 0; s < texts.length; s += this.batchSize) {
      signal?.throwIfAborted();
      const v = await this.run(texts.slice(s, s + this.batchSize), maxLength);
      out.set(v, s * this.dim);
    }
    return out;
  }

  embedQueries(queries: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.embedTexts(
      queries.map((q) => this.config.queryPrefix + q),
      this.config.queryMaxLength,
      opts.signal,
    );
  }

  embedPassages(passages: readonly Passage[]): Promise<Float32Array> {
    return this.embedTexts(
      passages.map((p) => this.config.passagePrefix + passageEmbeddingText(p, this.config.passageText)),
      this.config.passageMaxLength,
    );
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
