/**
 * Forging protection. Retrieved text is untrusted: a passage that contains `<|end_of_documents|>`, `</document>`,
 * `<answer>`, a query tag or a chat-template control string could end the document block early, inject an answer
 * that the reward would score, or move the prompt/response split of the reward server.
 *
 * Decision (docs/protocol.md, "Forging protection"): every protocol renders retrieved text through
 * `neutralizeReserved`, which replaces the leading `<` of each occurrence of a reserved string with the HTML entity
 * `&lt;`. The result contains no reserved string, so every substring count, split and parse downstream - including
 * the upstream reward logic ported byte for byte - sees exactly the structure the environment wrote. Text without
 * reserved strings is unchanged, so normal document blocks stay byte-identical to upstream.
 */
import { escapeRegExp } from "../util/pystr.js";

const cache = new Map<string, RegExp>();

function reservedRegex(reserved: readonly string[]): RegExp {
  const key = reserved.join("\u0000");
  let re = cache.get(key);
  if (!re) {
    for (const r of reserved) {
      // With "<" only at index 0, occurrences cannot overlap, so one left-to-right pass removes all of them.
      if (!r.startsWith("<") || r.indexOf("<", 1) >= 0)
        throw new Error(`reserved string must start with "<" and contain no other "<": ${r}`);
    }
    const sorted = [...new Set(reserved)].sort((a, b) => b.length - a.length);
    re = new RegExp(sorted.map(escapeRegExp).join("|"), "g");
    cache.set(key, re);
  }
  return re;
}

/** The entity that replaces the `<` of a reserved string in retrieved text. */
export const NEUTRALIZED_LT = "&lt;";

/**
 * Replace the leading `<` of every occurrence of a reserved string with `&lt;`. Idempotent; the output contains no
 * reserved string (all reserved strings start with `<`, and the replacement introduces no `<`).
 */
export function neutralizeReserved(text: string, reserved: readonly string[]): string {
  if (text.indexOf("<") < 0) return text;
  const re = reservedRegex(reserved);
  re.lastIndex = 0;
  return text.replace(re, (m) => NEUTRALIZED_LT + m.slice(1));
}
