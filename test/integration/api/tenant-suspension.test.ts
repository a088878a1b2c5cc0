// An operator suspends a tenant: its keys answer 403 tenant_suspended, its queued jobs are not leased and
// not counted as queue depth; reinstated, it works again and its job is leased.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { createJob, registerMicroLlama, registerRunner, runnerCall, tenantWithFile } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

const patch = (id: string, json: unknown) => api.call("PATCH", `/admin/v1/tenants/${id}`, { token: api.admin, json });
const queued = async () => (await (await api.call("GET", "/admin/v1/metrics", { token: api.admin })).json()).jobs.queued as number;

describe("tenant suspension", () => {
  it("refuses the tenant's keys and holds its queued jobs until it is reinstated", async () => {
    const t = await tenantWithFile(api, "suspended");
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const runner = await registerRunner(api, "r-suspension");
    expect(await queued()).toBe(1);

    const suspended = await (await patch(t.id, { suspended: true })).json();
    expect(suspended.suspended_at).toEqual(expect.any(Number));
    const err = await expectError(await api.call("GET", "/v1/models", { token: t.key }), 403, "tenant_suspended");
    expect(err.message).toMatch(/suspended/);
    // Suspending again keeps the first time.
    expect((await (await patch(t.id, { suspended: true })).json()).suspended_at).toBe(suspended.suspended_at);
    expect(await queued()).toBe(0);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: runner })).status).toBe(204);
    // Other tenants are untouched.
    const other = await tenantWithFile(api, "active");
    expect((await api.call("GET", "/v1/models", { token: other.key })).status).toBe(200);

    expect((await (await patch(t.id, { suspended: false })).json()).suspended_at).toBeNull();
    expect((await api.call("GET", "/v1/models", { token: t.key })).status).toBe(200);
    expect(await queued()).toBe(1);
    const lease = await runnerCall(api, "/jobs/lease", { runner_id: runner });
    expect(lease.status).toBe(200);
    expect((await lease.json()).job.id).toBe(job.id);
  });
});
