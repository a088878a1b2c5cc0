// Admission decisions of the continuous batcher: room, slot limits, order, and the per-adapter baseline.
import { describe, expect, it } from "vitest";
import { planAdmission, type SlotView } from "../../../gpu-runner/src/serve/batch.js";

const slots = (resident: string[], free: number, evictable: string[] = []): SlotView => ({
  resident: (a) => a === null || resident.includes(a),
  free,
  evictable: new Set(evictable),
});

describe("planAdmission", () => {
  it("admits in order up to the free rows, mixing adapters", () => {
    expect(planAdmission({ waiting: ["a", "b", null, "a", "c"], running: ["x"], maxBatch: 4, slots: slots(["a", "b", "x"], 2), policy: "mixed" })).toEqual([0, 1, 2]);
    expect(planAdmission({ waiting: ["a"], running: ["a", "b"], maxBatch: 2, slots: slots(["a", "b"], 0), policy: "mixed" })).toEqual([]);
  });

  it("gives new adapters free slots first, then evicts unused ones, and skips what cannot get a slot", () => {
    // One free slot, one evictable: two new adapters fit, the third waits; the base model always fits.
    const s = slots(["old", "busy"], 1, ["old"]);
    expect(planAdmission({ waiting: ["n1", "n2", "n3", null], running: ["busy"], maxBatch: 8, slots: s, policy: "mixed" })).toEqual([0, 1, 3]);
    // A second request for an adapter claimed in this plan needs no second slot.
    expect(planAdmission({ waiting: ["n1", "n1", "n2"], running: [], maxBatch: 8, slots: slots([], 1), policy: "mixed" })).toEqual([0, 1]);
  });

  it("does not evict a resident adapter the plan itself uses", () => {
    const s = slots(["old"], 0, ["old"]);
    expect(planAdmission({ waiting: ["old", "new"], running: [], maxBatch: 8, slots: s, policy: "mixed" })).toEqual([0]);
  });

  it("per-adapter baseline: only the running batch's adapter joins; an idle batch takes the oldest request's", () => {
    const s = slots(["a", "b"], 4);
    expect(planAdmission({ waiting: ["b", "a", "b", "a"], running: ["a"], maxBatch: 8, slots: s, policy: "per-adapter" })).toEqual([1, 3]);
    expect(planAdmission({ waiting: ["b", "a", "b", null], running: [], maxBatch: 8, slots: s, policy: "per-adapter" })).toEqual([0, 2]);
    expect(planAdmission({ waiting: [null, "a", null], running: [], maxBatch: 8, slots: s, policy: "per-adapter" })).toEqual([0, 2]);
  });
});
