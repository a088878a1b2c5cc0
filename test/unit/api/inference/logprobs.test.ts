// OpenAI's two logprobs shapes from the runner's entries: text_offset as the runner placed each token in the text
// (hidden tokens, a character's bytes), and the chat shape without it.
import { describe, expect, it } from "vitest";
import { chatLogprobs, completionLogprobs } from "../../../../api/src/inference/logprobs.js";
import type { LogprobEntry } from "../../../../api/src/inference/runner-protocol.js";

const entry = (token: string, text_offset?: number): LogprobEntry => ({
  token,
  bytes: [...new TextEncoder().encode(token)],
  logprob: -1,
  top_logprobs: [],
  ...(text_offset === undefined ? {} : { text_offset }),
});

describe("completionLogprobs", () => {
  it("takes each token's text_offset from the runner: a hidden token's string does not count", () => {
    // "Hi" <|im_start|> "!" → the text "Hi!".
    const text = "Hi!";
    const lp = completionLogprobs([entry("H", 0), entry("i", 1), entry("<|im_start|>", 2), entry("!", 2)]);
    expect(lp.text_offset).toEqual([0, 1, 2, 2]);
    lp.tokens.forEach((t, i) => {
      if (t !== "<|im_start|>") expect(text.slice(lp.text_offset[i]).startsWith(t)).toBe(true);
    });
  });

  it("counts the tokens' strings for a runner that sends no offsets, from the chunk's offset", () => {
    expect(completionLogprobs([entry("ab"), entry("c")], 3).text_offset).toEqual([3, 5]);
  });
});

describe("chatLogprobs", () => {
  it("leaves text_offset out of the chat shape (OpenAI's content entries have none)", () => {
    expect(chatLogprobs([entry("a", 0)])).toEqual({ content: [{ token: "a", bytes: [97], logprob: -1, top_logprobs: [] }], refusal: null });
  });
});
