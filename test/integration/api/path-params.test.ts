// Ids in paths are bounded: a megabyte-long id is a 400 naming the parameter, not a 404 that echoes it back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";

let api: TestApi;
let key: string;
beforeAll(async () => {
  api = await startTestApi();
  key = (await api.tenant()).key;
});
afterAll(() => api.close());

describe("path parameters", () => {
  const long = "x".repeat(5000);
  it.each([
    ["GET", "/v1/adapters/{id}", "tenant", "adapter_id"],
    ["DELETE", "/v1/api_keys/{id}", "tenant", "key_id"],
    ["GET", "/v1/models/{id}", "tenant", "model"],
    ["GET", "/admin/v1/models/{id}", "admin", "model_id"],
    ["GET", "/admin/v1/runners/{id}", "admin", "runner_id"],
    ["GET", "/admin/v1/tenants/{id}", "admin", "tenant_id"],
  ])("%s %s with a 5000-character id is a short 400 naming the parameter", async (method, route, who, param) => {
    const err = await expectError(await api.call(method, route.replace("{id}", long), { token: who === "admin" ? api.admin : key }), 400, "invalid_request");
    expect(err.param).toBe(param);
    expect(err.message.length).toBeLessThan(500);
  });
});
