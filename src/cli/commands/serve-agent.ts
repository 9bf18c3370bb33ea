/**
 * `searchrl serve agent`: the trained search agent behind an OpenAI-compatible API with its reasoning trace, plus the
 * web UI (docs/api.md, docs/ui.md).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { isChatBackend } from "../../llm/chat/types.js";
import { createBackend } from "../../llm/index.js";
import { getProtocol, PROTOCOL_NAMES } from "../../protocol/index.js";
import type { ChatTemplateName } from "../../protocol/types.js";
import { openRetriever } from "../../retrieval/index.js";
import { DEFAULT_AGENT_LIMITS, DEFAULT_AGENT_QUEUE_SIZE, startAgentServer } from "../../server/agent.js";
import { createRolloutAgent } from "../../server/agent-rollout.js";
import type { RegisterCommands } from "../groups.js";
import { waitForShutdown } from "./ui.js";

const int = (min: number) => z.coerce.number().int().min(min);

const ServeAgentOptions = z.object({
  llm: z.string().min(1),
  chatMode: z.enum(["protocol", "tool"]).optional(),
  llmBaseUrl: z.string().url().optional(),
  retriever: z.string().min(1),
  protocol: z.string().refine((p) => (PROTOCOL_NAMES as readonly string[]).includes(p), {
    message: `must be one of ${PROTOCOL_NAMES.join(", ")}`,
  }),
  port: int(0).max(65535),
  host: z.string().min(1),
  token: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  modelId: z.string().min(1).optional(),
  tokenizer: z.string().min(1).optional(),
  concurrency: int(1).max(1024).optional(),
  queue: int(0).max(100_000),
  maxSearches: int(0).max(64),
  maxTokens: int(1),
  timeout: z.coerce.number().positive(),
  topK: int(1).max(50),
  segmentTokens: int(1).optional(),
  temperature: z.coerce.number().min(0).max(2).optional(),
  promptVariant: z.string().min(1).optional(),
  template: z.string().min(1).optional(),
  chatTemplate: z.enum(["none", "qwen2.5", "llama3.1"]).optional(),
  runs: z.string().min(1).optional(),
  cors: z.string().min(1).optional(),
  log: z.boolean().optional(),
});

function parse(raw: Record<string, unknown>): z.infer<typeof ServeAgentOptions> {
  const r = ServeAgentOptions.safeParse(raw);
  if (!r.success) {
    const flag = (k: string) => "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
    throw new Error(r.error.issues.map((i) => `${flag(String(i.path[0] ?? "?"))}: ${i.message}`).join("; "));
  }
  return r.data;
}

export const register: RegisterCommands = (_program, groups) => {
  groups.serve
    .command("agent")
    .description(
      "serve a search agent: OpenAI-compatible /v1/chat/completions with the reasoning trace, and the web UI",
    )
    .requiredOption(
      "--llm <spec>",
      "LLM: an OpenAI-compatible URL (http://host:port/v1#model), a .gguf file, a built-in checkpoint folder, or a chat model (openai:MODEL, anthropic:MODEL, google:MODEL, ollama:MODEL, openai-compatible:URL#MODEL)",
    )
    .option("--chat-mode <mode>", "chat models: protocol (tags; default) | tool (a search tool)")
    .option("--llm-base-url <url>", "chat models: the provider's API base URL (default: its *_BASE_URL variable)")
    .requiredOption("--retriever <spec>", "retriever: a retrieval server URL, an index folder, or web:PROVIDER")
    .requiredOption("--protocol <name>", `response protocol (${PROTOCOL_NAMES.join(", ")})`)
    .option("--port <n>", "port (0 = any free port)", "8000")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--token <secret>", "require 'Authorization: Bearer <secret>' (or set SEARCHRL_TOKEN)")
    .option("--model <name>", "model name sent to an OpenAI-compatible --llm server")
    .option("--model-id <name>", "model id this server reports (default: the backend's name)")
    .option("--tokenizer <path>", "tokenizer.json (or its folder) of the --llm model, for exact token ids over HTTP")
    .option("--concurrency <n>", "requests answered at once (default: what the backend can batch)")
    .option(
      "--queue <n>",
      "requests allowed to wait for a slot; more get 429 with Retry-After",
      String(DEFAULT_AGENT_QUEUE_SIZE),
    )
    .option(
      "--max-searches <n>",
      "default and maximum retrievals per request",
      String(DEFAULT_AGENT_LIMITS.maxSearches),
    )
    .option(
      "--max-tokens <n>",
      "default and maximum response tokens per request (generated + inserted documents)",
      String(DEFAULT_AGENT_LIMITS.maxTokens),
    )
    .option(
      "--timeout <seconds>",
      "default and maximum time per request",
      String(DEFAULT_AGENT_LIMITS.timeoutMs / 1000),
    )
    .option("--top-k <n>", "documents per query", String(DEFAULT_AGENT_LIMITS.topK))
    .option("--segment-tokens <n>", "most tokens generated between two retrievals (upstream 512)")
    .option("--temperature <t>", "default sampling temperature (default 0: greedy, as upstream evaluation)")
    .option("--prompt-variant <name>", "prompt variant of the protocol (e.g. eval-v0, train-chat)")
    .option("--chat-template <name>", "chat template for chat prompt variants (none, qwen2.5, llama3.1)")
    .option(
      "--template <text>",
      "whole prompt template with {question} (replaces the protocol's prompt; e.g. the quickstart's prompt from OUT/data/prompts.json)",
    )
    .option("--runs <dir>", "also show these training runs and results in the UI")
    .option("--cors <origins>", "comma-separated origins allowed to call the API from browsers ('*' for any)")
    .option("--log", "log requests to stderr")
    .action(async (raw: Record<string, unknown>) => {
      const o = parse({ ...raw, token: raw.token ?? process.env.SEARCHRL_TOKEN });
      if (o.runs) {
        const dir = path.resolve(o.runs);
        if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--runs: ${dir} is not a folder`);
      }
      if (o.template !== undefined && !o.template.includes("{question}"))
        throw new Error("--template must contain {question} (where the user's question goes)");
      const protocol = getProtocol(o.protocol);
      if (o.promptVariant && !protocol.promptVariants.includes(o.promptVariant)) {
        throw new Error(
          `--prompt-variant: "${o.promptVariant}" is not a variant of ${o.protocol} (${protocol.promptVariants.join(", ")})`,
        );
      }
      const loopback = ["127.0.0.1", "localhost", "::1"].includes(o.host);
      if (!loopback && !o.token)
        process.stderr.write(
          `warning: listening on ${o.host} without --token: anyone who can reach it can use the agent\n`,
        );

      const backend = await createBackend(o.llm, {
        ...(o.model ? { model: o.model } : {}),
        ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
        onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
        chat: {
          ...(o.chatMode ? { searchMode: o.chatMode } : {}),
          ...(o.llmBaseUrl ? { baseUrl: o.llmBaseUrl } : {}),
        },
      });
      // A chat backend reports the AI SDK's warnings itself (the warning: lines); no second copy on the console.
      if (isChatBackend(backend)) (globalThis as { AI_SDK_LOG_WARNINGS?: unknown }).AI_SDK_LOG_WARNINGS = false;
      else if (o.chatMode) {
        await backend.close();
        throw new Error("--chat-mode applies to chat models only (--llm openai:MODEL, ...)");
      }
      let retriever;
      try {
        retriever = await openRetriever(o.retriever);
      } catch (err) {
        await backend.close();
        throw err;
      }
      const agent = createRolloutAgent({
        backend,
        retriever,
        protocol,
        ...(o.modelId ? { modelId: o.modelId } : {}),
        ...(o.promptVariant || o.chatTemplate || o.template
          ? {
              promptOptions: {
                ...(o.promptVariant ? { variant: o.promptVariant } : {}),
                ...(o.chatTemplate ? { chatTemplate: o.chatTemplate as ChatTemplateName } : {}),
                ...(o.template ? { template: o.template } : {}),
              },
            }
          : {}),
        ...(o.temperature !== undefined ? { sampling: { temperature: o.temperature } } : {}),
        ...(o.segmentTokens !== undefined ? { limits: { segmentMaxTokens: o.segmentTokens } } : {}),
      });
      const concurrency = o.concurrency ?? (backend.generateBatch ? 8 : Math.max(1, backend.maxConcurrency ?? 1));
      let srv;
      try {
        srv = await startAgentServer({
          agent,
          runsDir: o.runs ? path.resolve(o.runs) : null,
          token: o.token ?? null,
          concurrency,
          queueSize: o.queue,
          limits: {
            maxSearches: o.maxSearches,
            maxTokens: o.maxTokens,
            timeoutMs: Math.round(o.timeout * 1000),
            topK: o.topK,
          },
          corsOrigins: o.cors
            ? o.cors
                .split(",")
                .map((s) => s.trim())
                .filter(Boolean)
            : [],
          logger: o.log ?? false,
          host: o.host,
          port: o.port,
        });
      } catch (err) {
        await agent.close();
        throw err;
      }
      process.stdout.write(
        `searchrl agent: ${srv.url}/v1/chat/completions  (model ${agent.modelId}, protocol ${protocol.name}, retriever ${retriever.name}, ` +
          `${concurrency} at once, queue ${o.queue})\nweb UI: ${srv.url}/\n`,
      );
      await waitForShutdown(async () => {
        await srv.close();
        await agent.close();
      });
    });
};
