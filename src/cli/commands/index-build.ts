/** `searchrl index build`: build a BM25 and/or dense index directory from a corpus file. */
import { z } from "zod";
import { CORPUS_FORMATS } from "../../corpus/index.js";
import { buildIndex } from "../../retrieval/index.js";
import type { RegisterCommands } from "../groups.js";

const int = (what: string, min: number) =>
  z.coerce
    .number({ error: `${what} must be a number` })
    .int(`${what} must be an integer`)
    .min(min, `${what} must be >= ${min}`);

const OptionsSchema = z
  .object({
    corpus: z.string().min(1),
    out: z.string().min(1),
    bm25: z.boolean().optional(),
    engine: z.enum(["postings", "lance"], { error: "--engine must be postings or lance" }),
    resume: z.boolean(),
    dense: z.string().optional(),
    preset: z.enum(["bge", "e5"], { error: "--preset must be bge or e5" }),
    instructionSpace: z.boolean().optional(),
    format: z.enum(["auto", ...CORPUS_FORMATS], {
      error: `--format must be one of auto, ${CORPUS_FORMATS.join(", ")}`,
    }),
    textField: z.string().optional(),
    titleField: z.string().optional(),
    idField: z.string().optional(),
    limit: int("--limit", 1).optional(),
    stem: z.enum(["porter", "none"], { error: "--stem must be porter or none" }),
    stopwords: z.enum(["english", "none"], { error: "--stopwords must be english or none" }),
    ann: z.enum(["auto", "flat", "ivf-sq8"], { error: "--ann must be auto, flat or ivf-sq8" }),
    nlist: int("--nlist", 1).optional(),
    nprobe: int("--nprobe", 1).optional(),
    pca: int("--pca", 0).optional(),
    batchSize: int("--batch-size", 1),
    threads: int("--threads", 1),
    quiet: z.boolean().optional(),
  })
  .refine((o) => o.bm25 || o.dense, { message: "choose --bm25 and/or --dense MODEL_DIR" });

export const register: RegisterCommands = (_program, groups) => {
  groups.index
    .command("build")
    .description("build a search index directory (atomic: an interrupted build never leaves a half index)")
    .requiredOption(
      "--corpus <file>",
      "corpus file: KILT JSONL pages, kilt TSV, abstract TSV, FlashRAG JSONL or JSONL (.gz ok)",
    )
    .requiredOption("--out <dir>", "index directory (replaced atomically when the build finishes)")
    .option("--bm25", "build a BM25 index (persisted postings of the exact engine)")
    .option(
      "--engine <e>",
      "BM25: postings (default) or lance (also a LanceDB FTS index; needs the optional @lancedb/lancedb package)",
      "postings",
    )
    .option("--no-resume", "BM25: start over instead of resuming a killed build from its last finished segment")
    .option("--dense <model_dir>", "build a dense index with the local ONNX model folder (model.onnx + tokenizer.json)")
    .option("--preset <name>", "dense embedding conventions: bge (R1-Searcher) or e5", "bge")
    .option("--instruction-space", "bge: add a space after the query instruction (Search-R1/FlashRAG style)")
    .option("--format <fmt>", `corpus format: auto, ${CORPUS_FORMATS.join(", ")}`, "auto")
    .option("--text-field <f>", "jsonl: field holding the passage text")
    .option("--title-field <f>", "jsonl: field holding the title")
    .option("--id-field <f>", "jsonl/flashrag: field holding the id")
    .option("--limit <n>", "index only the first n passages")
    .option("--stem <s>", "BM25 stemming: porter or none", "porter")
    .option("--stopwords <s>", "BM25 stop words: english or none", "english")
    .option("--ann <type>", "dense index: auto (flat up to 20k vectors, else ivf-sq8), flat, ivf-sq8", "auto")
    .option("--nlist <n>", "ivf-sq8: number of lists (default 4·√N)")
    .option("--nprobe <n>", "ivf-sq8: default lists probed per query (default nlist/8)")
    .option("--pca <n>", "ivf-sq8: PCA width of the codes (default dim/4; 0 = none)")
    .option("--batch-size <n>", "dense: passages per ONNX run", "32")
    .option("--threads <n>", "dense: ONNX Runtime threads", "2")
    .option("--quiet", "no progress line")
    .addHelpText(
      "after",
      "\nExamples:\n  searchrl index build --corpus data/wiki.tsv --out idx/wiki --bm25\n  searchrl index build --corpus corpus.jsonl --out idx/dense --dense models/bge-small --preset bge",
    )
    .action(async (raw: Record<string, unknown>) => {
      const parsed = OptionsSchema.safeParse(raw);
      if (!parsed.success)
        throw new Error(
          `index build: ${parsed.error.issues.map((i) => `${i.path.length ? `--${i.path.join(".")}: ` : ""}${i.message}`).join("; ")}`,
        );
      const o = parsed.data;
      const m = await buildIndex({
        corpus: o.corpus,
        out: o.out,
        format: o.format,
        textField: o.textField,
        titleField: o.titleField,
        idField: o.idField,
        limit: o.limit,
        bm25: o.bm25 ? { analyzer: { stem: o.stem, stopwords: o.stopwords }, engine: o.engine } : false,
        resume: o.resume,
        dense: o.dense
          ? {
              model: o.dense,
              preset: o.preset,
              presetOptions: { instructionSpace: o.instructionSpace },
              batchSize: o.batchSize,
              threads: o.threads,
              index: { type: o.ann, nlist: o.nlist, nprobe: o.nprobe, pcaDims: o.pca },
            }
          : undefined,
        progress: !o.quiet,
      });
      process.stdout.write(`built ${m.kind} index: ${m.size} passages in ${m.build.seconds.toFixed(1)} s → ${o.out}\n`);
    });
};
