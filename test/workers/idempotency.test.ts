// Idempotency-Key bookkeeping (api/src/inference/idempotency.ts) on D1: claim, conflict, reuse for another
// request, billing only beyond what the key has paid, replay once done, expiry — with D1's SQL and batches.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { KEY_TTL_SECONDS, STALE_RUNNING_SECONDS, claimKey, meterKeyed, settleKey } from "../../api/src/inference/idempotency.js";
import { usageEvents } from "../../api/src/db/schema.js";
import { createWorkerDeps } from "../../api/src/worker-deps.js";
import { tenant } from "./helpers.js";

describe("Idempotency-Key on D1", () => {
  it("claims, refuses, bills the difference, replays and expires", async () => {
    const { db } = await createWorkerDeps(env as unknown as Record<string, unknown>, "https://x.test");
    const t = await tenant("idem-d1");
    const key = { tenantId: t.id, key: "k1" };
    const zero = { prompt_tokens: 0, completion_tokens: 0 };

    expect(await claimKey(db, { ...key, requestId: "req_a", hash: "h1", now: 100 })).toEqual({ kind: "run", billed: zero });
    await expect(claimKey(db, { ...key, requestId: "req_b", hash: "h1", now: 101 })).rejects.toMatchObject({ code: "conflict", headers: { "Retry-After": "1" } });
    await expect(claimKey(db, { ...key, requestId: "req_b", hash: "h2", now: 101 })).rejects.toMatchObject({ code: "invalid_request", param: "Idempotency-Key" });

    // Attempt a is cut short after 3 tokens: billed, then left incomplete; attempt b runs the whole thing.
    await meterKeyed(db, { ...key, requestId: "req_a", model: "m", usage: { prompt_tokens: 7, completion_tokens: 3 }, billed: zero, now: 102 });
    await settleKey(db, { ...key, requestId: "req_a", result: null, now: 103 });
    const b = await claimKey(db, { ...key, requestId: "req_b", hash: "h1", now: 104 });
    expect(b).toEqual({ kind: "run", billed: { prompt_tokens: 7, completion_tokens: 3 } });
    if (b.kind !== "run") throw new Error("unreachable");
    await meterKeyed(db, { ...key, requestId: "req_b", model: "m", usage: { prompt_tokens: 7, completion_tokens: 10 }, billed: b.billed, now: 105 });
    const result = { id: "chatcmpl-b", created: 105, text: "hello", finish_reason: "stop" as const, usage: { prompt_tokens: 7, completion_tokens: 10 } };
    await settleKey(db, { ...key, requestId: "req_b", result, now: 106 });
    const rows = await db.select().from(usageEvents).where(eq(usageEvents.tenantId, t.id));
    expect(rows.map((r) => [r.ref, r.kind, r.quantity]).sort()).toEqual([
      ["req_a", "completion_tokens", 3],
      ["req_a", "prompt_tokens", 7],
      ["req_b", "completion_tokens", 7],
    ]);

    expect(await claimKey(db, { ...key, requestId: "req_c", hash: "h1", now: 107 })).toEqual({ kind: "replay", result });
    // A day later the key is new again (and may name another request).
    expect(await claimKey(db, { ...key, requestId: "req_d", hash: "h2", now: 100 + KEY_TTL_SECONDS + 1 })).toEqual({ kind: "run", billed: zero });
    // An attempt whose API instance died is taken over once it is stale.
    await expect(claimKey(db, { ...key, requestId: "req_e", hash: "h2", now: 200 + KEY_TTL_SECONDS })).rejects.toMatchObject({ code: "conflict" });
    expect(await claimKey(db, { ...key, requestId: "req_e", hash: "h2", now: 102 + KEY_TTL_SECONDS + STALE_RUNNING_SECONDS })).toEqual({ kind: "run", billed: zero });
  });
});
