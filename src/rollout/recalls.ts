/** Recall blocks as rollout events, shared by the token and the chat engines. */
import type { ResponseProtocol } from "../protocol/types.js";
import type { RolloutEvent } from "./types.js";

/**
 * A feed for the trajectory's text (policy text and observations, in order): runs the protocol's incremental parser and
 * emits every closed recall block as an `internal` event. Call it with `final = true` once at the end.
 */
export function recallEvents(
  protocol: ResponseProtocol,
  emit: (e: RolloutEvent) => void,
  id: string,
): (chunk: string, final?: boolean) => void {
  const parser = protocol.createParser();
  return (chunk, final = false) => {
    const evs = final ? parser.finish() : parser.push(chunk);
    for (const ev of evs)
      if (ev.type === "close" && ev.kind === "internal") emit({ type: "internal", id, text: ev.text });
  };
}
