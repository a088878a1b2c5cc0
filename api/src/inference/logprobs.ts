// OpenAI's two logprobs shapes, built from the runner's entries (one per generated token, OpenAI's chat shape):
// chat completions pass them as `content`; legacy completions turn them into parallel arrays.
import { z } from "@hono/zod-openapi";
import type { LogprobEntry } from "./runner-protocol.js";

const logprobToken = z.object({
  token: z.string().openapi({ description: "the token's text, decoded from its bytes (U+FFFD where they are part of a character)" }),
  bytes: z.array(z.number().int()).openapi({ description: "the token's UTF-8 bytes" }),
  logprob: z.number().openapi({ description: "log-probability at temperature 1, after logit_bias and penalties; at least −9999" }),
});

export const chatLogprobsSchema = z
  .object({ content: z.array(logprobToken.extend({ top_logprobs: z.array(logprobToken) })), refusal: z.null() })
  .openapi("ChatCompletionLogprobs");

export const completionLogprobsSchema = z
  .object({
    tokens: z.array(z.string()),
    token_logprobs: z.array(z.number()),
    top_logprobs: z.array(z.record(z.string(), z.number())),
    text_offset: z.array(z.number().int()).openapi({ description: "where each token's text starts in the completion's text, counting the tokens' strings" }),
  })
  .openapi("CompletionLogprobs");

export const chatLogprobs = (entries: LogprobEntry[]) => ({ content: entries, refusal: null });

/**
 * token → logprob of the alternatives and, as OpenAI's legacy API always gives it, the sampled token (so up to
 * logprobs + 1 keys); tokens whose text is the same (two parts of characters, both U+FFFD) keep the likelier.
 */
function topByToken(e: LogprobEntry): Record<string, number> {
  const out: Record<string, number> = Object.create(null); // a token may spell "__proto__"
  for (const t of [...e.top_logprobs, e]) if (!Object.hasOwn(out, t.token) || out[t.token] < t.logprob) out[t.token] = t.logprob;
  return out;
}

/** The legacy shape; `offset` is where the first entry's text starts (a stream chunk's place in the whole text). */
export function completionLogprobs(entries: LogprobEntry[], offset = 0) {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map(topByToken),
    text_offset,
  };
}
