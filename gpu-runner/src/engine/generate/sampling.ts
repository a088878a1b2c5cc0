// Picks the next token from a row of logits: greedy, or temperature + top-k + top-p (nucleus) sampling.
// Runs once per token per sequence, so it never sorts the whole vocabulary: top-k keeps a size-k heap in
// one pass, and top-p pops a max-heap only as far as the nucleus reaches.
import type { Rng } from "./rng.js";

/** All sampling needs from a random source (an `Rng` fits; so does any uniform [0, 1) generator). */
type Uniform = Pick<Rng, "next">;

/** Sampling settings: temperature ≥ 0 (≤ 1e-6 means greedy), topK ≥ 0 (0 = off), topP in (0, 1]. */
export type SamplingOptions = { temperature: number; topK?: number; topP?: number };

/** Temperatures at or below this are treated as greedy decoding (dividing by them would overflow). */
export const GREEDY_TEMPERATURE = 1e-6;

/** Throws a named error when the options are out of range. */
export function validateSamplingOptions(opts: SamplingOptions): void {
  const { temperature, topK, topP } = opts;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new Error(`sampling: temperature=${temperature} must be a finite number ≥ 0 (0 = greedy)`);
  }
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 0)) {
    throw new Error(`sampling: top_k=${topK} must be an integer ≥ 0 (0 = no limit)`);
  }
  if (topP !== undefined && (!Number.isFinite(topP) || topP <= 0 || topP > 1)) {
    throw new Error(`sampling: top_p=${topP} must be in (0, 1] (1 = no limit)`);
  }
}

/**
 * Returns the index of the next token.
 *
 * Semantics (the same order as Hugging Face's logits warpers and vLLM):
 * - temperature ≤ 1e-6: argmax; on ties the lowest index wins. top-k/top-p are irrelevant.
 * - otherwise tokens are ranked by logit, descending, ties by lower index first; the top k are kept
 *   (k = 0/undefined or k ≥ vocab keeps all); the kept tokens get probabilities softmax(logit / T)
 *   renormalised over the kept set; then the shortest prefix of the ranking whose probability reaches
 *   top_p is kept (always at least one token; equal logits just past the cut are dropped by index order);
 *   one token is drawn from that prefix in proportion to its probability, using one `rng.next()`.
 * - −Infinity logits are masked tokens and are never picked; NaN or +Infinity throw, as do all-masked rows.
 */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Uniform): number {
  validateSamplingOptions(opts);
  const n = logits.length;
  if (n === 0) throw new Error("sampling: logits row is empty");
  const { best, max } = checkedArgmax(logits);
  if (opts.temperature <= GREEDY_TEMPERATURE) return best;

  const invT = 1 / opts.temperature;
  const topK = opts.topK && opts.topK < n ? opts.topK : 0;
  const topP = opts.topP ?? 1;

  if (topK === 0) {
    // Every token stays a candidate for the total: compute each weight once.
    const w = weightsOf(logits, max, invT);
    let total = 0;
    for (let i = 0; i < n; i++) total += w[i];
    if (topP >= 1) return drawFromAll(w, n, total, rng);
    // Nucleus: take tokens in rank order off a max-heap (O(V) to build, O(log V) per token taken).
    const heap = buildHeap(logits);
    const ranked: number[] = [];
    const kept: number[] = [];
    const target = topP * total;
    let mass = 0;
    while (heap.size > 0 && (ranked.length === 0 || mass < target)) {
      const id = heap.pop();
      ranked.push(id);
      kept.push(w[id]);
      mass += w[id];
    }
    return draw(ranked, kept, mass, rng);
  }

  // top-k: only the k best need weights; top-p then works on the distribution renormalised over them.
  const ranked = selectTopK(logits, topK);
  const weights: number[] = [];
  let mass = 0;
  for (const id of ranked) {
    const w = Math.exp((logits[id] - max) * invT);
    weights.push(w);
    mass += w;
  }
  const cut = nucleusLength(weights, mass, topP);
  ranked.length = cut;
  weights.length = cut;
  return draw(ranked, weights, sum(weights), rng);
}

// Reused between calls (sampling is synchronous, so one buffer per thread suffices).
let scratch = new Float64Array(0);

