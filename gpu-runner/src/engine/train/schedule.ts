// Learning-rate schedules: linear warmup, then cosine, linear or constant — a pure function of the
// step index, so a resumed run recomputes exactly the rate an uninterrupted run used.

export type ScheduleKind = "cosine" | "linear" | "constant";

export type Schedule = {
  kind: ScheduleKind;
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  totalSteps: number;
  warmupSteps: number;
};

/** Warmup steps for a ratio of the total: ⌈ratio·total⌉, at most total. */
export function warmupSteps(totalSteps: number, ratio: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`warmupRatio=${ratio} must be in [0, 1]`);
  // ratio·total in binary floating point can land just above a whole number (0.07 × 100 = 7.000000000000001,
  // which Math.ceil makes 8): rounded to 9 decimals first, the product is the one the formula means.
  return Math.min(totalSteps, Math.ceil(Math.round(ratio * totalSteps * 1e9) / 1e9));
}

/**
 * The learning rate of step `step` (0-based: the optimizer step about to be taken). Warmup is
 * lr·(step+1)/warmup — unlike Hugging Face's step/warmup it never spends a step at rate 0. After
 * warmup, progress p = (step − warmup)/(total − warmup) runs 0 → 1: cosine gives lr·½(1 + cos πp),
 * linear lr·(1 − p), constant lr.
 */
export function learningRate(s: Schedule, step: number): number {
  if (!Number.isInteger(step) || step < 0) throw new Error(`learningRate: step ${step} must be an integer ≥ 0`);
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === "constant") return s.lr;
  const decay = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / decay);
  return s.kind === "cosine" ? s.lr * 0.5 * (1 + Math.cos(Math.PI * p)) : s.lr * (1 - p);
}
