/**
 * `searchrl eval`: evaluate a model with search on a bundled evaluation set (hotpotqa, 2wiki, musique, bamboogle) or a
 * JSONL file, greedy as upstream, writing results.jsonl in the upstream record format (+ our fields) and a
 * results.summary.json; resumable; prints EM / Cover-EM / F1 / judge / mean retrieval count.
 */
import { z } from "zod";
import { resolveEvalDataset, loadEvalItems, evaluate, type EvalMode } from "../../eval/index.js";
import { isChatBackend } from "../../llm/chat/types.js";
import { createBackend } from "../../llm/index.js";
import { formatUpstreamMetrics, pyRound1 } from "../../metrics/index.js";
import { createR1SearcherProtocol, getProtocol } from "../../protocol/index.js";
import type { ChatTemplateName, ResponseProtocol } from "../../protocol/types.js";
import { openRetriever } from "../../retrieval/index.js";
import type { Retriever } from "../../retrieval/types.js";
import type { RegisterCommands } from "../groups.js";

const int = (name: string, min: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int(`${name} must be an integer`)
    .min(min, `${name} must be >= ${min}`);
const num = (name: string) => z.coerce.number({ error: `${name} must be a number` });

const OptionsSchema = z.object({
  dataset: z.string().min(1, "--dataset is required"),
  llm: z.string().min(1, "--llm is required"),
  chatMode: z.enum(["protocol", "tool"], { error: "--chat-mode must be protocol or tool" }).optional(),
  llmBaseUrl: z.string().url("--llm-base-url must be a URL").optional(),
  model: z.string().optional(),
  tokenizer: z.string().optional(),
  retriever: z.string().optional(),
  protocol: z.string().default("r1-searcher"),
  prompt: z.string().optional(),
  template: z.string().optional(),
  chatTemplate: z
    .enum(["none", "qwen2.5", "llama3.1"], { error: "--chat-template must be none, qwen2.5 or llama3.1" })
    .optional(),
  mode: z
    .enum(["search", "no-retrieval", "naive-rag"], { error: "--mode must be search, no-retrieval or naive-rag" })
    .default("search"),
  judge: z.string().optional(),
  judgeModel: z.string().optional(),
  out: z.string().min(1, "--out is required"),
  limit: int("--limit", 1).optional(),
  concurrency: int("--concurrency", 1).optional(),
  temperature: num("--temperature").min(0, "--temperature must be >= 0").optional(),
  topP: num("--top-p").gt(0, "--top-p must be > 0").max(1, "--top-p must be <= 1").optional(),
  maxTokens: int("--max-tokens", 1).optional(),
  maxSearches: int("--max-searches", 0).optional(),
  topK: int("--top-k", 1).optional(),
  seed: int("--seed", 0).optional(),
  resume: z.boolean().default(true),
  summarizer: z.string().optional(),
  summarizerModel: z.string().optional(),
  webPipeline: z
    .enum(["paper", "snippets", "pages"], { error: "--web-pipeline must be paper, snippets or pages" })
    .optional(),
  cacheDir: z.string().default(".searchrl-cache/web"),
  json: z.boolean().optional(),
  quiet: z.boolean().optional(),
});

type Options = z.infer<typeof OptionsSchema>;

/** `r1-searcher-v0` … `r1-searcher-v3` are shorthands for r1-searcher with the local evaluation prompt vN. */
function resolveProtocol(o: Options, web: boolean): { protocol: ResponseProtocol; variant: string | undefined } {
  const short = /^r1-searcher-(v[0-3])$/.exec(o.protocol);
  const name = short ? "r1-searcher" : o.protocol;
  if (name === "r1-searcher") {
    const online = web && (o.webPipeline ?? (o.summarizer ? "paper" : "snippets")) === "paper";
    const protocol = online ? createR1SearcherProtocol({ documentStyle: "online" }) : getProtocol("r1-searcher");
    const variant = o.prompt ?? (short ? `eval-${short[1]}` : online ? "online-v0" : "eval-v0");
    return { protocol, variant };
  }
  return { protocol: getProtocol(name), variant: o.prompt };
}

function pct(x: number): string {
  return pyRound1(100 * x);
}

export const register: RegisterCommands = (program) => {
  program
    .command("eval")
    .description("evaluate a model that searches while it reasons (greedy, upstream R1-Searcher evaluation rules)")
    .requiredOption(
      "--dataset <name|file>",
      "hotpotqa | 2wiki | musique | bamboogle | a JSONL file ({idx, question, answer} or FlashRAG {id, question, golden_answers})",
    )
    .requiredOption(
      "--llm <spec>",
      "http(s)://host:port (OpenAI-compatible /v1/completions) | model.gguf | built-in checkpoint directory | a chat model: openai:MODEL, anthropic:MODEL, google:MODEL, ollama:MODEL, openai-compatible:URL#MODEL",
    )
    .option(
      "--chat-mode <mode>",
      "chat models: protocol (the protocol's tags, documents as messages; default) | tool (a search tool)",
    )
    .option("--llm-base-url <url>", "chat models: the provider's API base URL (default: its *_BASE_URL variable)")
    .option("--model <name>", "model name sent to an HTTP server")
    .option(
      "--tokenizer <path>",
      "tokenizer.json (or its folder) of the served model, to keep exact token ids over HTTP",
    )
    .option(
      "--retriever <spec>",
      "index directory | http(s)://host:port/queries or /retrieve | web:serper|brave|tavily|searxng",
    )
    .option("--protocol <name>", "r1-searcher | r1-searcher-v0..v3 | r1-searcher-plus | search-r1", "r1-searcher")
    .option(
      "--prompt <variant>",
      "prompt variant of the protocol (r1-searcher: eval-v0..v3, online-v0/v2/v3, train-base, train-chat)",
    )
    .option(
      "--template <text>",
      "whole prompt template with {question} (replaces the protocol's prompt; baselines: also {documents}, {answer_open}, {answer_close})",
    )
    .option("--chat-template <name>", "chat template for chat prompt variants: none | qwen2.5 | llama3.1")
    .option(
      "--mode <mode>",
      "search | no-retrieval (answer directly) | naive-rag (retrieve once with the question)",
      "search",
    )
    .option(
      "--judge <url>",
      "OpenAI-compatible chat endpoint of an LLM judge (ACC_L); key from SEARCHRL_JUDGE_API_KEY or OPENAI_API_KEY",
    )
    .option("--judge-model <name>", "judge model (default gpt-4o-mini)")
    .requiredOption("--out <file>", "results JSONL (appended; finished questions are skipped on a rerun)")
    .option("--limit <n>", "first N questions of the dataset")
    .option("--concurrency <n>", "questions in flight")
    .option("--temperature <t>", "sampling temperature (default 0 = greedy, as upstream)")
    .option("--top-p <p>", "nucleus sampling (default 0.95, as upstream)")
    .option("--max-tokens <n>", "max new tokens per generation segment (default 512)")
    .option("--max-searches <n>", "retrieval limit (default 9 locally, 8 with web search, as upstream)")
    .option("--top-k <n>", "passages per query (default 5)")
    .option("--seed <n>", "sampling seed")
    .option("--no-resume", "start over instead of skipping questions already in --out")
    .option(
      "--summarizer <url>",
      "web search: OpenAI-compatible chat endpoint that summarizes pages (the paper's setup)",
    )
    .option("--summarizer-model <name>", "web search: summarizer model (default gpt-4o-mini)")
    .option(
      "--web-pipeline <p>",
      "web search: paper | snippets | pages (default paper with --summarizer, else snippets)",
    )
    .option("--cache-dir <dir>", "web search: cache directory (repeated runs make no paid call)", ".searchrl-cache/web")
    .option("--json", "print the summary as JSON")
    .option("--quiet", "no progress line")
    .action(async (rawOpts: Record<string, unknown>) => {
      const parsed = OptionsSchema.safeParse(rawOpts);
      if (!parsed.success) throw new Error(`eval: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
      const o = parsed.data;
      const mode = o.mode as EvalMode;
      const web = o.retriever?.startsWith("web:") ?? false;
      if (mode !== "no-retrieval" && !o.retriever) throw new Error(`eval: --retriever is required in mode "${mode}"`);
      const { protocol, variant } = resolveProtocol(o, web);
      const ds = resolveEvalDataset(o.dataset);
      const { items, warnings: dsWarnings } = await loadEvalItems(ds.file, o.limit ?? Infinity);
      for (const w of dsWarnings.slice(0, 3)) process.stderr.write(`warning: ${w}\n`);

      const backendWarnings: string[] = [];
      const backend = await createBackend(o.llm, {
        model: o.model,
        tokenizer: o.tokenizer,
        onWarning: (w) => backendWarnings.push(w),
        chat: {
          ...(o.chatMode ? { searchMode: o.chatMode } : {}),
          ...(o.llmBaseUrl ? { baseUrl: o.llmBaseUrl } : {}),
        },
      });
      if (o.chatMode && !isChatBackend(backend))
        throw new Error("eval: --chat-mode applies to chat models only (--llm openai:MODEL, ...)");
      // A chat backend reports the AI SDK's warnings itself (the warning: lines); no second copy on the console.
      if (isChatBackend(backend)) (globalThis as { AI_SDK_LOG_WARNINGS?: unknown }).AI_SDK_LOG_WARNINGS = false;
      let retriever: Retriever | undefined;
      try {
        if (o.retriever && mode !== "no-retrieval") {
          retriever = await openRetriever(o.retriever, {
            web: {
              cacheDir: o.cacheDir,
              ...(o.webPipeline ? { pipeline: o.webPipeline } : {}),
              ...(o.summarizer
                ? { summarizer: { baseUrl: o.summarizer, ...(o.summarizerModel ? { model: o.summarizerModel } : {}) } }
                : {}),
            },
          });
        }
        const judgeKey = process.env.SEARCHRL_JUDGE_API_KEY ?? process.env.OPENAI_API_KEY;
        const result = await evaluate({
          backend,
          protocol,
          retriever,
          items,
          dataset: ds.name,
          mode,
          promptOptions: {
            variant,
            ...(o.chatTemplate ? { chatTemplate: o.chatTemplate as ChatTemplateName } : {}),
            ...(o.template !== undefined && mode === "search" ? { template: o.template } : {}),
          },
          ...(o.template !== undefined && mode !== "search" ? { baselinePrompt: o.template } : {}),
          sampling: {
            ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
            ...(o.topP !== undefined ? { topP: o.topP } : {}),
            ...(o.seed !== undefined ? { seed: o.seed } : {}),
          },
          limits: {
            ...(o.maxTokens !== undefined ? { segmentMaxTokens: o.maxTokens } : {}),
            ...(o.maxSearches !== undefined ? { maxSearches: o.maxSearches } : web ? { maxSearches: 8 } : {}),
            ...(o.topK !== undefined ? { topK: o.topK } : {}),
          },
          concurrency: o.concurrency,
          judge: o.judge
            ? {
                baseUrl: o.judge,
                ...(o.judgeModel ? { model: o.judgeModel } : {}),
                ...(judgeKey ? { apiKey: judgeKey } : {}),
              }
            : undefined,
          outFile: o.out,
          resume: o.resume,
          progress: !o.quiet,
        });
        for (const w of backendWarnings) process.stderr.write(`warning: ${w}\n`);
        for (const w of result.warnings.slice(-5)) process.stderr.write(`warning: ${w}\n`);
        const s = result.summary;
        const chatMode =
          result.records.find((r) => r.chat_mode)?.chat_mode ??
          (isChatBackend(backend) ? (mode === "search" ? backend.searchMode : "protocol") : undefined);
        const chatUsage = {
          input_tokens: result.records.reduce((a, r) => a + r.prompt_tokens, 0),
          output_tokens: result.records.reduce((a, r) => a + r.response_tokens, 0),
        };
        const costs = result.records.map((r) => r.cost_usd).filter((c): c is number => typeof c === "number");
        const cost = costs.length > 0 ? costs.reduce((a, b) => a + b, 0) : null;
        let usage: unknown = null;
        if (retriever) {
          const info = await retriever.info();
          usage = info.usage ?? null;
        }
        if (o.json) {
          process.stdout.write(
            JSON.stringify({
              file: o.out,
              dataset: ds.name,
              mode,
              count: s.count,
              em: s.em,
              cem: s.cem,
              f1: s.f1,
              precision: s.precision,
              recall: s.recall,
              judge: s.judge,
              retrievals_mean: s.retrievalsMean,
              ran: s.ran,
              resumed: s.resumed,
              failed: s.failed,
              run_kind: chatMode ? `chat ${chatMode} mode` : "token-exact",
              ...(chatMode ? { chat_mode: chatMode, llm_usage: chatUsage, cost_usd: cost } : {}),
              ...(usage ? { web_usage: usage } : {}),
            }) + "\n",
          );
        } else {
          const lines = [
            `${o.out}  (${ds.name}, ${mode}, ${protocol.name}${o.template !== undefined ? " (own --template)" : variant ? ` ${variant}` : ""}; ran ${s.ran}, resumed ${s.resumed}, failed ${s.failed})`,
            `  records    ${String(s.count).padStart(6)}`,
            `  EM         ${pct(s.em).padStart(6)}`,
            `  Cover-EM   ${pct(s.cem).padStart(6)}   (ACC_R)`,
            `  F1         ${pct(s.f1).padStart(6)}`,
          ];
          if (s.judge !== null) lines.push(`  judge      ${pct(s.judge).padStart(6)}   (ACC_L; ${s.judged} verdicts)`);
          lines.push(`  retrievals ${s.retrievalsMean.toFixed(2).padStart(6)}   (mean per question)`);
          lines.push(`  upstream   ${formatUpstreamMetrics(s)}`);
          if (chatMode)
            lines.push(
              `  llm        ${backend.name}: chat ${chatMode} mode, no token ids; this run ${chatUsage.input_tokens} input + ${chatUsage.output_tokens} output tokens${cost !== null ? `, $${cost.toFixed(4)}` : ""}`,
            );
          if (usage) lines.push(`  web usage  ${JSON.stringify(usage)}`);
          process.stdout.write(lines.join("\n") + "\n");
        }
        if (s.failed > 0) {
          // Loud failure: the records of these questions are missing from the file (a rerun retries only them).
          throw new Error(
            `eval: ${s.failed} of ${s.ran} question(s) failed and were not written to ${o.out}; run the same command again to retry them`,
          );
        }
      } finally {
        await retriever?.close();
        await backend.close();
      }
    });
};
