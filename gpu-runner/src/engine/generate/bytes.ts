// Byte strings for the constraints that watch what a sequence writes (banned text, tool calls).

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Finds a tag in text written a token at a time (Knuth–Morris–Pratt): the state is how many of the tag's
 * bytes the text written last has matched, so a token's bytes are tried without copying what came before.
 */
export class TagScanner {
  /** fallback[i]: the longest proper prefix of the tag that ends its first i + 1 bytes. */
  private readonly fallback: Int32Array;

  constructor(readonly tag: Uint8Array) {
    if (tag.length === 0) throw new Error("tag: empty");
    this.fallback = new Int32Array(tag.length);
    for (let i = 1, k = 0; i < tag.length; i++) {
      while (k > 0 && tag[i] !== tag[k]) k = this.fallback[k - 1];
      if (tag[i] === tag[k]) k++;
      this.fallback[i] = k;
    }
  }

  /** The state after byte `b` from state `matched`; the tag has been written when it equals tag.length. */
  next(matched: number, b: number): number {
    let m = matched === this.tag.length ? this.fallback[matched - 1] : matched;
    while (m > 0 && this.tag[m] !== b) m = this.fallback[m - 1];
    return this.tag[m] === b ? m + 1 : 0;
  }
}
