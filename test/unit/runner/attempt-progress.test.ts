// What a training attempt's heartbeats carry: the leased job's standing until the trainer reports, the
// trainer's progress in the API's terms, and when it goes out at once.
import { describe, expect, it } from "vitest";
import type { LeaseAnswer } from "../../../gpu-runner/src/runner/api-client.js";
import { leasedProgress, progressBeatDue, trainerProgress } from "../../../gpu-runner/src/runner/attempt-progress.js";

const lease = (checkpointStep: number | null, totalSteps: number | null) =>
  ({ job: { progress: totalSteps === null ? null : { total_steps: totalSteps } }, urls: { checkpoint: checkpointStep === null ? null : { step: checkpointStep } } }) as unknown as LeaseAnswer;

const progress = (step: number, totalSteps: number, loss = 1.5) =>
  ({ type: "progress", step, totalSteps, epoch: 0, loss, lr: 1e-4, tokensPerS: -1, etaS: 3, trainedTokens: 40 }) as const;

describe("attempt progress", () => {
  it("repeats where a leased job stands: the checkpoint's step of the last run's total", () => {
    expect(leasedProgress(lease(null, null))).toEqual({ step: 0, total_steps: 1, epoch: 0, loss: null });
    expect(leasedProgress(lease(6, 10))).toEqual({ step: 6, total_steps: 10, epoch: 0, loss: null });
    expect(leasedProgress(lease(6, null)).total_steps).toBe(6);
  });

  it("reports no NaN loss and no negative rate", () => {
    const p = trainerProgress(progress(2, 0, NaN));
    expect(p).toMatchObject({ step: 2, total_steps: 1, loss: null, tokens_per_s: 0, eta_s: 3, trained_tokens: 40 });
  });

  it("sends the first and the last step at once, the others at most once a second", () => {
    const now = Date.now();
    expect(progressBeatDue(progress(3, 10), true, now)).toBe(true);
    expect(progressBeatDue(progress(10, 10), false, now)).toBe(true);
    expect(progressBeatDue(progress(4, 10), false, now)).toBe(false);
    expect(progressBeatDue(progress(4, 10), false, now - 1000)).toBe(true);
  });
});
