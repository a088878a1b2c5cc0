// insertUploadedAdapter on D1 (POST /v1/adapters' row write, api/src/adapters/store.ts): the batch that records the
// Idempotency-Key's answer ends with a delete of the row when the key is no longer this attempt's, and its
// RETURNING says so. The route cannot be stalled at that batch inside the Worker (the Node test stalls its db),
// so the store function runs here against D1 with the key's statements that upload-once.ts gives it.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { adapterRow, insertUploadedAdapter } from "../../api/src/adapters/store.js";
import type { AdapterFacts } from "../../api/src/adapters/validate.js";
import type { Db } from "../../api/src/db/client.js";
import { adapters, baseModels, idempotencyKeys } from "../../api/src/db/schema.js";
import { ApiError } from "../../api/src/errors.js";
import { claimKey, notAnsweredBy, settleKeyQuery, type KeyRef } from "../../api/src/lib/idempotency-keys.js";
import type { UploadKeyRecord } from "../../api/src/lib/upload-once.js";
import { createWorkerDeps } from "../../api/src/worker-deps.js";
import { tenant } from "./helpers.js";

const summary = { architecture: "LlamaForCausalLM", hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 256 };
const facts: AdapterFacts = { rank: 8, alpha: 16, useRslora: false, targetModules: ["q_proj"], dtype: "F32", tensorCount: 2 };

/** The key statements uploadOnce gives an attempt's upload (lib/upload-once.ts). */
const keyOf = (db: Db, ref: KeyRef, now: number): UploadKeyRecord => ({
  record: (id) => [settleKeyQuery(db, { ...ref, result: { id }, now })],
  takenOver: notAnsweredBy(db, ref),
  takenOverError: () => new ApiError("conflict", "taken over", "Idempotency-Key"),
  withdraw: () => [],
});

describe("worker: an uploaded adapter's row and its Idempotency-Key on D1", () => {
  it("keeps the row of the attempt that holds the key, and deletes that of one whose key a retry took over", async () => {
    const { db, blobs } = await createWorkerDeps(env as unknown as Record<string, unknown>, "https://x.test");
    const t = await tenant("adapter-takeover-d1");
    await db.insert(baseModels).values({ id: "micro-takeover", source: "models/micro-takeover/", config: JSON.stringify(summary), createdAt: 1 });
    const row = (id: string) => adapterRow(id, { tenantId: t.id, baseModel: "micro-takeover", facts, sizeBytes: 1, weightsSha256: "0", now: 1000 });
    const hash = "h".repeat(64);
    const rowIds = async () => (await db.select({ id: adapters.id }).from(adapters).where(eq(adapters.tenantId, t.id))).map((r) => r.id).sort();

    // Held by this attempt: the row stays, the key answers with it.
    const mine = { tenantId: t.id, key: "k-held", requestId: "req_a" };
    expect(await claimKey(db, { ...mine, hash, now: 1000 })).toEqual({ kind: "run" });
    expect(await insertUploadedAdapter(db, blobs, row("ad_held"), keyOf(db, mine, 1001))).toBe(true);
    expect(await rowIds()).toEqual(["ad_held"]);
    const [held] = await db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, "k-held"));
    expect(held).toMatchObject({ state: "done", requestId: "req_a", result: JSON.stringify({ id: "ad_held" }) });

    // Attempt A stalls past STALE_RUNNING_SECONDS; retry B takes the key over and answers it first.
    const a = { tenantId: t.id, key: "k-stale", requestId: "req_stalled" };
    const b = { ...a, requestId: "req_retry" };
    expect(await claimKey(db, { ...a, hash, now: 1000 })).toEqual({ kind: "run" });
    expect(await claimKey(db, { ...b, hash, now: 1061 })).toEqual({ kind: "run" });
    expect(await insertUploadedAdapter(db, blobs, row("ad_retry"), keyOf(db, b, 1062))).toBe(true);
    expect(await insertUploadedAdapter(db, blobs, row("ad_stalled"), keyOf(db, a, 1063))).toBe(false);
    expect(await rowIds()).toEqual(["ad_held", "ad_retry"]);
    const [stale] = await db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, "k-stale"));
    expect(stale).toMatchObject({ state: "done", requestId: "req_retry", result: JSON.stringify({ id: "ad_retry" }) });

    // Taken over by a retry still running: A's row goes too (the key is not A's to answer).
    const c = { tenantId: t.id, key: "k-running", requestId: "req_c" };
    expect(await claimKey(db, { ...c, hash, now: 1000 })).toEqual({ kind: "run" });
    expect(await claimKey(db, { ...c, requestId: "req_d", hash, now: 1061 })).toEqual({ kind: "run" });
    expect(await insertUploadedAdapter(db, blobs, row("ad_c"), keyOf(db, c, 1062))).toBe(false);
    expect(await rowIds()).toEqual(["ad_held", "ad_retry"]);
  });
});
