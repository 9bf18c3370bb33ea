/**
 * Stop-string matching on decoded text, with vLLM semantics: the earliest occurrence of any stop string ends the
 * generation, the returned text is cut before it, and the token that completed it is the last token kept.
 */

export interface StopMatch {
  /** UTF-16 offset of the stop string in the searched text. */
  index: number;
  stop: string;
}

export class StopStringMatcher {
  readonly stops: readonly string[];
  private readonly maxLen: number;
  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.maxLen = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  get empty(): boolean {
    return this.stops.length === 0;
  }

  /**
   * Earliest stop string in `text` that ends after `changedFrom` (the first offset whose text may be new since the last
   * call); ties at the same offset go to the stop listed first. `null` when none.
   */
  find(text: string, changedFrom = 0): StopMatch | null {
    if (this.stops.length === 0) return null;
    const from = Math.max(0, changedFrom - this.maxLen + 1);
    let best: StopMatch | null = null;
    for (const stop of this.stops) {
      const i = text.indexOf(stop, from);
      if (i >= 0 && (best === null || i < best.index)) best = { index: i, stop };
    }
    return best;
  }

  /**
   * Length of the prefix of `text` that can be shown while streaming: everything except a suffix that could still
   * grow into a stop string.
   */
  safeLength(text: string): number {
    let hold = 0;
    for (const stop of this.stops) {
      const maxK = Math.min(stop.length - 1, text.length);
      for (let k = maxK; k > hold; k--) {
        if (text.endsWith(stop.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return text.length - hold;
  }
}

/**
 * Strip a trailing incomplete UTF-8 sequence rendered as U+FFFD by a decoder (a multi-byte character split across
 * tokens): streaming emits text only once it is complete.
 */
export function stableTextLength(text: string): number {
  let n = text.length;
  while (n > 0 && text.charCodeAt(n - 1) === 0xfffd) n--;
  return n;
}
