import { describe, expect, it } from "vitest";
import { assertTransition, canTransition, isTerminal, jobStatuses, sourcesOf } from "../../../../api/src/jobs/state.js";

describe("job state table", () => {
  it("allows the lifecycle validating_files → queued → running → succeeded", () => {
    expect(canTransition("validating_files", "queued")).toBe(true);
    expect(canTransition("queued", "running")).toBe(true);
    expect(canTransition("running", "succeeded")).toBe(true);
  });

  it("allows re-lease (running → running) and retry (running → queued)", () => {
    expect(canTransition("running", "running")).toBe(true);
    expect(canTransition("running", "queued")).toBe(true);
  });

  it("never leaves a finished job and never skips the queue", () => {
    for (const done of ["succeeded", "failed", "cancelled"] as const) {
      expect(isTerminal(done)).toBe(true);
      for (const to of jobStatuses) expect(canTransition(done, to)).toBe(false);
    }
    expect(canTransition("queued", "succeeded")).toBe(false);
    expect(canTransition("validating_files", "running")).toBe(false);
    expect(isTerminal("running")).toBe(false);
  });

  it("derives the SQL source sets from the table", () => {
    expect(sourcesOf("cancelled").sort()).toEqual(["paused", "queued", "running", "validating_files"]);
    expect(sourcesOf("paused").sort()).toEqual(["queued", "running"]);
    expect(sourcesOf("running").sort()).toEqual(["queued", "running"]);
    expect(sourcesOf("succeeded")).toEqual(["running"]);
  });

  it("pauses a queued or running job and resumes it into the queue, never straight to running", () => {
    expect(canTransition("running", "paused")).toBe(true);
    expect(canTransition("paused", "queued")).toBe(true);
    expect(canTransition("paused", "running")).toBe(false);
    expect(canTransition("paused", "cancelled")).toBe(true);
    expect(isTerminal("paused")).toBe(false);
  });

  it("names both statuses when a move is refused", () => {
    expect(() => assertTransition("succeeded", "running")).toThrow("from succeeded to running");
    expect(() => assertTransition("queued", "running")).not.toThrow();
  });
});
