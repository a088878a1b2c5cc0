// Token accounting of a streamed generation, folded from the runner's events as they pass: what to bill
// when the stream reaches done (the runner's own report) or ends early (the prompt and the tokens received).
import type { GenerateEvent, GenerateUsage } from "./runner-protocol.js";

export type StreamTally = {
  /** A delta arrived: the runner has processed the prompt (the first delta says how long it was). */
  started: boolean;
  promptTokens: number;
  /** Deltas that carried a token (token null is text held back until the end, not a new token). */
  completionTokens: number;
  /** The done event's usage, when the stream got that far. */
  reported: GenerateUsage | null;
};

export const emptyTally: StreamTally = { started: false, promptTokens: 0, completionTokens: 0, reported: null };

/** The tally after one more event. */
export function tallyEvent(t: StreamTally, e: GenerateEvent): StreamTally {
  if (e.type === "delta") {
    return {
      ...t,
      started: true,
      // A runner older than the field does not send it: the prompt of a cut stream is then unknown (0).
      promptTokens: e.prompt_tokens ?? t.promptTokens,
      completionTokens: t.completionTokens + (e.token === null ? 0 : 1),
    };
  }
  if (e.type === "done") return { ...t, reported: e.usage };
  return t;
}

/** What the stream costs: the runner's report, or what it processed and sent before the stream ended. */
export function tallyUsage(t: StreamTally): GenerateUsage {
  return t.reported ?? { prompt_tokens: t.promptTokens, completion_tokens: t.completionTokens };
}
