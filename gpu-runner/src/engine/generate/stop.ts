// Streaming stop-string detection: releases text as soon as it cannot be part of a stop string,
// holds back only a tail that could still grow into one, and never releases a stop string itself.

/**
 * Watches generated text for stop strings.
 *
 * `push(delta)` returns the text that is safe to show now. When a stop string appears anywhere in the
 * not-yet-released text, everything before it is released, `stopped` becomes true and the rest is dropped.
 * If several stop strings match in the same push, the one that starts first wins (so no stop string leaks
 * out, even when one stop contains another). A stop string split over many deltas is found because its
 * beginning is held back. Call `flush()` when generation ends for another reason to get the held tail.
 */
export class StopMatcher {
  private readonly stops: string[];
  private held = "";
  private done = false;

  constructor(stops: string[]) {
    stops.forEach((s, i) => {
      if (typeof s !== "string" || s.length === 0) throw new Error(`stop[${i}] is empty: stop strings must be non-empty`);
    });
    this.stops = [...new Set(stops)];
  }

  /** True once a stop string has been seen; later pushes release nothing. */
  get stopped(): boolean {
    return this.done;
  }

  /** Adds newly decoded text; returns what may be released and whether a stop string was hit. */
  push(textDelta: string): { emit: string; stopped: boolean } {
    if (this.done) return { emit: "", stopped: true };
    const text = this.held + textDelta;
    if (this.stops.length === 0) {
      this.held = "";
      return { emit: text, stopped: false };
    }
    let first = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.done = true;
      this.held = "";
      return { emit: text.slice(0, first), stopped: true };
    }
    const keep = this.partialTail(text);
    this.held = text.slice(text.length - keep);
    return { emit: text.slice(0, text.length - keep), stopped: false };
  }

  /**
   * Ends at a stop string the text does not show (a hidden token that spells one, sequence.ts): releases the held
   * tail, which comes before it; empty after a stop.
   */
  stopHere(): string {
    const out = this.flush();
    this.done = true;
    return out;
  }

  /** Releases the held tail (generation ended without a stop string); empty after a stop. */
  flush(): string {
    const out = this.done ? "" : this.held;
    this.held = "";
    return out;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private partialTail(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      // Only suffixes longer than the best so far matter; none can be as long as s (that would be a match).
      for (let len = Math.min(s.length - 1, text.length); len > best; len--) {
        if (text.endsWith(s.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
