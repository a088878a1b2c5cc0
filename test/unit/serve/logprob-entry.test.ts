// The runner protocol's logprob entries: each token spelled from its bytes, a floor for −∞, and its text offset.
import { describe, expect, it } from "vitest";
import { logprobEntry } from "../../../gpu-runner/src/serve/logprob-entry.js";

const bytes = (id: number) => new TextEncoder().encode(["a", "<|im_start|>"][id]);

describe("logprobEntry", () => {
  it("carries the sequence's text offset, as completions' text_offset", () => {
    expect(logprobEntry({ token: 1, logprob: -0.5, top: [{ token: 0, logprob: -Infinity }], textOffset: 3 }, bytes)).toEqual({
      token: "<|im_start|>",
      bytes: [...bytes(1)],
      logprob: -0.5,
      top_logprobs: [{ token: "a", bytes: [97], logprob: -9999 }],
      text_offset: 3,
    });
    expect(logprobEntry({ token: 0, logprob: -1, top: [] }, bytes)).not.toHaveProperty("text_offset");
  });
});
