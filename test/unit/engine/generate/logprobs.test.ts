// Log-probabilities of a row of logits: the chosen token's and the top alternatives', checked against a
// float64 log-softmax computed independently here.
import { describe, expect, it } from "vitest";
import { MAX_TOP_LOGPROBS, tokenLogprobs, validateLogprobs } from "../../../../gpu-runner/src/engine/generate/logprobs.js";

/** log-softmax in float64 via the textbook formula (no max shift: the test logits are small). */
const reference = (logits: number[]) => {
  const z = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0));
  return logits.map((x) => x - z);
};

describe("tokenLogprobs", () => {
  it("gives the chosen token's log-probability and the top alternatives in rank order", () => {
    const logits = [0.5, -1.25, 3, 2, 3, -0.75, 1];
    const ref = reference(logits);
    const got = tokenLogprobs(Float32Array.from(logits), 5, 3);
    expect(got.token).toBe(5);
    expect(got.logprob).toBeCloseTo(ref[5], 6);
    // Ties (tokens 2 and 4) rank the lower id first, as greedy sampling does.
    expect(got.top.map((t) => t.token)).toEqual([2, 4, 3]);
    got.top.forEach((t) => expect(t.logprob).toBeCloseTo(ref[t.token], 6));
  });

  it("stays finite and exact for large logits (the max is shifted out)", () => {
    const logits = Float32Array.from([1000, 999, 998]);
    const got = tokenLogprobs(logits, 0, 1);
    const ref = reference([2, 1, 0]); // the same distribution, shifted
    expect(got.logprob).toBeCloseTo(ref[0], 6);
    expect(got.top).toEqual([{ token: 0, logprob: got.logprob }]);
  });

  it("gives masked (−∞) tokens −∞ and never ranks them above a real token", () => {
    const logits = Float32Array.from([-Infinity, 0, -Infinity, Math.log(3)]);
    const got = tokenLogprobs(logits, 1, 4);
    expect(got.logprob).toBeCloseTo(Math.log(1 / 4), 6);
    expect(got.top.map((t) => t.token)).toEqual([3, 1, 0, 2]);
    expect(got.top[2].logprob).toBe(-Infinity);
  });

  it("takes no alternatives at 0 and at most the vocabulary", () => {
    const logits = Float32Array.from([1, 2]);
    expect(tokenLogprobs(logits, 1, 0).top).toEqual([]);
    expect(tokenLogprobs(logits, 1, 5).top.map((t) => t.token)).toEqual([1, 0]);
  });

  it("refuses a count outside 0..MAX_TOP_LOGPROBS", () => {
    expect(() => validateLogprobs(MAX_TOP_LOGPROBS + 1)).toThrow(/0\.\.20/);
    expect(() => validateLogprobs(-1)).toThrow(/0\.\.20/);
    expect(() => validateLogprobs(1.5)).toThrow(/0\.\.20/);
    expect(() => validateLogprobs(undefined)).not.toThrow();
  });
});
