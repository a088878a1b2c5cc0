// Admission decisions of the continuous batcher: room, slot limits, order, the per-adapter baseline, tenants
// taking turns, each tenant's share of the queue, and which joiners share a prefill row.
import { describe, expect, it } from "vitest";
import { inTurns, planAdmission, sharedPrefillRows, type SlotView } from "../../../gpu-runner/src/serve/batch.js";
import { TenantShares } from "../../../gpu-runner/src/serve/tenant-share.js";

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

describe("inTurns", () => {
  it("lets tenants take turns, each first come first served, in the order of their oldest request", () => {
    expect(inTurns(["a", "a", "a", "b", "c", "b"])).toEqual([0, 3, 4, 1, 5, 2]);
    expect(inTurns([undefined, "a", undefined])).toEqual([0, 1, 2]);
    expect(inTurns([])).toEqual([]);
  });

  it("puts the tenant served longest ago (or never) first", () => {
    expect(inTurns(["a", "a", "b"], new Map([["a", 7]]))).toEqual([2, 0, 1]);
    expect(inTurns(["a", "b", "c"], new Map([["a", 5], ["b", 3]]))).toEqual([2, 1, 0]);
  });
});

describe("TenantShares", () => {
  it("refuses what would pass a tenant's share, gives back, and lets an idle tenant ask for many", () => {
    const s = new TenantShares(3);
    expect(s.take("a", 2)).toBe(true);
    expect(s.take("a", 2)).toBe(false);
    expect(s.of("a")).toBe(2);
    expect(s.take("b", 3)).toBe(true);
    expect(s.take("a", 1)).toBe(true);
    s.give("a", 3);
    expect(s.of("a")).toBe(0);
    expect(s.take("a", 5)).toBe(true);
  });
});

describe("sharedPrefillRows", () => {
  it("gives joiners with the same prompt and slot one row, and a different slot or prompt its own", () => {
    const j = (tokens: number[], slot: number) => ({ req: { tokens }, slot });
    const joining = [j([1, 2], 1), j([1, 2], 1), j([1, 2], 2), j([1, 2, 3], 1), j([1, 2], 1), j([12], 1)];
    const { unique, prefillRow } = sharedPrefillRows(joining);
    expect(unique).toEqual([joining[0], joining[2], joining[3], joining[5]]);
    expect(unique[0]).toBe(joining[0]);
    expect(prefillRow).toEqual([0, 0, 1, 2, 0, 3]);
  });
});
