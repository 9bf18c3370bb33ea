/** `searchrl serve retrieval`: R1-Searcher /queries + Search-R1 /retrieve on one port; `--check URL` runs the conformance suite. */
import { z } from "zod";
import { openIndex, openRetriever } from "../../retrieval/index.js";
import { serveRetrieval } from "../../server/retrieval.js";
import {
  formatRetrievalConformanceReport,
  runRetrievalConformance,
  type RetrievalContract,
} from "../../server/retrieval-conformance.js";
import type { RegisterCommands } from "../groups.js";

const OptionsSchema = z.object({
  index: z.string().optional(),
  check: z.string().optional(),
  port: z.coerce.number({ error: "--port must be a number" }).int().min(0).max(65535),
  host: z.string().min(1),
  token: z.string().min(1, "--token must not be empty").optional(),
  k: z.coerce.number().int().min(1, "--k must be >= 1"),
  maxK: z.coerce.number().int().min(1, "--max-k must be >= 1"),
  mode: z.enum(["auto", "bm25", "dense", "hybrid"], { error: "--mode must be auto, bm25, dense or hybrid" }),
  engine: z.enum(["auto", "postings", "memory", "lancedb"], {
    error: "--engine must be auto, postings, memory or lancedb",
  }),
  model: z.string().optional(),
  threads: z.coerce.number().int().min(1),
  queries: z.array(z.string()).optional(),
  contracts: z.enum(["both", "queries", "retrieve"]),
  json: z.boolean().optional(),
});

export const register: RegisterCommands = (_program, groups) => {
  groups.serve
    .command("retrieval")
    .description(
      "retrieval server: POST /queries (R1-Searcher), POST /retrieve (Search-R1), GET /health, GET /openapi.json",
    )
    .option("--index <spec>", "index directory (or a remote URL / web:PROVIDER to proxy)")
    .option(
      "--check <url>",
      "instead of serving: run the retrieval conformance suite against a server and exit (1 on failure)",
    )
    .option("--port <n>", "port", "5004")
    .option("--host <host>", "host (loopback by default; see --token before exposing it)", "127.0.0.1")
    .option(
      "--token <secret>",
      "require 'Authorization: Bearer <secret>' on every route but /health (or set SEARCHRL_RETRIEVAL_TOKEN; default none: veRL's and R1-Searcher's clients send no header)",
    )
    .option("--k <n>", "default k / topk when a request gives none", "3")
    .option("--max-k <n>", "largest accepted k / topk", "100")
    .option("--mode <m>", "index directories: auto, bm25, dense or hybrid", "auto")
    .option(
      "--engine <e>",
      "BM25 engine: auto (postings when the index has them, else exact in-memory up to 100k passages, else LanceDB), postings, memory, lancedb",
      "auto",
    )
    .option("--model <dir>", "dense: the model folder, if it moved since the build")
    .option("--threads <n>", "dense: ONNX Runtime threads for query encoding", "1")
    .option("--queries <q...>", "--check: sample queries that have hits in the server's corpus")
    .option("--contracts <c>", "--check: both, queries or retrieve", "both")
    .option("--json", "--check: print the report as JSON")
    .action(async (raw: Record<string, unknown>) => {
      const parsed = OptionsSchema.safeParse(raw);
      if (!parsed.success) throw new Error(`serve retrieval: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
      const o = parsed.data;
      if (!["127.0.0.1", "localhost", "::1"].includes(o.host) && !(o.token ?? process.env.SEARCHRL_RETRIEVAL_TOKEN))
        process.stderr.write(`warning: listening on ${o.host} without --token: anyone who can reach it can use it\n`);
      if (o.check) {
        const contracts: RetrievalContract[] = o.contracts === "both" ? ["queries", "retrieve"] : [o.contracts];
        const report = await runRetrievalConformance(o.check, { queries: o.queries, contracts });
        process.stdout.write(
          (o.json ? JSON.stringify(report, null, 2) : formatRetrievalConformanceReport(report)) + "\n",
        );
        if (!report.ok) process.exitCode = 1;
        return;
      }
      if (!o.index) throw new Error("serve retrieval: --index is required (or --check URL)");
      const isDir = !/^https?:\/\//i.test(o.index) && !o.index.startsWith("web:");
      const opened = isDir
        ? await openIndex(o.index, { mode: o.mode, bm25Engine: o.engine, modelDir: o.model, threads: o.threads })
        : { manifest: null, retriever: await openRetriever(o.index, {}) };
      const retriever = opened.retriever;
      const server = await serveRetrieval({
        retriever,
        host: o.host,
        port: o.port,
        token: o.token ?? process.env.SEARCHRL_RETRIEVAL_TOKEN ?? null,
        defaultK: o.k,
        maxK: o.maxK,
        health: opened.manifest
          ? {
              index: {
                kind: opened.manifest.kind,
                size: opened.manifest.size,
                created: opened.manifest.created,
                corpus: opened.manifest.corpus,
              },
            }
          : {},
      });
      const info = await retriever.info();
      process.stdout.write(
        `retrieval server: ${retriever.name}, ${info.size} passages, listening on ${server.url} (POST /queries, POST /retrieve, GET /health)\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void server
            .close()
            .then(() => retriever.close())
            .then(resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
};
