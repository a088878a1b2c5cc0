// The engine's logprobs (token ids) as the runner protocol sends them: each token's text and bytes, and where its
// text starts in the answer's.
import type { LogprobEntry } from "../../../api/src/inference/runner-protocol.js";
import type { TokenLogprob } from "../engine/generate/logprobs.js";

/** OpenAI's floor for a logprob: JSON has no −∞ (a masked token) or NaN (logits that overflowed). */
const FLOOR = -9999;

const text = new TextDecoder("utf-8", { fatal: false });

export function logprobEntry(t: TokenLogprob, tokenBytes: (id: number) => Uint8Array): LogprobEntry {
  const spell = (token: number, logprob: number) => {
    const bytes = tokenBytes(token);
    return { token: text.decode(bytes), bytes: [...bytes], logprob: Number.isFinite(logprob) ? Math.max(logprob, FLOOR) : FLOOR };
  };
  const entry: LogprobEntry = { ...spell(t.token, t.logprob), top_logprobs: t.top.map((a) => spell(a.token, a.logprob)) };
  if (t.textOffset !== undefined) entry.text_offset = t.textOffset;
  return entry;
}
