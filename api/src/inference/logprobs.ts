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
    text_offset: z.array(z.number().int()).openapi({
      description: "where each token's text starts in the completion's text (a special token left out of it, or a character's first bytes: where their text would be; a token a stop string cut off: the text's end)",
    }),
  })
  .openapi("CompletionLogprobs");

/** The chat shape: the entries as they are, but text_offset (the legacy shape's alone). */
export const chatLogprobs = (entries: LogprobEntry[]) => ({ content: entries.map(({ text_offset: _offset, ...e }) => e), refusal: null });

/**
 * token → logprob of the alternatives and, as OpenAI's legacy API always gives it, the sampled token (so up to
 * logprobs + 1 keys); tokens whose text is the same (two parts of characters, both U+FFFD) keep the likelier.
 */
function topByToken(e: LogprobEntry): Record<string, number> {
  const out: Record<string, number> = Object.create(null); // a token may spell "__proto__"
  for (const t of [...e.top_logprobs, e]) if (!Object.hasOwn(out, t.token) || out[t.token] < t.logprob) out[t.token] = t.logprob;
  return out;
}

/**
 * The legacy shape. text_offset is the runner's (where each token's text starts in the choice's text); for a
 * runner that sends none, the tokens' strings counted from `offset`, where the first entry's text starts (a
 * stream chunk's place in the whole text), which is off after a hidden token or a character split over tokens.
 */
export function completionLogprobs(entries: LogprobEntry[], offset = 0) {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(e.text_offset ?? at);
    at += e.token.length;
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map(topByToken),
    text_offset,
  };
}
