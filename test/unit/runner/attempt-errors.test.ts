// The error a failed training attempt reports: the engine's code and words without this runner's paths, or
// after a shutdown where the next attempt resumes.
import { describe, expect, it } from "vitest";
import { attemptError } from "../../../gpu-runner/src/runner/attempt-errors.js";

describe("attemptError", () => {
  const at = { shutdown: false, runnerName: "r1", checkpointStep: null, modelDir: "/m/base", jobDir: "/w/job-1" };

  it("gives the engine's code and its message without this runner's paths", () => {
    const err = Object.assign(new Error("bad line in /w/job-1/train.jsonl (see /m/base/config.json)"), { code: "invalid_data" });
    expect(attemptError(err, "training_failed", at)).toEqual({ code: "invalid_data", message: "bad line in train.jsonl (see base model's config.json)" });
    expect(attemptError(new Error("boom"), "training_failed", at)).toEqual({ code: "training_failed", message: "boom" });
  });

  it("says where the next attempt resumes after a shutdown", () => {
    expect(attemptError(new Error("x"), "training_failed", { ...at, shutdown: true }).message).toBe("runner r1 shut down during the attempt; the next attempt resumes from the start");
    expect(attemptError(new Error("x"), "training_failed", { ...at, shutdown: true, checkpointStep: 4 })).toEqual({
      code: "runner_shutdown",
      message: "runner r1 shut down during the attempt; the next attempt resumes from the checkpoint at step 4",
    });
  });
});
