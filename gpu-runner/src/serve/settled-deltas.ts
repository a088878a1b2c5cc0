// A streamed choice's deltas, each sent once its logprob's text_offset is final (api/src/inference/settled-offsets.ts):
// a token inside text held back for a stop string waits until that text goes out, or, cut by the stop string, until
// the choice ends, at the text's end. So the stream's offsets are those of the JSON answer. Without logprobs
// nothing waits.
import type { LogprobEntry } from "../../../api/src/inference/runner-protocol.js";
import { capOffset, takeSettled } from "../../../api/src/inference/settled-offsets.js";

/** One token's delta as the serving worker reports it (token null: text released at the end). */
export type TokenDelta = { token: number | null; text: string; logprob?: LogprobEntry };

export class SettledDeltas {
  private held: TokenDelta[] = [];
  /** Characters of the choice's text in the deltas taken so far. */
  private released = 0;

  /** Takes the next delta; returns the deltas now final, in order (a delta never passes one that waits). */
  push(d: TokenDelta): TokenDelta[] {
    this.held.push(d);
    this.released += d.text.length;
    return takeSettled(this.held, this.released, (h) => h.logprob);
  }

  /** The choice ended (its whole text has been taken): the deltas left, tokens a stop string cut at the text's end. */
  end(): TokenDelta[] {
    return this.held.splice(0).map((d) => (d.logprob ? { ...d, logprob: capOffset(d.logprob, this.released) } : d));
  }
}
