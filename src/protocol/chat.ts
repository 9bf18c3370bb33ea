/**
 * Chat templates rendered as text, exactly as the stock Hugging Face templates render them (no tools):
 * Qwen2.5 (`<|im_start|>role\ncontent<|im_end|>\n`) and Llama-3.1-Instruct (header ids, `<|eot_id|>`, the
 * "Cutting Knowledge Date" system preamble, contents trimmed with Python `str.strip`).
 * Also the prompt/response split markers that the upstream reward servers use.
 */
import { afterLast, beforeFirst, pyStrip } from "../util/pystr.js";
import type { ChatTemplateName } from "./types.js";
import { R1_STRINGS } from "./strings.js";

export interface ChatTemplateMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface RenderChatOptions {
  /** Append the assistant header so the model continues as the assistant (default true). */
  addGenerationPrompt?: boolean;
  /** Llama-3.1 only: the "Today Date" line (the stock template's default is "26 Jul 2024"). */
  dateString?: string;
}

/** System message the Qwen2.5 template inserts when the conversation has none. */
export const QWEN25_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
/** Default `date_string` of the Llama-3.1 template. */
export const LLAMA31_DEFAULT_DATE = "26 Jul 2024";

/** Special strings of the supported chat templates (neutralized in retrieved text, see docs/protocol.md). */
export const CHAT_CONTROL_STRINGS: readonly string[] = Object.freeze([
  "<|im_start|>",
  "<|im_end|>",
  "<|endoftext|>",
  "<|begin_of_text|>",
  "<|end_of_text|>",
  "<|start_header_id|>",
  "<|end_header_id|>",
  "<|eot_id|>",
  "<|eom_id|>",
]);

function renderQwen25(messages: ChatTemplateMessage[], addGen: boolean): string {
  let out = "";
  let rest = messages;
  if (messages.length > 0 && messages[0].role === "system") {
    out += `<|im_start|>system\n${messages[0].content}<|im_end|>\n`;
    rest = messages.slice(1);
  } else {
    out += `<|im_start|>system\n${QWEN25_DEFAULT_SYSTEM}<|im_end|>\n`;
  }
  for (const m of rest) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
  if (addGen) out += "<|im_start|>assistant\n";
  return out;
}

function renderLlama31(messages: ChatTemplateMessage[], addGen: boolean, date: string): string {
  let system = "";
  let rest = messages;
  if (messages.length > 0 && messages[0].role === "system") {
    system = pyStrip(messages[0].content);
    rest = messages.slice(1);
  }
  let out = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n";
  out += `Cutting Knowledge Date: December 2023\nToday Date: ${date}\n\n`;
  out += `${system}<|eot_id|>`;
  for (const m of rest) out += `<|start_header_id|>${m.role}<|end_header_id|>\n\n${pyStrip(m.content)}<|eot_id|>`;
  if (addGen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

/**
 * Plain rendering used when no chat template is wanted: the R1-Searcher base-prompt layout
 * (`system + "\n\nUser:" + user + "\nAssistant: "`), so the upstream Qwen reward split still finds the question.
 */
function renderPlain(messages: ChatTemplateMessage[], addGen: boolean): string {
  let out = "";
  for (const m of messages) {
    if (m.role === "system") out += m.content;
    else if (m.role === "user") out += `\n\nUser:${m.content}`;
    else out += `\nAssistant: ${m.content}`;
  }
  if (addGen) out += "\nAssistant: ";
  return out;
}

/** Render a conversation with a chat template (text, not token ids). */
export function renderChat(
  messages: ChatTemplateMessage[],
  template: ChatTemplateName,
  opts: RenderChatOptions = {},
): string {
  const addGen = opts.addGenerationPrompt ?? true;
  switch (template) {
    case "qwen2.5":
      return renderQwen25(messages, addGen);
    case "llama3.1":
      return renderLlama31(messages, addGen, opts.dateString ?? LLAMA31_DEFAULT_DATE);
    case "none":
      return renderPlain(messages, addGen);
    default:
      throw new Error(`unknown chat template: ${String(template)} (expected qwen2.5, llama3.1 or none)`);
  }
}

/** How the upstream reward servers cut a full decoded sequence into question and solution. */
export type PromptSplitStyle = "qwen-base" | "llama3.1-chat" | "qwen2.5-chat";

export const PROMPT_SPLIT_MARKERS: Readonly<Record<PromptSplitStyle, { user: string; assistant: string }>> =
  Object.freeze({
    "qwen-base": R1_STRINGS.REWARD_SPLIT_QWEN,
    "llama3.1-chat": R1_STRINGS.REWARD_SPLIT_LLAMA,
    // Same construction for a Qwen2.5 chat prompt ending in "<think>" (R1-Searcher++ / online prompts).
    "qwen2.5-chat": { user: "<|im_start|>user\n", assistant: "<|im_end|>\n<|im_start|>assistant\n<think>" },
  });

/**
 * Split a full decoded sequence (prompt + response) into question and solution exactly as the upstream reward servers
 * do (r1-searcher.md §3.2):
 * - `qwen-base`: question = the pieces after each `"\n\nUser:"` joined with one space, cut before the first
 *   `"\nAssistant: <think>"`, stripped; solution = stripped text after the last `"\nAssistant: <think>"`.
 * - `llama3.1-chat` / `qwen2.5-chat`: question = stripped text between the last user header and the next assistant
 *   marker; solution = stripped text after the last assistant marker.
 * Python `split` semantics: a missing marker leaves the whole text.
 */
export function splitPromptResponse(text: string, style: PromptSplitStyle): { question: string; solution: string } {
  const m = PROMPT_SPLIT_MARKERS[style];
  if (!m) throw new Error(`unknown prompt split style: ${style}`);
  let question: string;
  if (style === "qwen-base") {
    const pieces = text.split(m.user).slice(1).join(" ");
    question = pyStrip(beforeFirst(pieces, m.assistant));
  } else {
    question = pyStrip(beforeFirst(afterLast(text, m.user), m.assistant));
  }
  const solution = pyStrip(afterLast(text, m.assistant));
  return { question, solution };
}

/** True when `text` contains the assistant marker of a split style (i.e. the split can find a solution). */
export function hasPromptMarkers(text: string, style: PromptSplitStyle): boolean {
  const m = PROMPT_SPLIT_MARKERS[style];
  return text.includes(m.user) && text.includes(m.assistant);
}

/** Build the trainer's prompt string `str(idx) + "<|idx_prompt_split|>" + prompt` (r1-searcher.md §1.2). */
export function joinIdxPrompt(idx: number | string, prompt: string): string {
  return `${idx}${R1_STRINGS.IDX_PROMPT_SEPARATOR}${prompt}`;
}

/**
 * Split a trainer prompt string as the upstream rollout does: `idx` = text before the first separator, `prompt` = text
 * after the last one. Without a separator both are the whole string (Python `split` semantics); `hasIdx` tells.
 */
export function splitIdxPrompt(s: string): { idx: string; prompt: string; hasIdx: boolean } {
  const sep = R1_STRINGS.IDX_PROMPT_SEPARATOR;
  return { idx: beforeFirst(s, sep), prompt: afterLast(s, sep), hasIdx: s.includes(sep) };
}
