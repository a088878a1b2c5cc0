import { describe, expect, it } from "vitest";
import { UploadSlots } from "../../../api/src/quotas/upload-slots.js";

describe("UploadSlots", () => {
  it("hands slots out up to its size, then to waiters in arrival order as slots are released", async () => {
    const slots = new UploadSlots(2);
    const r1 = await slots.take();
    const r2 = await slots.take();
    const order: string[] = [];
    const w3 = slots.take().then((r) => (order.push("third"), r));
    const w4 = slots.take().then((r) => (order.push("fourth"), r));
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    r1();
    r1(); // a second release of the same slot frees nothing more
    const r3 = await w3;
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(["third"]);
    r2();
    const r4 = await w4;
    expect(order).toEqual(["third", "fourth"]);
    r3();
    r4();
    // All free again: two are taken at once.
    await slots.take();
    await slots.take();
  });

  it("answers a waiter 503 with Retry-After once it has waited too long, and forgets it", async () => {
    const slots = new UploadSlots(1);
    const release = await slots.take();
    const err = await slots.take(20).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "unavailable", headers: { "Retry-After": "5" } });
    release();
    // The timed-out waiter took nothing: the slot is free.
    const again = await slots.take(20);
    again();
  });
});
