// Adapter storage billing through the HTTP API: each UTC day an adapter is kept is billed once in byte-hours,
// days that have ended by the hourly run (POST /admin/v1/usage/bill-storage), the last ones by the delete.
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { microLlamaAdapterForm, registerMicroLlama } from "../../helpers/jobs.js";
import { deleteAdapter } from "../../../api/src/adapters/store.js";
import { runBatch } from "../../../api/src/db/batch.js";
import { adapters, usageEvents } from "../../../api/src/db/schema.js";
import { storageBillOnDelete } from "../../../api/src/usage/storage.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

const day = 86_400;
const billStorage = async () => {
  const res = await api.call("POST", "/admin/v1/usage/bill-storage", { token: api.admin });
  expect(res.status).toBe(200);
  return (await res.json()) as { object: string; billed_until: number; adapters: number; events: number };
};

async function uploadAdapter(key: string) {
  const f = microLlamaAdapterForm();
  const res = await api.call("POST", "/v1/adapters", { token: key, body: f });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; model: string; size_bytes: number; created_at: number };
}

async function storageUsage(key: string, start: number) {
  const res = await api.call("GET", `/v1/usage?start=${start}&end=${start + 10 * day}&group_by=day,kind`, { token: key });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data: { start_time: number; kind: string; quantity: number }[]; quota: { month_tokens: number } };
  return { days: body.data.filter((b) => b.kind === "storage_byte_hours").map((b) => [b.start_time, b.quantity]), monthTokens: body.quota.month_tokens };
}

describe("adapter storage billing", () => {
  it("bills every day an adapter is kept, once, and only its own tenant", async () => {
    const a = await api.tenant("storage-a");
    const b = await api.tenant("storage-b");
    const adapter = await uploadAdapter(a.key);
    const created = adapter.created_at;
    const d0 = created - (created % day);
    const byteHours = (seconds: number) => Math.round((adapter.size_bytes * seconds) / 3600);

    // The same day: nothing has ended yet.
    expect((await billStorage()).events).toBe(0);
    // Two days on: the first day from the upload, and the whole second one.
    api.advance(2 * day);
    const run = await billStorage();
    expect(run).toMatchObject({ object: "storage_billing", billed_until: d0 + 2 * day, events: 2 });
    expect((await billStorage()).events).toBe(0);
    expect((await storageUsage(a.key, d0)).days).toEqual([
      [d0, byteHours(d0 + day - created)],
      [d0 + day, byteHours(day)],
    ]);

    // Deleted at 06:00 the day after next: the day before is billed whole and the last day up to the delete,
    // by the delete itself; the run after adds nothing.
    api.advance(d0 + 3 * day + 6 * 3600 - api.deps.now());
    expect((await api.call("DELETE", `/v1/adapters/${adapter.id}`, { token: a.key })).status).toBe(200);
    api.advance(day);
    expect((await billStorage()).events).toBe(0);
    const usage = await storageUsage(a.key, d0);
    expect(usage.days).toEqual([
      [d0, byteHours(d0 + day - created)],
      [d0 + day, byteHours(day)],
      [d0 + 2 * day, byteHours(day)],
      [d0 + 3 * day, byteHours(6 * 3600)],
    ]);
    // Byte-hours are not tokens: the monthly token quota does not count them.
    expect(usage.monthTokens).toBe(0);
    expect((await storageUsage(b.key, d0)).days).toEqual([]);

    const events = await (await api.call("GET", `/admin/v1/usage/events?tenant_id=${a.id}`, { token: api.admin })).json();
    const dayName = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
    expect(events.data.map((e: { id: string }) => e.id)).toEqual([0, 1, 2, 3].map((i) => `adapter:${adapter.id}:storage:${dayName(d0 + i * day)}`));
    expect(events.data[0]).toMatchObject({ type: "dev.tuneserve.usage.storage_byte_hours", data: { kind: "storage_byte_hours", model: adapter.model, ref: adapter.id } });
  });

  it("bills nothing for a delete that lost a race to another one", async () => {
    const t = await api.tenant("storage-race");
    const adapter = await uploadAdapter(t.key);
    const db = api.deps.db;
    // The loser read the row before the winner deleted it, and bills up to a later time (the next day).
    const [row] = await db.select().from(adapters).where(eq(adapters.id, adapter.id));
    expect(await deleteAdapter(db, api.deps.blobs, t.id, adapter.id, api.deps.now())).toBe(true);
    const late = api.deps.now() + day;
    await runBatch(db, [...storageBillOnDelete(db, row, late), db.delete(adapters).where(eq(adapters.id, adapter.id))]);
    const keys = (await db.select({ key: usageEvents.idempotencyKey }).from(usageEvents).where(eq(usageEvents.ref, adapter.id))).map((e) => e.key);
    expect(keys.every((k) => !k.endsWith(new Date(late * 1000).toISOString().slice(0, 10)))).toBe(true);
  });

  it("is an admin call", async () => {
    const t = await api.tenant("storage-c");
    await expectError(await api.call("POST", "/admin/v1/usage/bill-storage", { token: t.key }), 401, "unauthorized");
  });
});
