// Prices on D1: the admin upsert on (kind, model) and the cost GET /v1/usage computes with them.
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { call, tenant } from "./helpers.js";

it("stores a price, replaces it, and costs a tenant's usage with it", async () => {
  const admin = env.TUNESERVE_ADMIN_TOKEN as string;
  const t = await tenant("priced");
  const now = Math.floor(Date.now() / 1000);
  await env.DB.prepare("INSERT INTO usage_events (id, idempotency_key, tenant_id, kind, model, quantity, ref, created_at) VALUES ('use_p1', 'w-price-1', ?, 'completion_tokens', 'm', 4000000, 'r', ?)").bind(t.id, now).run();
  for (const usd of [1, 2.5]) {
    const res = await call("PUT", "/admin/v1/prices", { token: admin, json: { kind: "completion_tokens", usd_per_million: usd } });
    expect(await res.json()).toMatchObject({ kind: "completion_tokens", model: null, usd_per_million: usd });
  }
  const list = (await (await call("GET", "/admin/v1/prices", { token: admin })).json()) as { data: unknown[] };
  expect(list.data).toHaveLength(1);
  const usage = (await (await call("GET", "/v1/usage?group_by=kind", { token: t.key })).json()) as { data: { kind: string; quantity: number; cost_usd: number | null }[] };
  expect(usage.data).toEqual([expect.objectContaining({ kind: "completion_tokens", quantity: 4_000_000, cost_usd: 10 })]);
});
