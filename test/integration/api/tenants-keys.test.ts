import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(() => api.close());

describe("admin tenants", () => {
  it("creates a tenant whose key authenticates, lists and gets it", async () => {
    const t = await api.tenant("acme");
    expect(t.key).toMatch(/^ts_[0-9a-f]{48}$/);
    const list = await (await api.call("GET", "/admin/v1/tenants", { token: api.admin })).json();
    expect(list.data.map((x: { id: string }) => x.id)).toContain(t.id);
    const one = await api.call("GET", `/admin/v1/tenants/${t.id}`, { token: api.admin });
    expect(await one.json()).toMatchObject({ id: t.id, name: "acme", object: "tenant" });
    expect((await api.call("GET", "/v1/api_keys", { token: t.key })).status).toBe(200);
  });

  it("refuses a wrong admin token and a tenant key on admin routes", async () => {
    await expectError(await api.call("GET", "/admin/v1/tenants", { token: "x".repeat(40) }), 401, "unauthorized");
    const t = await api.tenant();
    await expectError(await api.call("GET", "/admin/v1/tenants", { token: t.key }), 401, "unauthorized");
    await expectError(await api.call("GET", "/admin/v1/tenants"), 401, "unauthorized");
    // Tokens of another length than the admin token's are refused like any other wrong one.
    for (const wrong of [api.admin.slice(0, -1), `${api.admin}0`, api.admin.slice(0, 16)]) {
      await expectError(await api.call("GET", "/admin/v1/tenants", { token: wrong }), 401, "unauthorized");
    }
  });

  it("says so when the admin or runner token is sent to a tenant route, where a tenant's key belongs", async () => {
    const admin = await expectError(await api.call("GET", "/v1/models", { token: api.admin }), 401, "unauthorized");
    expect(admin.message).toBe("invalid or revoked API key: this is the admin token, which opens /admin/* only; send a tenant's API key (POST /admin/v1/tenants returns one)");
    const runner = await expectError(await api.call("GET", "/v1/models", { token: api.runner }), 401, "unauthorized");
    expect(runner.message).toBe("invalid or revoked API key: this is the runner token, which opens /internal/* only; send a tenant's API key (POST /admin/v1/tenants returns one)");
    expect((await expectError(await api.call("GET", "/v1/models", { token: "ts_wrong" }), 401, "unauthorized")).message).toBe("invalid or revoked API key");
  });

  it("validates the body with the offending param", async () => {
    const err = await expectError(await api.call("POST", "/admin/v1/tenants", { token: api.admin, json: { name: "" } }), 400, "invalid_request");
    expect(err.param).toBe("name");
    // A field left out is called missing, not "Invalid input … received undefined" (zod's words).
    const missing = await expectError(await api.call("POST", "/admin/v1/tenants", { token: api.admin, json: {} }), 400, "invalid_request");
    expect(missing).toMatchObject({ param: "name", message: "name: missing; this field is required (a string)" });
    const wrongType = await expectError(await api.call("POST", "/admin/v1/tenants", { token: api.admin, json: { name: 5 } }), 400, "invalid_request");
    expect(wrongType.message).toBe("name: Invalid input: expected string, received number");
    expect(err.request_id).toMatch(/^req_/);
    const bad = await api.call("POST", "/admin/v1/tenants", { token: api.admin, body: "{not json", headers: { "Content-Type": "application/json" } });
    await expectError(bad, 400, "invalid_json");
  });

  it("paginates with after/limit", async () => {
    for (let i = 0; i < 3; i++) await api.tenant(`p${i}`);
    const first = await (await api.call("GET", "/admin/v1/tenants?limit=2", { token: api.admin })).json();
    expect(first.data).toHaveLength(2);
    expect(first.has_more).toBe(true);
    const second = await (await api.call("GET", `/admin/v1/tenants?limit=2&after=${first.last_id}`, { token: api.admin })).json();
    expect(second.data[0].id < first.last_id).toBe(true);
    const bad = await expectError(await api.call("GET", "/admin/v1/tenants?after=bogus", { token: api.admin }), 400, "invalid_request");
    expect(bad).toMatchObject({ param: "after", message: expect.stringMatching(/after must be the id of one of this list's objects \(ten_…\)/) });
    // However limit is wrong, the message says what it takes (zod's own said "received NaN" of "abc").
    for (const q of ["limit=abc", "limit=0", "limit=1.5", "limit=101", "limit=5&limit=6"]) {
      const err = await expectError(await api.call("GET", `/admin/v1/tenants?${q}`, { token: api.admin }), 400, "invalid_request");
      expect(err, q).toMatchObject({ param: "limit", message: "limit: limit must be a whole number from 1 to 100, sent once" });
    }
  });

  it("answers 404 for admin routes when no admin token is configured", async () => {
    const bare = await startTestApi();
    bare.deps.config.TUNESERVE_ADMIN_TOKEN = undefined;
    await expectError(await bare.call("GET", "/admin/v1/tenants", { token: "anything-long-enough" }), 404, "not_found");
    await bare.close();
  });
});

describe("api keys", () => {
  it("creates a key shown once, lists prefixes only, revokes", async () => {
    const t = await api.tenant();
    const created = await api.call("POST", "/v1/api_keys", { token: t.key, json: { name: "ci" } });
    expect(created.status).toBe(201);
    const key = await created.json();
    expect(key.key.startsWith(key.prefix)).toBe(true);
    const list = await (await api.call("GET", "/v1/api_keys", { token: t.key })).json();
    expect(JSON.stringify(list)).not.toContain(key.key);
    expect(list.data).toHaveLength(2);
    expect((await api.call("GET", "/v1/api_keys", { token: key.key })).status).toBe(200);
    const revoked = await (await api.call("DELETE", `/v1/api_keys/${key.id}`, { token: t.key })).json();
    expect(revoked.revoked_at).toBeTypeOf("number");
    await expectError(await api.call("GET", "/v1/api_keys", { token: key.key }), 401, "unauthorized");
  });

  it("keeps the last active key (409), and the admin API issues a tenant a new one", async () => {
    const t = await api.tenant();
    const [only] = (await (await api.call("GET", "/v1/api_keys", { token: t.key })).json()).data;
    const last = await expectError(await api.call("DELETE", `/v1/api_keys/${only.id}`, { token: t.key }), 409, "conflict");
    expect(last).toMatchObject({ param: "key_id", message: expect.stringContaining("last active API key") });
    expect((await api.call("GET", "/v1/api_keys", { token: t.key })).status).toBe(200);

    const issued = await api.call("POST", `/admin/v1/tenants/${t.id}/api_keys`, { token: api.admin, json: { name: "recovery" } });
    expect(issued.status).toBe(201);
    const fresh = await issued.json();
    expect(fresh).toMatchObject({ object: "api_key", name: "recovery", revoked_at: null });
    // Now the first key may go, and the new one works.
    expect((await (await api.call("DELETE", `/v1/api_keys/${only.id}`, { token: fresh.key })).json()).revoked_at).toBeTypeOf("number");
    expect((await api.call("GET", "/v1/api_keys", { token: fresh.key })).status).toBe(200);
    await expectError(await api.call("POST", "/admin/v1/tenants/ten_nope/api_keys", { token: api.admin }), 404, "not_found");
    await expectError(await api.call("POST", `/admin/v1/tenants/${t.id}/api_keys`, { token: fresh.key }), 401, "unauthorized");
  });

  it("refuses a field it does not have rather than issue a key without it", async () => {
    const t = await api.tenant();
    for (const [path, token] of [["/v1/api_keys", t.key], [`/admin/v1/tenants/${t.id}/api_keys`, api.admin]]) {
      const err = await expectError(await api.call("POST", path, { token, json: { name: "ro", scopes: ["files.read"] } }), 400, "invalid_request");
      expect(err.param).toBe("scopes");
    }
    expect((await (await api.call("GET", "/v1/api_keys", { token: t.key })).json()).data).toHaveLength(1);
  });

  it("reads the name whichever JSON Content-Type carries it, and defaults it without a body", async () => {
    const t = await api.tenant();
    for (const type of ["Application/JSON", "application/vnd.api+json; charset=utf-8"]) {
      const res = await api.call("POST", "/v1/api_keys", { token: t.key, body: '{"name":"ci"}', headers: { "Content-Type": type } });
      expect((await res.json()).name, type).toBe("ci");
    }
    expect((await (await api.call("POST", "/v1/api_keys", { token: t.key })).json()).name).toBe("unnamed");
    const issued = await api.call("POST", `/admin/v1/tenants/${t.id}/api_keys`, { token: api.admin, body: '{"name":"ops"}', headers: { "Content-Type": "application/merge-patch+json" } });
    expect((await issued.json()).name).toBe("ops");
  });

  it("hides another tenant's key (404, never 403)", async () => {
    const a = await api.tenant("a");
    const b = await api.tenant("b");
    const key = await (await api.call("POST", "/v1/api_keys", { token: a.key, json: { name: "x" } })).json();
    await expectError(await api.call("DELETE", `/v1/api_keys/${key.id}`, { token: b.key }), 404, "not_found");
    const listB = await (await api.call("GET", "/v1/api_keys", { token: b.key })).json();
    expect(listB.data.map((k: { id: string }) => k.id)).not.toContain(key.id);
  });
});

describe("errors and docs", () => {
  it("names the Content-Type a JSON route takes", async () => {
    const res = await api.call("POST", "/admin/v1/tenants", { token: api.admin, body: '{"name":"x"}' });
    expect((await expectError(res, 415, "unsupported_media_type")).message).toBe("Content-Type 'text/plain;charset=UTF-8' is not taken here: send the body as JSON with Content-Type: application/json");
  });
  it("serves the OpenAPI document", async () => {
    const doc = await (await api.call("GET", "/openapi.json")).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toContain("/v1/api_keys");
    // Both fine-tuning methods, and the adapter defaults a new adapter gets.
    const methods = JSON.stringify(doc.components.schemas.FineTuningMethod);
    expect(methods).toContain('"dpo"');
    expect(methods).toContain('"supervised"');
    const job = doc.paths["/v1/fine_tuning/jobs"].post.requestBody.content["application/json"].schema;
    const create = job.$ref ? doc.components.schemas[job.$ref.split("/").pop()] : job;
    expect(JSON.stringify(create.properties.adapter)).toContain('"default":8');
    // Generated clients see the headers that retries depend on.
    for (const [path, ok] of [["/v1/chat/completions", "200"], ["/v1/completions", "200"], ["/v1/fine_tuning/jobs", "200"], ["/v1/files", "201"], ["/v1/adapters", "201"]]) {
      const responses = doc.paths[path].post.responses;
      expect(Object.keys(responses[ok].headers), path).toEqual(["Idempotent-Replayed"]);
      expect(Object.keys(responses["409"].headers), path).toEqual(["Retry-After"]);
    }
    expect(Object.keys(doc.paths["/v1/chat/completions"].post.responses["429"].headers)).toEqual(["Retry-After"]);
  });
  it("answers unknown routes with the envelope", async () => {
    await expectError(await api.call("GET", "/nope"), 404, "not_found");
  });
  it("refuses oversized JSON bodies, however their Content-Type is spelled", async () => {
    const res = await api.call("POST", "/admin/v1/tenants", { token: api.admin, json: { name: "x".repeat(2_000_000) } });
    // The message names the setting, as the upload limits name theirs.
    expect((await expectError(res, 413, "payload_too_large")).message).toBe("request body exceeds 1048576 bytes (TUNESERVE_MAX_BODY_BYTES)");
    expect(res.headers.get("Connection")).toBe("close");
    for (const type of ["Application/JSON", "application/x+json"]) {
      const body = JSON.stringify({ name: "x".repeat(2_000_000) });
      await expectError(await api.call("POST", "/admin/v1/tenants", { token: api.admin, body, headers: { "Content-Type": type } }), 413, "payload_too_large");
    }
  });
});

describe("admin metrics", () => {
  it("reports queue depth as JSON and Prometheus text", async () => {
    const json = await (await api.call("GET", "/admin/v1/metrics", { token: api.admin })).json();
    expect(json).toEqual({ jobs: { queued: 0, running: 0, needing_runner: 0, waiting_for_checkpoint_format: 0 }, runners: { active: 0 } });
    const text = await (await api.call("GET", "/admin/v1/metrics?format=prometheus", { token: api.admin })).text();
    expect(text).toContain("tuneserve_jobs_queued 0");
    const t = await api.tenant();
    await expectError(await api.call("GET", "/admin/v1/metrics", { token: t.key }), 401, "unauthorized");
  });
});

describe("unrouted requests", () => {
  it("answers 405 with Allow for a known path and a wrong method, 404 for an unknown path", async () => {
    const t = await api.tenant("methods");
    const res = await api.call("GET", "/v1/chat/completions", { token: t.key });
    const err = await expectError(res, 405, "method_not_allowed");
    expect(res.headers.get("Allow")).toBe("POST");
    expect(err.message).toMatch(/GET is not allowed on \/v1\/chat\/completions; use POST/);
    const withParam = await api.call("PUT", "/v1/models/some-model", { token: t.key });
    await expectError(withParam, 405, "method_not_allowed");
    expect(withParam.headers.get("Allow")?.split(", ").sort()).toEqual(["DELETE", "GET", "HEAD"]);
    await expectError(await api.call("GET", "/v1/nothing-here", { token: t.key }), 404, "not_found");
    // A wildcard route ("/blobs/*") matches the rest of the path.
    await expectError(await api.call("DELETE", "/blobs/some/key"), 405, "method_not_allowed");
  });
});
