/**
 * Fuzz (short version of the reliability bench's 10^5-trajectory run): random and malformed trajectories through
 * every protocol's parsers and every reward preset: no exception, every reward inside the preset's documented range.
 */
import { describe, expect, it } from "vitest";
import { runFuzz } from "../bench/reliability/fuzz.js";

describe("fuzzed trajectories", () => {
  it("never crash a parser or a reward preset, and keep every reward in range", () => {
    const r = runFuzz(1500, 7);
    expect(r.examples).toEqual([]);
    expect(r.crashes).toBe(0);
    expect(r.outOfRange).toBe(0);
    expect(r.parses).toBe(1500 * 3);
    expect(r.rewards).toBe(1500 * 4 * 2);
  });
});
