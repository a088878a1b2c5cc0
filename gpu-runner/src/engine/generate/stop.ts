// Streaming stop-string detection: releases text as soon as it cannot be part of a stop string,
// holds back only a tail that could still grow into one, and never releases a stop string itself.

/** Text taken so far and not released: a piece of the answer's text, or a hidden token's text (never released). */
type Piece = { text: string; hidden: boolean };

/**
 * Watches generated text for stop strings.
 *
 * `push(delta)` returns the text that is safe to show now. When a stop string appears anywhere in the
 * not-yet-released text, everything before it is released, `stopped` becomes true and the rest is dropped.
 * If several stop strings match in the same push, the one that starts first wins (so no stop string leaks
 * out, even when one stop contains another). A stop string split over many deltas is found because its
 * beginning is held back. Call `flush()` when generation ends for another reason to get the held tail.
 *
 * Hidden tokens (special tokens the answer's text leaves out) are pushed with their text as `hidden`: a stop
 * string that holds one's whole text (`hiddenTexts`, as `"done<|im_end|>"` does) is matched on the text with
 * every hidden token's text in place, since the text alone never shows it; the others on the text alone, as
 * vLLM matches them when it skips special tokens. Hidden text is never released.
 */
export class StopMatcher {
  /** Matched on the answer's text. */
  private readonly plain: string[];
  /** Holding a hidden token's text: matched on the text with hidden tokens' text in place. */
  private readonly withHidden: string[];
  private held: Piece[] = [];
  private done = false;

  constructor(stops: string[], hiddenTexts: readonly string[] = []) {
    stops.forEach((s, i) => {
      if (typeof s !== "string" || s.length === 0) throw new Error(`stop[${i}] is empty: stop strings must be non-empty`);
    });
    const unique = [...new Set(stops)];
    const holdsHidden = (s: string) => hiddenTexts.some((h) => h.length > 0 && s.includes(h));
    this.withHidden = unique.filter(holdsHidden);
    this.plain = unique.filter((s) => !holdsHidden(s));
  }

  /** True once a stop string has been seen; later pushes release nothing. */
  get stopped(): boolean {
    return this.done;
  }

  /** Whether hidden tokens' text takes part (a stop string holds one's): the caller spells them only then. */
  get seesHidden(): boolean {
    return this.withHidden.length > 0;
  }

  /** Whether pushing hidden text `text` now would complete a stop string (the caller first releases what comes before it). */
  wouldStopAt(text: string): boolean {
    return !this.done && firstMatch(textOf([...this.held, { text, hidden: true }], true), this.withHidden) < Infinity;
  }

  /** Adds newly decoded text (a hidden token's, `hidden`); returns what may be released and whether a stop string was hit. */
  push(textDelta: string, hidden = false): { emit: string; stopped: boolean } {
    if (this.done) return { emit: "", stopped: true };
    if (!hidden || this.seesHidden) this.held.push({ text: textDelta, hidden });
    const plain = textOf(this.held, false);
    if (this.plain.length === 0 && this.withHidden.length === 0) {
      this.held = [];
      return { emit: plain, stopped: false };
    }
    const all = textOf(this.held, true);
    // Both in the answer's text: a match in the text with hidden tokens cuts where its first character stands there.
    const cut = Math.min(firstMatch(plain, this.plain), plainBefore(this.held, firstMatch(all, this.withHidden)));
    if (cut < Infinity) {
      this.done = true;
      this.held = [];
      return { emit: plain.slice(0, cut), stopped: true };
    }
    // Kept: from the first place either kind of stop string may still start (no match can start before it).
    const keepPlain = fullIndexOf(this.held, plain.length - partialTail(plain, this.plain));
    const keep = Math.min(keepPlain, all.length - partialTail(all, this.withHidden));
    const emit = plain.slice(0, plainBefore(this.held, keep));
    this.held = dropFront(this.held, keep);
    return { emit, stopped: false };
  }

  /** Releases the held tail (generation ended without a stop string); empty after a stop. */
  flush(): string {
    const out = this.done ? "" : textOf(this.held, false);
    this.held = [];
    return out;
  }
}

const textOf = (pieces: Piece[], withHidden: boolean) =>
  pieces
    .filter((p) => withHidden || !p.hidden)
    .map((p) => p.text)
    .join("");

/** Where the first of `stops` starts in `text`, or Infinity. */
function firstMatch(text: string, stops: string[]): number {
  let first = Infinity;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && at < first) first = at;
  }
  return first;
}

/** Characters of the answer's text before index `at` of the text with hidden tokens (Infinity stays). */
function plainBefore(pieces: Piece[], at: number): number {
  if (at === Infinity) return at;
  let all = 0;
  let plain = 0;
  for (const p of pieces) {
    if (all >= at) break;
    const n = Math.min(p.text.length, at - all);
    if (!p.hidden) plain += n;
    all += p.text.length;
  }
  return plain;
}

/**
 * Index in the text with hidden tokens of the answer's `n`th character (past the hidden text before it, which no
 * stop string matched on the answer's text sees): where the answer's text from `n` on starts there.
 */
function fullIndexOf(pieces: Piece[], n: number): number {
  let all = 0;
  let plain = 0;
  for (const p of pieces) {
    if (!p.hidden && plain + p.text.length > n) return all + (n - plain);
    if (!p.hidden) plain += p.text.length;
    all += p.text.length;
  }
  return all;
}

/** The pieces from index `at` of the text with hidden tokens on. */
function dropFront(pieces: Piece[], at: number): Piece[] {
  const out: Piece[] = [];
  let all = 0;
  for (const p of pieces) {
    const from = Math.max(0, at - all);
    if (from < p.text.length) out.push(from === 0 ? p : { text: p.text.slice(from), hidden: p.hidden });
    all += p.text.length;
  }
  return out;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function partialTail(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) {
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
