// Log-probabilities for OpenAI's logprobs: the sampled token's log-softmax and the most likely
// alternatives, from one row of logits, in float64, in two passes over the vocabulary (no sort).

/** OpenAI's limit on top_logprobs. */
export const MAX_TOP_LOGPROBS = 20;

export type TokenLogprob = {
  token: number;
  logprob: number;
  /** The `top` most likely tokens, most likely first (ties: lower id first, as greedy picks). */
  top: { token: number; logprob: number }[];
  /**
   * Where the token's text starts in the sequence's text (UTF-16 units, as JavaScript and the API count), set by
   * the sequence when it has a tokenizer; a token that writes no text of its own (hidden, or a character's first
   * bytes) gets the place its text would be, and a token a stop string cut off, the text's end.
   */
  textOffset?: number;
};

/** log Σ exp(logits), shifted by the max so large logits do not overflow; −∞ logits add nothing. */
function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** Ids of the `n` largest logits, in rank order: a sorted array of at most n ≤ 20 entries, kept by insertion. */
function topIds(logits: Float32Array, n: number): number[] {
  const top: number[] = [];
  if (n === 0) return top;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (top.length === n && !(x > logits[top[n - 1]])) continue;
    let j = top.length;
    while (j > 0 && logits[top[j - 1]] < x) j--;
    top.splice(j, 0, i);
    if (top.length > n) top.pop();
  }
  return top;
}

/** Throws a named error unless `top` is a count of alternatives OpenAI allows (undefined: logprobs off). */
export function validateLogprobs(top: number | undefined): void {
  if (top !== undefined && (!Number.isInteger(top) || top < 0 || top > MAX_TOP_LOGPROBS)) {
    throw new Error(`logprobs: ${top} alternatives; choose 0..${MAX_TOP_LOGPROBS}`);
  }
}

/** The log-probability of `token` under softmax(logits), and those of the `top` most likely tokens (see validateLogprobs). */
export function tokenLogprobs(logits: Float32Array, token: number, top: number): TokenLogprob {
  const z = logSumExp(logits);
  return { token, logprob: logits[token] - z, top: topIds(logits, top).map((t) => ({ token: t, logprob: logits[t] - z })) };
}
