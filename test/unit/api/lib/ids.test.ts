// Ids: prefix + time-ordered body, unique also within one millisecond and across refills of the random pool.
import { describe, expect, it } from "vitest";
import { newId, newSecret } from "../../../../api/src/lib/ids.js";

describe("newId", () => {
  it("sorts by creation time, and ids of one millisecond by the order they were made", () => {
    const ids = [newId("x_", 1_000), newId("x_", 1_000), newId("x_", 2_000), newId("x_", 36 ** 5)];
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^x_[0-9a-z]{24}$/);
  });

  it("stays unique over many refills of its random pool", () => {
    const seen = new Set<string>();
    // 12 random chars per id from a 4 KiB pool: 20 000 ids refill it ~60 times.
    for (let i = 0; i < 20_000; i++) seen.add(newId("u_", 5_000 + (i % 3)).slice(-12));
    expect(seen.size).toBe(20_000);
  });

  it("draws secrets separately: 48 hex chars, never repeated", () => {
    const a = newSecret("tsk_");
    expect(a).toMatch(/^tsk_[0-9a-f]{48}$/);
    expect(newSecret("tsk_")).not.toBe(a);
  });
});
