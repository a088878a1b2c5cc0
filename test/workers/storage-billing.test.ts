// Adapter storage billing on D1: the Worker's cron (scheduled) bills the days that have ended, the delete bills
// the rest in its batch, and no day is billed twice.
import { env } from "cloudflare:workers";
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { expect, it } from "vitest";
import worker from "../../api/src/worker.js";
import { call, tenant } from "./helpers.js";
import { adapterFiles, registerMicroLlama } from "./micro-llama.js";

const day = 86_400;

async function storageEvents(adapterId: string) {
  const rows = await env.DB.prepare("SELECT idempotency_key AS key, quantity FROM usage_events WHERE ref = ? AND kind = 'storage_byte_hours' ORDER BY created_at").bind(adapterId).all<{ key: string; quantity: number }>();
  return rows.results;
}

it("bills an adapter's ended days from the cron and its last day on delete, each once", async () => {
  await registerMicroLlama();
  const t = await tenant("storage");
  const form = new FormData();
  form.append("base_model", "micro-llama");
  for (const [name, bytes] of Object.entries(adapterFiles())) form.append(name === "adapter_config.json" ? "adapter_config" : "adapter_model", new Blob([bytes]), name);
  const up = await call("POST", "/v1/adapters", { token: t.key, body: form });
  expect(up.status).toBe(201);
  const adapter = (await up.json()) as { id: string; size_bytes: number };

  // Uploaded (as far as billing knows) at 12:00 two days ago.
  const now = Math.floor(Date.now() / 1000);
  const today = now - (now % day);
  await env.DB.prepare("UPDATE adapters SET created_at = ?1, storage_billed_until = ?1 WHERE id = ?2").bind(today - 2 * day + day / 2, adapter.id).run();

  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "17 * * * *" }), env as unknown as Record<string, unknown>, ctx);
  await waitOnExecutionContext(ctx);
  const dayName = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
  expect(await storageEvents(adapter.id)).toEqual([
    { key: `adapter:${adapter.id}:storage:${dayName(today - 2 * day)}`, quantity: adapter.size_bytes * 12 },
    { key: `adapter:${adapter.id}:storage:${dayName(today - day)}`, quantity: adapter.size_bytes * 24 },
  ]);

  // The admin call finds nothing left to bill; the delete bills today so far.
  const again = await call("POST", "/admin/v1/usage/bill-storage", { token: env.TUNESERVE_ADMIN_TOKEN as string });
  expect(await again.json()).toMatchObject({ billed_until: today, events: 0 });
  expect((await call("DELETE", `/v1/adapters/${adapter.id}`, { token: t.key })).status).toBe(200);
  const events = await storageEvents(adapter.id);
  expect(events.map((e) => e.key)).toEqual([0, 1, 2].map((i) => `adapter:${adapter.id}:storage:${dayName(today - (2 - i) * day)}`));
  expect(events[2].quantity).toBeLessThanOrEqual(adapter.size_bytes * 24);
});