/** exp((logit − max)/T) per token, 0 for masked tokens, in a reused buffer. */
function weightsOf(logits: Float32Array, max: number, invT: number): Float64Array {
  if (scratch.length < logits.length) scratch = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) scratch[i] = Math.exp((logits[i] - max) * invT); // exp(−∞) = 0
  return scratch;
}

/** Draws token i with probability w[i]/total without ranking. */
function drawFromAll(w: Float64Array, n: number, total: number, rng: Uniform): number {
  const u = rng.next() * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    if (w[i] === 0) continue;
    acc += w[i];
    last = i;
    if (u < acc) return i;
  }
  return last; // rounding left u ≥ acc: the last token with weight.
}

/** Argmax with the lowest index on ties; rejects NaN/+Infinity and rows where everything is masked. */
function checkedArgmax(logits: Float32Array): { best: number; max: number } {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const l = logits[i];
    if (l > max) {
      max = l;
      best = i;
    } else if (!(l <= max)) {
      // Only NaN fails both comparisons.
      throw new Error(`sampling: logits[${i}] is NaN; the model produced invalid values`);
    }
  }
  if (max === Infinity) throw new Error(`sampling: logits[${best}] is +Infinity; the model produced invalid values`);
  if (best < 0) throw new Error("sampling: every logit is -Infinity (all tokens masked); nothing can be sampled");
  return { best, max };
}

/** How many leading entries of `weights` (ranked, summing to `mass`) are needed to reach topP of the mass. */
function nucleusLength(weights: number[], mass: number, topP: number): number {
  if (topP >= 1) return weights.length;
  const target = topP * mass;
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i];
    if (acc >= target) return i + 1;
  }
  return weights.length;
}

function sum(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** Draws one of `ids` with probability weight/mass. */
function draw(ids: number[], weights: number[], mass: number, rng: Uniform): number {
  const u = rng.next() * mass;
  let acc = 0;
  for (let i = 0; i < ids.length; i++) {
    acc += weights[i];
    if (u < acc) return ids[i];
  }
  return ids[ids.length - 1];
}

/** `above(a, b)`: token a ranks before token b (higher logit; on ties the lower id). */
const ranksAbove = (logits: Float32Array, a: number, b: number): boolean => logits[a] > logits[b] || (logits[a] === logits[b] && a < b);

/**
 * The k best unmasked token ids in rank order. One pass with a size-k min-heap whose root is the worst kept
 * token, so most tokens cost one comparison; then the k survivors are sorted.
 */
function selectTopK(logits: Float32Array, k: number): number[] {
  const heap: number[] = [];
  const worse = (a: number, b: number) => ranksAbove(logits, b, a);
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) return;
      const r = l + 1;
      const c = r < heap.length && worse(heap[r], heap[l]) ? r : l;
      if (!worse(heap[c], heap[i])) return;
      [heap[i], heap[c]] = [heap[c], heap[i]];
      i = c;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (logits[id] === -Infinity) continue;
    if (heap.length < k) {
      heap.push(id);
      // sift up
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    } else if (ranksAbove(logits, id, heap[0])) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (ranksAbove(logits, a, b) ? -1 : 1));
}

/** A binary max-heap of token ids keyed by logit (ties: lower id ranks higher); −Infinity ids left out. */
let heapScratch = new Int32Array(0);

function buildHeap(logits: Float32Array): { size: number; pop(): number } {
  if (heapScratch.length < logits.length) heapScratch = new Int32Array(logits.length);
  const ids = heapScratch;
  let size = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) ids[size++] = i;
  const above = (a: number, b: number): boolean => ranksAbove(logits, a, b);
  const siftDown = (start: number): void => {
    let i = start;
    const id = ids[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && above(ids[r], ids[l]) ? r : l;
      if (!above(ids[c], id)) break;
      ids[i] = ids[c];
      i = c;
    }
    ids[i] = id;
  };
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);
  return {
    get size() {
      return size;
    },
    pop(): number {
      const top = ids[0];
      size--;
      if (size > 0) {
        ids[0] = ids[size];
        siftDown(0);
      }
      return top;
    },
  };
}
