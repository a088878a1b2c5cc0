// The keys of one schema object, and the JSON texts of one enum, as a recognizer reads them: sorted bytewise, so
// the names a key (or value) in progress can still become are one range, narrowed by binary search per byte, and
// the names already used are counted in it by binary search too. A scan of every name per byte made trying a
// token cost ~0.5 ms with MAX_SCHEMA_PROPERTIES names: seconds per masking step over a whole vocabulary.

/** An object's property names, or an enum's JSON texts, sorted bytewise (built once per compiled node). */
export type SortedNames = { names: string[]; bytes: Uint8Array[] };

export function sortedNames(names: Iterable<string>): SortedNames {
  const enc = new TextEncoder();
  const pairs = [...names].map((n) => ({ n, b: enc.encode(n) })).sort((x, y) => compareBytes(x.b, y.b));
  return { names: pairs.map((p) => p.n), bytes: pairs.map((p) => p.b) };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** First index in [lo, hi) where `below(i)` is false (`below` true then false over the range). */
function partition(lo: number, hi: number, below: (i: number) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (below(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The names used so far in one object, as sorted indices into its SortedNames. Shared between a recognizer and
 * its clones until one of them adds a name (accepts() clones for every token tried; few tokens end a key).
 */
export class UsedNames {
  private constructor(
    private at: number[],
    private shared: boolean,
  ) {}

  static none(): UsedNames {
    return new UsedNames([], false);
  }

  get size(): number {
    return this.at.length;
  }

  /** A copy that shares this one's storage until either is written. */
  fork(): UsedNames {
    this.shared = true;
    return new UsedNames(this.at, true);
  }

  has(index: number): boolean {
    const i = partition(0, this.at.length, (k) => this.at[k] < index);
    return this.at[i] === index;
  }

  add(index: number): void {
    if (this.shared) {
      this.at = [...this.at];
      this.shared = false;
    }
    this.at.splice(partition(0, this.at.length, (k) => this.at[k] < index), 0, index);
  }

  /** How many of the names in [lo, hi) are used. */
  countIn(lo: number, hi: number): number {
    return partition(0, this.at.length, (k) => this.at[k] < hi) - partition(0, this.at.length, (k) => this.at[k] < lo);
  }
}

/**
 * The range [lo, hi) of names that start with a key whose `length` bytes matched, narrowed by its next byte `b`.
 * Without closures: a mask narrows once per token tried, and the runner runs under tsx, which keeps function names
 * by wrapping each closure as it is made (a defineProperty), which cost more than the search itself.
 */
export function narrow(s: SortedNames, lo: number, hi: number, length: number, b: number): [number, number] {
  const from = firstOver(s, lo, hi, length, b - 1);
  return [from, firstOver(s, from, hi, length, b)];
}

/**
 * First index in [lo, hi) whose name's byte at `length` is over `limit`. In the range every name starts with the
 * same `length` bytes, so those bytes rise; the name that ends there (−1) sorts first.
 */
function firstOver(s: SortedNames, lo: number, hi: number, length: number, limit: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const name = s.bytes[mid];
    if ((name.length > length ? name[length] : -1) <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
