/** `searchrl search SPEC "query"`: query an index directory, a retrieval server URL or a web provider. */
import { z } from "zod";
import { openRetriever } from "../../retrieval/index.js";
import type { RegisterCommands } from "../groups.js";

const OptionsSchema = z.object({
  k: z.coerce
    .number({ error: "-k must be a number" })
    .int("-k must be an integer")
    .min(1, "-k must be >= 1")
    .max(1000, "-k must be <= 1000"),
  json: z.boolean().optional(),
  mode: z.enum(["auto", "bm25", "dense", "hybrid"], { error: "--mode must be auto, bm25, dense or hybrid" }),
  engine: z.enum(["auto", "postings", "memory", "lancedb"], {
    error: "--engine must be auto, postings, memory or lancedb",
  }),
  model: z.string().optional(),
  api: z.enum(["queries", "retrieve"], { error: "--api must be queries or retrieve" }).optional(),
  nprobe: z.coerce.number().int().min(1).optional(),
});

export const register: RegisterCommands = (program) => {
  program
    .command("search")
    .description("search an index directory, a retrieval server (http://.../queries or /retrieve) or web:PROVIDER")
    .argument("<spec>", "index directory, server URL, or web:PROVIDER")
    .argument("<query...>", "query text (several arguments are joined with spaces)")
    .option("-k, --k <n>", "results", "5")
    .option("--json", "print JSON (one object: query, results [{id, title, text, score, raw}])")
    .option("--mode <m>", "index directories: auto, bm25, dense or hybrid", "auto")
    .option(
      "--engine <e>",
      "BM25 engine: auto (postings; LanceDB for older indexes above 100k passages), postings, memory or lancedb",
      "auto",
    )
    .option("--model <dir>", "dense: the model folder, if it moved since the build")
    .option("--api <api>", "remote: queries (R1-Searcher) or retrieve (Search-R1); default from the URL path")
    .option("--nprobe <n>", "dense ivf-sq8: lists probed")
    .action(async (spec: string, words: string[], raw: Record<string, unknown>) => {
      const parsed = OptionsSchema.safeParse(raw);
      if (!parsed.success) throw new Error(`search: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
      const o = parsed.data;
      const query = words.join(" ");
      const r = await openRetriever(spec, {
        mode: o.mode,
        bm25Engine: o.engine,
        modelDir: o.model,
        api: o.api,
        nprobe: o.nprobe,
      });
      try {
        const t = performance.now();
        const [res] = await r.search([query], o.k);
        const ms = performance.now() - t;
        if (o.json) {
          process.stdout.write(
            JSON.stringify({ query, retriever: r.name, ms: Math.round(ms * 100) / 100, results: res }) + "\n",
          );
          return;
        }
        process.stdout.write(`${r.name}: ${res.length} results for ${JSON.stringify(query)} in ${ms.toFixed(1)} ms\n`);
        res.forEach((p, i) => {
          const text = p.text.length > 300 ? `${p.text.slice(0, 300)}…` : p.text;
          process.stdout.write(
            `\n${i + 1}. [${p.id}] ${p.title}${p.score === undefined ? "" : `  (score ${p.score.toFixed(4)})`}\n   ${text}\n`,
          );
        });
      } finally {
        await r.close();
      }
    });
};
