// The Worker entry inside workerd with D1 and R2: tenants, API keys, isolation, errors, docs, startup checks.
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../api/src/worker.js";
import { call, expectError, tenant } from "./helpers.js";

describe("worker: tenants and API keys on D1", () => {
  it("serves /healthz", async () => {
    const res = await call("GET", "/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("creates a tenant whose key authenticates, lists and gets it", async () => {
    const t = await tenant("acme");
    expect(t.key).toMatch(/^ts_[0-9a-f]{48}$/);
    const list = (await (await call("GET", "/admin/v1/tenants", { token: env.TUNESERVE_ADMIN_TOKEN })).json()) as { data: { id: string }[] };
    expect(list.data.map((x) => x.id)).toContain(t.id);
    const one = await call("GET", `/admin/v1/tenants/${t.id}`, { token: env.TUNESERVE_ADMIN_TOKEN });
    expect(await one.json()).toMatchObject({ id: t.id, name: "acme", object: "tenant" });
    expect((await call("GET", "/v1/api_keys", { token: t.key })).status).toBe(200);
  });

  it("refuses wrong admin tokens and tenant keys on admin routes", async () => {
    await expectError(await call("GET", "/admin/v1/tenants", { token: "x".repeat(40) }), 401, "unauthorized");
    const t = await tenant();
    await expectError(await call("GET", "/admin/v1/tenants", { token: t.key }), 401, "unauthorized");
    await expectError(await call("GET", "/v1/api_keys"), 401, "unauthorized");
  });

  it("creates a key shown once, lists prefixes only, revokes it", async () => {
    const t = await tenant();
    const created = await call("POST", "/v1/api_keys", { token: t.key, json: { name: "ci" } });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string; prefix: string };
    expect(key.key.startsWith(key.prefix)).toBe(true);
    const list = (await (await call("GET", "/v1/api_keys", { token: t.key })).json()) as { data: unknown[] };
    expect(JSON.stringify(list)).not.toContain(key.key);
    expect(list.data).toHaveLength(2);
    expect((await call("GET", "/v1/api_keys", { token: key.key })).status).toBe(200);
    const revoked = (await (await call("DELETE", `/v1/api_keys/${key.id}`, { token: t.key })).json()) as { revoked_at: number };
    expect(revoked.revoked_at).toBeTypeOf("number");
    await expectError(await call("GET", "/v1/api_keys", { token: key.key }), 401, "unauthorized");
  });

  it("hides another tenant's key (404, never 403)", async () => {
    const a = await tenant("a");
    const b = await tenant("b");
    const key = (await (await call("POST", "/v1/api_keys", { token: a.key, json: { name: "x" } })).json()) as { id: string };
    await expectError(await call("DELETE", `/v1/api_keys/${key.id}`, { token: b.key }), 404, "not_found");
    const listB = (await (await call("GET", "/v1/api_keys", { token: b.key })).json()) as { data: { id: string }[] };
    expect(listB.data.map((k) => k.id)).not.toContain(key.id);
    // The key still works for its owner.
    const listA = (await (await call("GET", "/v1/api_keys", { token: a.key })).json()) as { data: { id: string; revoked_at: number | null }[] };
    expect(listA.data.find((k) => k.id === key.id)?.revoked_at).toBeNull();
  });

  it("counts a tenant's requests a minute on D1 and refuses the one past the limit", async () => {
    // The real clock: if the minute turns between the requests, the count starts over; a fresh tenant tries again.
    for (let attempt = 0; ; attempt++) {
      const t = await tenant("rate");
      const set = await call("PATCH", `/admin/v1/tenants/${t.id}`, { token: env.TUNESERVE_ADMIN_TOKEN, json: { limits: { requests_per_minute: 2 } } });
      expect(set.status).toBe(200);
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await call("GET", "/v1/models", { token: t.key }));
      if (attempt < 2 && answers.map((r) => r.headers.get("x-ratelimit-remaining-requests")).join() !== "1,0,0") continue;
      expect(answers.map((r) => r.status)).toEqual([200, 200, 429]);
      const err = await expectError(answers[2], 429, "rate_limited");
      expect(err.message).toContain("2 requests this minute");
      expect(Number(answers[2].headers.get("Retry-After"))).toBeGreaterThan(0);
      break;
    }
  });
});

describe("worker: errors and docs", () => {
  it("answers unknown routes, bad JSON and invalid fields with the envelope", async () => {
    const nope = await call("GET", "/nope");
    const err = await expectError(nope, 404, "not_found");
    expect(err.request_id).toMatch(/^req_/);
    expect(nope.headers.get("X-Request-Id")).toBe(err.request_id);
    const bad = await call("POST", "/admin/v1/tenants", { token: env.TUNESERVE_ADMIN_TOKEN, body: "{not json", headers: { "Content-Type": "application/json" } });
    await expectError(bad, 400, "invalid_json");
    const empty = await expectError(await call("POST", "/admin/v1/tenants", { token: env.TUNESERVE_ADMIN_TOKEN, json: { name: "" } }), 400, "invalid_request");
    expect(empty.param).toBe("name");
  });

  it("refuses oversized JSON bodies", async () => {
    const res = await call("POST", "/admin/v1/tenants", { token: env.TUNESERVE_ADMIN_TOKEN, json: { name: "x".repeat(2_000_000) } });
    await expectError(res, 413, "payload_too_large");
  });

  it("serves the OpenAPI document", async () => {
    const doc = (await (await call("GET", "/openapi.json")).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toContain("/v1/api_keys");
    expect(Object.keys(doc.paths)).toContain("/admin/v1/tenants");
  });

  it("records the migrations the way wrangler does (d1_migrations)", async () => {
    const rows = await env.DB.prepare("SELECT name FROM d1_migrations ORDER BY id").all<{ name: string }>();
    expect(rows.results.map((r) => r.name)).toEqual(env.TEST_MIGRATIONS.map((m) => m.name));
  });
});

describe("worker: startup checks", () => {
  const fetchWith = (e: Record<string, unknown>, path = "/healthz") =>
    worker.fetch(new Request(`https://startup.test${path}`), e, createExecutionContext());

  it("names a missing D1 binding and the fix", async () => {
    const err = await expectError(await fetchWith({ BLOBS: env.BLOBS }), 500, "internal_error");
    expect(err.message).toContain("DB");
    expect(err.message).toContain("d1_databases");
  });

  it("names the missing blob store and both ways to configure one", async () => {
    const err = await expectError(await fetchWith({ DB: env.DB }), 500, "internal_error");
    expect(err.message).toContain("BLOBS");
    expect(err.message).toContain("TUNESERVE_S3_BUCKET");
  });

  it("names an invalid setting", async () => {
    const err = await expectError(await fetchWith({ DB: env.DB, BLOBS: env.BLOBS, TUNESERVE_ADMIN_TOKEN: "short" }), 500, "internal_error");
    expect(err.message).toContain("TUNESERVE_ADMIN_TOKEN");
  });

  it("starts with the S3 store when no R2 bucket is bound", async () => {
    const e = { DB: env.DB, TUNESERVE_S3_BUCKET: "tuneserve-test", TUNESERVE_S3_ENDPOINT: "http://127.0.0.1:9", TUNESERVE_S3_ACCESS_KEY_ID: "k", TUNESERVE_S3_SECRET_ACCESS_KEY: "s" };
    const res = await fetchWith(e);
    expect(res.status).toBe(200);
    // S3 stores presign themselves, so the Worker does not serve /blobs/ links then.
    await expectError(await fetchWith(e, "/blobs/x?method=GET&expires=1&signature=x"), 404, "not_found");
  });
});
