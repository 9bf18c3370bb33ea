/**
 * Every key of protocol-strings.json, asserted byte for byte against what the protocol objects produce or use.
 * The expected values come straight from the JSON file read from disk (not through the module under test).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  bgeQueryText,
  buildSummaryPrompt,
  joinIdxPrompt,
  onlineSearchQuery,
  PROMPT_SPLIT_MARKERS,
  PROTOCOLS,
  renderChat,
  renderOnlineDocumentBlock,
  RETRIEVE_MASK_TOKEN_IDS,
  splitIdxPrompt,
  splitPromptResponse,
} from "./index.js";
import { buildJudgePrompt, LLM_JUDGE_PROMPT } from "../metrics/index.js";
import type { Passage } from "../util/types.js";

const FILE = JSON.parse(readFileSync(new URL("./protocol-strings.json", import.meta.url), "utf8")) as Record<
  string,
  unknown
>;
const byId = new Map(Object.entries(FILE).map(([k, v]) => [k.split(" ")[0], v]));
const S = (id: string) => byId.get(id) as string;
const r1 = PROTOCOLS["r1-searcher"];
const Q = "{question}";
const REAL_Q = "Who wrote Hamlet?";

const checks: Record<string, () => void> = {
  TRAIN_PROMPT_BASE_QWEN() {
    expect(r1.buildPrompt(Q, { variant: "train-base" })).toBe(S("TRAIN_PROMPT_BASE_QWEN"));
    expect(r1.buildPrompt(REAL_Q)).toBe(S("TRAIN_PROMPT_BASE_QWEN").replace("{question}", REAL_Q));
  },
  TRAIN_SYSTEM_PROMPT_CHAT_LLAMA() {
    const rendered = r1.buildPrompt(Q, { variant: "train-chat" });
    const sys = S("TRAIN_SYSTEM_PROMPT_CHAT_LLAMA");
    expect(rendered).toContain(`Today Date: 26 Jul 2024\n\n${sys}<|eot_id|>`);
    expect(
      renderChat(
        [
          { role: "system", content: sys },
          { role: "user", content: Q },
        ],
        "qwen2.5",
      ) + "<think>",
    ).toBe(r1.buildPrompt(Q, { variant: "train-chat", chatTemplate: "qwen2.5" }));
  },
  TRAIN_PROMPT_CHAT_LLAMA_RENDERED() {
    expect(r1.buildPrompt(Q, { variant: "train-chat" })).toBe(S("TRAIN_PROMPT_CHAT_LLAMA_RENDERED"));
    expect(r1.buildPrompt(REAL_Q, { variant: "train-chat" })).toBe(
      S("TRAIN_PROMPT_CHAT_LLAMA_RENDERED").replace("{question}", REAL_Q),
    );
  },
  IDX_PROMPT_SEPARATOR() {
    const sep = S("IDX_PROMPT_SEPARATOR");
    expect(joinIdxPrompt(17, "P")).toBe(`17${sep}P`);
    expect(splitIdxPrompt(`17${sep}P`)).toEqual({ idx: "17", prompt: "P", hasIdx: true });
  },
  EVAL_LOCAL_v0: () => expect(r1.buildPrompt(Q, { variant: "eval-v0" })).toBe(S("EVAL_LOCAL_v0")),
  EVAL_LOCAL_v1: () => expect(r1.buildPrompt(Q, { variant: "eval-v1" })).toBe(S("EVAL_LOCAL_v1")),
  EVAL_LOCAL_v2: () => expect(r1.buildPrompt(Q, { variant: "eval-v2" })).toBe(S("EVAL_LOCAL_v2")),
  EVAL_LOCAL_v3: () => expect(r1.buildPrompt(Q, { variant: "eval-v3" })).toBe(S("EVAL_LOCAL_v3")),
  EVAL_ONLINE_SYSTEM_v0: () =>
    expect(r1.buildPrompt(Q, { variant: "online-v0" })).toBe(
      S("QWEN25_CHAT_RENDER_EXAMPLE").replace("{system}", S("EVAL_ONLINE_SYSTEM_v0")),
    ),
  EVAL_ONLINE_SYSTEM_v2: () =>
    expect(r1.buildPrompt(Q, { variant: "online-v2" })).toBe(
      S("QWEN25_CHAT_RENDER_EXAMPLE").replace("{system}", S("EVAL_ONLINE_SYSTEM_v2")),
    ),
  EVAL_ONLINE_SYSTEM_v3: () =>
    expect(r1.buildPrompt(Q, { variant: "online-v3" })).toBe(
      S("QWEN25_CHAT_RENDER_EXAMPLE").replace("{system}", S("EVAL_ONLINE_SYSTEM_v3")),
    ),
  EVAL_ONLINE_SUMMARY_PROMPT() {
    const t = S("EVAL_ONLINE_SUMMARY_PROMPT");
    expect(buildSummaryPrompt("{search_query}", "{document}")).toBe(t);
    expect(buildSummaryPrompt("q $& x", "page")).toBe(
      t.split("{search_query}").join("q $& x").split("{document}").join("page"),
    );
  },
  LLM_JUDGE_PROMPT() {
    expect(LLM_JUDGE_PROMPT).toBe(S("LLM_JUDGE_PROMPT"));
    expect(buildJudgePrompt({ question: "{question}", reference: "{reference}", prediction: "{prediction}" })).toBe(
      S("LLM_JUDGE_PROMPT"),
    );
  },
  QWEN25_CHAT_RENDER_EXAMPLE: () =>
    expect(
      renderChat(
        [
          { role: "system", content: "{system}" },
          { role: "user", content: "{question}" },
        ],
        "qwen2.5",
      ) + "<think>",
    ).toBe(S("QWEN25_CHAT_RENDER_EXAMPLE")),
  TOKENS() {
    const t = byId.get("TOKENS") as Record<string, string>;
    expect(r1.queryOpen).toBe(t.BEGIN_QUERY);
    expect(r1.queryClose).toBe(t.END_QUERY);
    expect(r1.answerOpen).toBe(t.ANSWER_OPEN);
    expect(r1.answerClose).toBe(t.ANSWER_CLOSE);
    expect(PROTOCOLS["r1-searcher"].documentsOpen).toBe(t.BEGIN_DOCS);
    expect(PROTOCOLS["r1-searcher"].documentsClose).toBe(t.END_DOCS);
    expect(r1.buildPrompt(Q).endsWith(t.THINK_OPEN)).toBe(true);
    const parsed = r1.parse(`a${t.THINK_CLOSE}b`);
    expect(parsed.segments.map((s) => s.text)).toEqual(["a", "b"]);
  },
  DOC_BLOCK_LOCAL_AND_TRAIN() {
    const passages: Passage[] = [{ id: "1", title: "T", text: "x" }];
    expect(r1.renderDocumentBlock(passages)).toBe(
      S("DOC_BLOCK_LOCAL_AND_TRAIN").replace("{doc_content}", "(1)T   x\n"),
    );
  },
  DOC_ITEM_LOCAL_AND_TRAIN() {
    const passages: Passage[] = [
      { id: "7", title: "", text: "", raw: "7\tAlpha   one" },
      { id: "8", title: "", text: "", raw: "8\tBeta   two" },
    ];
    const item = S("DOC_ITEM_LOCAL_AND_TRAIN");
    const content =
      item.replace("{j}", "1").replace("{doc_without_leading_idx}", "Alpha   one") +
      item.replace("{j}", "2").replace("{doc_without_leading_idx}", "Beta   two");
    expect(r1.renderDocumentBlock(passages)).toBe(S("DOC_BLOCK_LOCAL_AND_TRAIN").replace("{doc_content}", content));
  },
  DOC_EMPTY_LOCAL_AND_TRAIN: () =>
    expect(r1.renderDocumentBlock([])).toBe(
      S("DOC_BLOCK_LOCAL_AND_TRAIN").replace("{doc_content}", S("DOC_EMPTY_LOCAL_AND_TRAIN")),
    ),
  DOC_BLOCK_ONLINE() {
    expect(renderOnlineDocumentBlock("Summary.")).toBe(S("DOC_BLOCK_ONLINE").replace("{summary}", "Summary."));
  },
  STOP_STRINGS_EVAL: () => expect(r1.stopStrings("eval")).toEqual(byId.get("STOP_STRINGS_EVAL")),
  STOP_STRINGS_TRAIN: () => expect(r1.stopStrings("train")).toEqual(byId.get("STOP_STRINGS_TRAIN")),
  RETRIEVE_MASK_TOKEN_IDS() {
    const v = byId.get("RETRIEVE_MASK_TOKEN_IDS") as Record<string, { start: number[]; end: number[] }>;
    expect(RETRIEVE_MASK_TOKEN_IDS["qwen2.5"]).toEqual(v["qwen2.5"]);
    expect(RETRIEVE_MASK_TOKEN_IDS["llama3.1"]).toEqual(v["llama3.1 (prompt_ids[0]==128000)"]);
  },
  BGE_QUERY_INSTRUCTION: () =>
    expect(bgeQueryText("who founded citibank")).toBe(S("BGE_QUERY_INSTRUCTION") + "who founded citibank"),
  ONLINE_SITE_SUFFIX: () => expect(onlineSearchQuery("q")).toBe("q" + S("ONLINE_SITE_SUFFIX")),
  REWARD_SPLIT_QWEN() {
    expect(PROMPT_SPLIT_MARKERS["qwen-base"]).toEqual(byId.get("REWARD_SPLIT_QWEN"));
    const full = r1.buildPrompt(REAL_Q) + " x</think>\n\n<answer>y</answer><|endoftext|>";
    expect(splitPromptResponse(full, "qwen-base")).toEqual({
      question: REAL_Q,
      solution: "x</think>\n\n<answer>y</answer><|endoftext|>",
    });
  },
  REWARD_SPLIT_LLAMA() {
    expect(PROMPT_SPLIT_MARKERS["llama3.1-chat"]).toEqual(byId.get("REWARD_SPLIT_LLAMA"));
    const full = r1.buildPrompt(REAL_Q, { variant: "train-chat" }) + " x</think>\n\n<answer>y</answer><|eot_id|>";
    expect(splitPromptResponse(full, "llama3.1-chat")).toEqual({
      question: REAL_Q,
      solution: "x</think>\n\n<answer>y</answer><|eot_id|>",
    });
  },
};

describe("protocol-strings.json", () => {
  it("the repo copy is the reference file (ids unique)", () => {
    expect(byId.size).toBe(Object.keys(FILE).length);
  });
  for (const id of byId.keys()) {
    it(`${id} matches what the code produces`, () => {
      const check = checks[id];
      expect(check, `no byte-for-byte check for ${id}`).toBeTypeOf("function");
      check();
    });
  }
});
