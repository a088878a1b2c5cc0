// Idempotency-Key bookkeeping (api/src/lib/idempotency-keys.ts, inference/idempotency.ts) on D1: claim, conflict, reuse for another
// request, billing only beyond what the key has paid, replay once done, stale take-over, expiry — with
// D1's SQL and batches. (Request ids differ across tests: usage rows are keyed by them, across tenants.)
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { KEY_TTL_SECONDS, STALE_RUNNING_SECONDS, claimKey, settleKey } from "../../api/src/lib/idempotency-keys.js";
import { meterKeyed } from "../../api/src/inference/idempotency.js";
import { idempotencyKeys, usageEvents } from "../../api/src/db/schema.js";
import { createWorkerDeps } from "../../api/src/worker-deps.js";
import { tenant } from "./helpers.js";

const deps = () => createWorkerDeps(env as unknown as Record<string, unknown>, "https://x.test");

describe("Idempotency-Key on D1", () => {
  it("claims, refuses, bills the difference and replays once done", async () => {
    const { db } = await deps();
    const t = await tenant("idem-d1");
    const key = { tenantId: t.id, key: "k1" };
    const billedRows = async () => (await db.select().from(usageEvents).where(eq(usageEvents.tenantId, t.id))).map((r) => [r.ref, r.kind, r.quantity]).sort();

    expect(await claimKey(db, { ...key, requestId: "req_a", hash: "h1", now: 100 })).toEqual({ kind: "run" });
    await expect(claimKey(db, { ...key, requestId: "req_b", hash: "h1", now: 101 })).rejects.toMatchObject({ code: "conflict", headers: { "Retry-After": "1" } });
    await expect(claimKey(db, { ...key, requestId: "req_b", hash: "h2", now: 101 })).rejects.toMatchObject({ code: "invalid_request", param: "Idempotency-Key" });

    // Attempt a is cut short after 3 tokens: billed, then left incomplete; attempt b runs the whole thing.
    await meterKeyed(db, { ...key, requestId: "req_a", model: "m", usage: { prompt_tokens: 7, completion_tokens: 3 }, now: 102 });
    await settleKey(db, { ...key, requestId: "req_a", result: null, now: 103 });
    expect(await claimKey(db, { ...key, requestId: "req_b", hash: "h1", now: 104 })).toEqual({ kind: "run" });
    await meterKeyed(db, { ...key, requestId: "req_b", model: "m", usage: { prompt_tokens: 7, completion_tokens: 10 }, now: 105 });
    // A late report from the old attempt bills nothing: it no longer holds the key.
    await meterKeyed(db, { ...key, requestId: "req_a", model: "m", usage: { prompt_tokens: 7, completion_tokens: 50 }, now: 105 });
    const result = { id: "chatcmpl-b", created: 105, text: "hello", finish_reason: "stop" as const, usage: { prompt_tokens: 7, completion_tokens: 10 } };
    await settleKey(db, { ...key, requestId: "req_b", result, now: 106 });
    expect(await billedRows()).toEqual([
      ["req_a", "completion_tokens", 3],
      ["req_a", "prompt_tokens", 7],
      ["req_b", "completion_tokens", 7],
    ]);
    expect(await claimKey(db, { ...key, requestId: "req_c", hash: "h1", now: 107 })).toEqual({ kind: "replay", result });
    // A second settle of an attempt that is over changes nothing.
    await settleKey(db, { ...key, requestId: "req_b", result: null, now: 108 });
    expect(await claimKey(db, { ...key, requestId: "req_c", hash: "h1", now: 109 })).toEqual({ kind: "replay", result });
  });

  it("takes over an attempt that stopped refreshing, billing the old one nothing more; expires keys a live attempt does not hold", async () => {
    const { db } = await deps();
    const t = await tenant("idem-d1-stale");
    const key = { tenantId: t.id, key: "k2" };
    expect(await claimKey(db, { ...key, requestId: "req_s1", hash: "h", now: 1000 })).toEqual({ kind: "run" });
    await expect(claimKey(db, { ...key, requestId: "req_s2", hash: "h", now: 1000 + STALE_RUNNING_SECONDS })).rejects.toMatchObject({ code: "conflict" });
    expect(await claimKey(db, { ...key, requestId: "req_s2", hash: "h", now: 1001 + STALE_RUNNING_SECONDS })).toEqual({ kind: "run" });
    await meterKeyed(db, { ...key, requestId: "req_s1", model: "m", usage: { prompt_tokens: 5, completion_tokens: 9 }, now: 1100 });
    await meterKeyed(db, { ...key, requestId: "req_s2", model: "m", usage: { prompt_tokens: 5, completion_tokens: 9 }, now: 1100 });
    const rows = await db.select().from(usageEvents).where(eq(usageEvents.tenantId, t.id));
    expect(rows.map((r) => [r.ref, r.quantity]).sort()).toEqual([["req_s2", 5], ["req_s2", 9]]);

    // A day on, an attempt that is still running (refreshed) keeps the key; once settled, the key starts over.
    const later = 1000 + KEY_TTL_SECONDS + 1;
    await db.update(idempotencyKeys).set({ updatedAt: later }).where(eq(idempotencyKeys.tenantId, t.id)); // its heartbeat
    await expect(claimKey(db, { ...key, requestId: "req_s3", hash: "other", now: later + 1 })).rejects.toMatchObject({ code: "invalid_request" });
    await settleKey(db, { ...key, requestId: "req_s2", result: null, now: later + 2 });
    expect(await claimKey(db, { ...key, requestId: "req_s3", hash: "other", now: later + 3 })).toEqual({ kind: "run" });
  });
});
