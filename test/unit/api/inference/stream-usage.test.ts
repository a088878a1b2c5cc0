// The token tally of a streamed generation: what the API bills when a stream reaches done (the runner's
// report) and when it ends early (the prompt and the tokens received so far).
import { describe, expect, it } from "vitest";
import type { GenerateEvent } from "../../../../api/src/inference/runner-protocol.js";
import { emptyTally, tallyEvent, tallyUsage } from "../../../../api/src/inference/stream-usage.js";

const fold = (events: GenerateEvent[]) => events.reduce(tallyEvent, emptyTally);
const delta = (token: number | null, promptTokens?: number): GenerateEvent => ({ type: "delta", text: "x", token, ...(promptTokens === undefined ? {} : { prompt_tokens: promptTokens }) });

describe("stream usage tally", () => {
  it("bills nothing before the first delta", () => {
    const t = fold([]);
    expect(t.started).toBe(false);
    expect(tallyUsage(t)).toEqual({ prompt_tokens: 0, completion_tokens: 0 });
  });

  it("a cut stream bills the prompt from the first delta and one completion token per token delta", () => {
    const t = fold([delta(5, 7), delta(6), delta(null), delta(8)]);
    expect(t.started).toBe(true);
    expect(tallyUsage(t)).toEqual({ prompt_tokens: 7, completion_tokens: 3 });
  });

  it("a finished stream bills the runner's own report, not the local count", () => {
    const t = fold([delta(5, 7), delta(6), { type: "done", finish_reason: "length", usage: { prompt_tokens: 7, completion_tokens: 2 } }]);
    expect(tallyUsage(t)).toEqual({ prompt_tokens: 7, completion_tokens: 2 });
  });

  it("an error event keeps what was counted", () => {
    const t = fold([delta(5, 4), delta(9), { type: "error", message: "boom" }]);
    expect(tallyUsage(t)).toEqual({ prompt_tokens: 4, completion_tokens: 2 });
  });

  it("a runner that does not send prompt_tokens leaves the prompt at 0", () => {
    expect(tallyUsage(fold([delta(1), delta(2)]))).toEqual({ prompt_tokens: 0, completion_tokens: 2 });
  });
});
