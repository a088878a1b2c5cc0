// LR schedules: warmup ramp, cosine/linear decay values at known points, constant, and bad inputs.
import { describe, expect, it } from "vitest";
import { learningRate, warmupSteps, type Schedule } from "../../../../gpu-runner/src/engine/train/schedule.js";

const base: Schedule = { kind: "cosine", lr: 1e-3, totalSteps: 10, warmupSteps: 2 };

describe("learningRate", () => {
  it("ramps linearly during warmup without a zero-rate step", () => {
    expect(learningRate(base, 0)).toBeCloseTo(0.5e-3, 15);
    expect(learningRate(base, 1)).toBeCloseTo(1e-3, 15);
  });
  it("cosine: peak right after warmup, half at the middle of the decay, near zero at the end", () => {
    expect(learningRate(base, 2)).toBeCloseTo(1e-3, 15);
    expect(learningRate(base, 6)).toBeCloseTo(0.5e-3, 15); // p = 4/8
    expect(learningRate(base, 9)).toBeCloseTo(1e-3 * 0.5 * (1 + Math.cos((Math.PI * 7) / 8)), 15);
    expect(learningRate(base, 10)).toBeCloseTo(0, 15);
  });
  it("linear decays to zero over the post-warmup steps", () => {
    const s: Schedule = { ...base, kind: "linear" };
    expect(learningRate(s, 2)).toBeCloseTo(1e-3, 15);
    expect(learningRate(s, 4)).toBeCloseTo(0.75e-3, 15);
    expect(learningRate(s, 10)).toBeCloseTo(0, 15);
  });
  it("constant holds the peak after warmup", () => {
    const s: Schedule = { ...base, kind: "constant" };
    expect([2, 5, 9].map((i) => learningRate(s, i))).toEqual([1e-3, 1e-3, 1e-3]);
  });
  it("no warmup starts at the peak", () => {
    expect(learningRate({ ...base, warmupSteps: 0 }, 0)).toBe(1e-3);
  });
  it("rejects a negative or fractional step", () => {
    expect(() => learningRate(base, -1)).toThrow(/step -1/);
    expect(() => learningRate(base, 1.5)).toThrow(/integer/);
  });
});

describe("warmupSteps", () => {
  it("rounds the ratio up and caps at the total", () => {
    expect(warmupSteps(100, 0.03)).toBe(3);
    expect(warmupSteps(10, 0.03)).toBe(1);
    expect(warmupSteps(10, 0)).toBe(0);
    expect(warmupSteps(5, 1)).toBe(5);
    expect(warmupSteps(10, 0.25)).toBe(3);
    // Products that floating point puts just above a whole number: ⌈0.07·100⌉ is 7, not 8.
    expect(warmupSteps(100, 0.07)).toBe(7);
    expect(warmupSteps(200, 0.07)).toBe(14);
    expect(warmupSteps(1000, 0.0101)).toBe(11);
    expect(() => warmupSteps(5, 1.5)).toThrow(/warmupRatio=1.5/);
  });
});
