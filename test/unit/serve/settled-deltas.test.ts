// A streamed choice's deltas wait while their logprob's text_offset may still be cut by a stop string.
import { describe, expect, it } from "vitest";
import { SettledDeltas, type TokenDelta } from "../../../gpu-runner/src/serve/settled-deltas.js";

const entry = (token: string, text_offset: number) => ({ token, bytes: [...new TextEncoder().encode(token)], logprob: -1, top_logprobs: [], text_offset });
const delta = (token: number, text: string, spelled: string, at: number): TokenDelta => ({ token, text, logprob: entry(spelled, at) });

describe("SettledDeltas", () => {
  it("holds a token inside held-back text until that text goes out, in order", () => {
    const s = new SettledDeltas();
    expect(s.push(delta(1, "a", "a", 0))).toEqual([delta(1, "a", "a", 0)]);
    // "bc" may begin a stop string: held back. b's place is final (at the end of what went out, cut or not); c's
    // waits, and the next token's delta behind it.
    expect(s.push(delta(2, "", "b", 1))).toEqual([delta(2, "", "b", 1)]);
    expect(s.push(delta(3, "", "c", 2))).toEqual([]);
    expect(s.push(delta(4, "", "d", 3))).toEqual([]);
    expect(s.push(delta(5, "bcde", "e", 4))).toEqual([delta(3, "", "c", 2), delta(4, "", "d", 3), delta(5, "bcde", "e", 4)]);
    expect(s.end()).toEqual([]);
  });

  it("ends with the tokens a stop string cut at the text's end", () => {
    const s = new SettledDeltas();
    s.push(delta(1, "a", "a", 0));
    s.push(delta(2, "", "b", 1));
    expect(s.push(delta(3, "", "c", 2))).toEqual([]);
    expect(s.push(delta(4, "", "d", 3))).toEqual([]);
    expect(s.end()).toEqual([delta(3, "", "c", 1), delta(4, "", "d", 1)]);
  });

  it("passes deltas without logprobs at once", () => {
    const s = new SettledDeltas();
    expect(s.push({ token: 1, text: "" })).toEqual([{ token: 1, text: "" }]);
    expect(s.push({ token: null, text: "tail" })).toEqual([{ token: null, text: "tail" }]);
  });
});
