// GET /admin/v1/usage/events: usage as CloudEvents in the order it was recorded, paged by a seq cursor.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordUsage, type UsageKind } from "../../../api/src/usage/record.js";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(() => api.close());

const admin = (path: string, token = api.admin) => api.call("GET", `/admin/v1${path}`, { token });
const bill = (tenantId: string, key: string, kind: UsageKind, quantity: number, now: number) =>
  recordUsage(api.deps.db, { idempotencyKey: key, tenantId, kind, model: "m", quantity, ref: key.split(":")[1], now });

describe("usage export", () => {
  it("pages through every event in recording order, as CloudEvents, and filters by tenant", async () => {
    const a = await api.tenant("export-a");
    const b = await api.tenant("export-b");
    // Recorded in this order, though the second one's timestamp is earlier (a late commit).
    await bill(a.id, "req:r1:prompt_tokens", "prompt_tokens", 5, 1_800_000_100);
    await bill(b.id, "job:j1:training_tokens", "training_tokens", 900, 1_800_000_050);
    await bill(a.id, "req:r1:completion_tokens", "completion_tokens", 7, 1_800_000_101);
    expect(await bill(a.id, "req:r1:completion_tokens", "completion_tokens", 7, 1_800_000_102)).toBe(false);

    const first = await (await admin("/usage/events?limit=2")).json();
    expect(first.has_more).toBe(true);
    expect(first.data.map((e: { id: string }) => e.id)).toEqual(["req:r1:prompt_tokens", "job:j1:training_tokens"]);
    expect(first.data[1]).toEqual({
      specversion: "1.0",
      id: "job:j1:training_tokens",
      source: "/tuneserve/usage",
      type: "dev.tuneserve.usage.training_tokens",
      subject: b.id,
      time: new Date(1_800_000_050_000).toISOString(),
      datacontenttype: "application/json",
      data: { tenant_id: b.id, kind: "training_tokens", model: "m", quantity: 900, ref: "j1" },
    });
    const rest = await (await admin(`/usage/events?limit=2&after=${first.next_cursor}`)).json();
    expect(rest.data.map((e: { id: string }) => e.id)).toEqual(["req:r1:completion_tokens"]);
    expect(rest.has_more).toBe(false);
    // At the end the cursor stays put, so the next poll picks up what is recorded after.
    const empty = await (await admin(`/usage/events?after=${rest.next_cursor}`)).json();
    expect(empty).toMatchObject({ data: [], has_more: false, next_cursor: rest.next_cursor });
    await bill(b.id, "req:r2:prompt_tokens", "prompt_tokens", 3, 1_800_000_200);
    expect((await (await admin(`/usage/events?after=${rest.next_cursor}`)).json()).data.map((e: { id: string }) => e.id)).toEqual(["req:r2:prompt_tokens"]);

    const onlyA = await (await admin(`/usage/events?tenant_id=${a.id}`)).json();
    expect(onlyA.data.map((e: { subject: string }) => e.subject)).toEqual([a.id, a.id]);
  });

  it("shapes the same events as Stripe meter events, with each tenant's Stripe customer", async () => {
    const billed = await (await api.call("POST", "/admin/v1/tenants", { token: api.admin, json: { name: "stripe-a", stripe_customer_id: "cus_Abc123" } })).json();
    expect(billed.stripe_customer_id).toBe("cus_Abc123");
    const unset = await api.tenant("stripe-b");
    await bill(billed.id, "req:s1:prompt_tokens", "prompt_tokens", 12, 1_800_000_300);
    await bill(unset.id, "req:s2:completion_tokens", "completion_tokens", 4, 1_800_000_301);
    const all = await (await admin(`/usage/events?limit=1000`)).json();
    const before = all.data.length - 2;
    const page = await (await admin(`/usage/stripe-meter-events?limit=1000`)).json();
    expect(page.next_cursor).toBe(all.next_cursor);
    expect(page.data.slice(before)).toEqual([
      { event_name: "tuneserve_prompt_tokens", identifier: "req:s1:prompt_tokens", timestamp: 1_800_000_300, payload: { stripe_customer_id: "cus_Abc123", value: "12" } },
      { event_name: "tuneserve_completion_tokens", identifier: "req:s2:completion_tokens", timestamp: 1_800_000_301, payload: { stripe_customer_id: null, value: "4" } },
    ]);
    // Set later, the customer shows on all of the tenant's events, earlier ones too (it is read with the page);
    // a bad id is refused.
    expect((await api.call("PATCH", `/admin/v1/tenants/${unset.id}`, { token: api.admin, json: { stripe_customer_id: "cus_Later9" } })).status).toBe(200);
    expect((await (await admin(`/usage/stripe-meter-events?tenant_id=${unset.id}`)).json()).data[0].payload.stripe_customer_id).toBe("cus_Later9");
    expect((await expectError(await api.call("PATCH", `/admin/v1/tenants/${unset.id}`, { token: api.admin, json: { stripe_customer_id: "acct_1" } }), 400, "invalid_request")).param).toBe("stripe_customer_id");
  });

  it("is for the admin only and names a bad cursor", async () => {
    const t = await api.tenant("export-c");
    await expectError(await admin("/usage/events", t.key), 401, "unauthorized");
    expect((await expectError(await admin("/usage/events?after=use_123"), 400, "invalid_request")).param).toBe("after");
    // A cursor past the newest event would silently skip what comes next.
    expect((await expectError(await admin("/usage/events?after=999999"), 400, "invalid_request")).message).toMatch(/past the newest event/);
    // An empty cursor (a template filled with nothing) starts at the beginning.
    expect((await admin("/usage/events?after=&limit=1")).status).toBe(200);
  });
});
