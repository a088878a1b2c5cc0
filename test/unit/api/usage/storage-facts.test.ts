// Adapter storage as usage facts: one per UTC day touched, in byte-hours, keyed by adapter and day.
import { describe, expect, it } from "vitest";
import { startOfDay, storageFacts, type StoredAdapter } from "../../../../api/src/usage/storage.js";

const day = 86_400;
const d0 = Date.UTC(2026, 10, 27) / 1000; // 2026-11-27 00:00 UTC
const adapter = (o: Partial<StoredAdapter> = {}): StoredAdapter => ({ id: "adp_1", tenantId: "ten_1", modelId: "ft:m:t:adp_1", sizeBytes: 3600, createdAt: d0 + 6 * 3600, storageBilledUntil: null, ...o });

describe("storageFacts", () => {
  it("bills each UTC day from creation: the first one in part, whole days after, the last up to the end", () => {
    const facts = storageFacts(adapter(), d0 + 2 * day + 3600);
    expect(facts.map((f) => [f.idempotencyKey, f.quantity, f.now])).toEqual([
      ["adapter:adp_1:storage:2026-11-27", 3600 * 18, d0 + 6 * 3600],
      ["adapter:adp_1:storage:2026-11-28", 3600 * 24, d0 + day],
      ["adapter:adp_1:storage:2026-11-29", 3600, d0 + 2 * day],
    ]);
    expect(facts.every((f) => f.kind === "storage_byte_hours" && f.tenantId === "ten_1" && f.model === "ft:m:t:adp_1" && f.ref === "adp_1")).toBe(true);
  });

  it("starts where billing stopped, and bills nothing up to there", () => {
    const a = adapter({ storageBilledUntil: d0 + day });
    expect(storageFacts(a, d0 + day)).toEqual([]);
    expect(storageFacts(a, d0 + 2 * day).map((f) => f.idempotencyKey)).toEqual(["adapter:adp_1:storage:2026-11-28"]);
  });

  it("rounds to whole byte-hours and leaves out a span too short to make one", () => {
    const a = adapter({ sizeBytes: 1000, createdAt: d0 });
    expect(storageFacts(a, d0 + 1)).toEqual([]); // 1000 B × 1 s = 0.28 byte-hours
    expect(storageFacts(a, d0 + 9)[0].quantity).toBe(3); // 2.5 → 3
  });

  it("keys the same day the same way whether it is billed whole by a sweep or up to a delete", () => {
    const swept = storageFacts(adapter(), d0 + day);
    const deleted = storageFacts(adapter(), d0 + day - 60);
    expect(deleted[0].idempotencyKey).toBe(swept[0].idempotencyKey);
  });

  it("finds the start of a UTC day", () => {
    expect(startOfDay(d0 + 12345)).toBe(d0);
    expect(startOfDay(d0)).toBe(d0);
  });
});
