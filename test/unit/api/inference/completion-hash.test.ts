// The Idempotency-Key hash of a completion: options at their default count as absent, so a key stored before
// an option existed still matches the same request; a different value is a different request.
import { expect, it } from "vitest";
import { MAX_STORED_COMPLETION, completionHash, storable, storedCompletion } from "../../../../api/src/inference/idempotency.js";

const call = { kind: "chat", model: "m", input: { messages: [{ role: "user", content: "hi" }] }, max_tokens: 8, temperature: 0, top_p: 1, top_k: 0, stop: [], stream: false, includeUsage: false };

it("leaves options at their default out of the hash", async () => {
  const before = await completionHash(call);
  expect(await completionHash({ ...call, frequency_penalty: 0, presence_penalty: 0, logit_bias: {} })).toBe(before);
  expect(await completionHash({ ...call, frequency_penalty: 0.5 })).not.toBe(before);
  expect(await completionHash({ ...call, logit_bias: { "5": -100 } })).not.toBe(before);
  expect(await completionHash({ ...call, logprobs: null })).toBe(before);
  expect(await completionHash({ ...call, n: 1 })).toBe(before);
  expect(await completionHash({ ...call, n: 2 })).not.toBe(before);
  expect(await completionHash({ ...call, logprobs: 0 })).not.toBe(before);
  expect(await completionHash({ ...call, logprobs: 0 })).not.toBe(await completionHash({ ...call, logprobs: 2 }));
  // include_usage shapes only a stream.
  expect(await completionHash({ ...call, includeUsage: true })).toBe(before);
});

it("keeps a result for replay only while it fits in a row", () => {
  const result = { id: "chatcmpl-1", created: 0, usage: { prompt_tokens: 1, completion_tokens: 1 }, choices: [{ text: "hi", finish_reason: "stop" as const, logprobs: null }] };
  expect(storable(result)).toBe(result);
  expect(storable({ ...result, choices: [{ ...result.choices[0], text: "x".repeat(MAX_STORED_COMPLETION) }] })).toBeNull();
  // Counted in bytes: U+FFFD is 3 bytes of UTF-8.
  expect(storable({ ...result, choices: [{ ...result.choices[0], text: "\uFFFD".repeat(MAX_STORED_COMPLETION / 2) }] })).toBeNull();
  expect(storable(null)).toBeNull();
});

it("reads a result stored before n as its one choice", () => {
  const usage = { prompt_tokens: 1, completion_tokens: 1 };
  expect(storedCompletion({ id: "c", created: 0, usage, text: "hi", finish_reason: "length" })).toEqual({ id: "c", created: 0, usage, choices: [{ text: "hi", finish_reason: "length", logprobs: null }] });
});
