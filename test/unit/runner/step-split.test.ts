// A job's step is split into micro-batches that bound one run's attention memory, and add up to the step.
import { describe, expect, it } from "vitest";
import { RUN_ATTENTION_BUDGET, stepSplit } from "../../../gpu-runner/src/runner/step-split.js";

describe("stepSplit", () => {
  it("keeps a step in one run while it fits (the default seq_len 512 takes 32 rows)", () => {
    expect(stepSplit(8, 512, 1)).toEqual({ batchSize: 8, gradAccum: 1 });
    expect(stepSplit(32, 512, 1)).toEqual({ batchSize: 32, gradAccum: 1 });
  });
  it("splits a larger step evenly, every run within the budget", () => {
    for (const [batch, seqLen, seqs] of [[256, 2048, 1], [256, 8192, 1], [64, 512, 2], [48, 1024, 1], [7, 2048, 1], [256, 16, 2]] as const) {
      const s = stepSplit(batch, seqLen, seqs);
      expect(s.batchSize * s.gradAccum).toBe(batch);
      if (s.batchSize > 1) expect(s.batchSize * seqs * seqLen * seqLen).toBeLessThanOrEqual(RUN_ATTENTION_BUDGET);
    }
    expect(stepSplit(256, 2048, 1)).toEqual({ batchSize: 2, gradAccum: 128 });
    expect(stepSplit(64, 512, 2)).toEqual({ batchSize: 16, gradAccum: 4 });
    // 7 rows of 2048 do not divide by the 2 that fit: one a run.
    expect(stepSplit(7, 2048, 1)).toEqual({ batchSize: 1, gradAccum: 7 });
  });
});
