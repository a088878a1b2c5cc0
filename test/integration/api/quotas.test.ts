// Tenant quotas through the HTTP API: the deployment's defaults, an admin's per-tenant limits, and the 429
// `quota_exceeded` answers for active jobs, kept adapters and monthly tokens, and `rate_limited` for requests a minute.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { createJob, microLlamaAdapterForm, registerMicroLlama, registerRunner, runnerCall, uploadFile } from "../../helpers/jobs.js";
import { adapterQuotaOverrun, jobQuotaOverrun, monthOf } from "../../../api/src/quotas/limits.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_ACTIVE_JOBS: "2", TUNESERVE_MAX_ADAPTERS: "5" });
  await registerMicroLlama(api);
});
afterAll(() => api.close());

const admin = (method: string, path: string, json?: unknown) => api.call(method, `/admin/v1${path}`, { token: api.admin, json });

async function tenantWith(limits?: Record<string, number | null>) {
  const res = await admin("POST", "/tenants", { name: "q", limits });
  expect(res.status).toBe(201);
  const t = (await res.json()) as { id: string; api_key: string; limits: Record<string, number | null> };
  return { id: t.id, key: t.api_key, limits: t.limits, fileId: await uploadFile(api, t.api_key) };
}

const tryJob = (key: string, fileId: string) => api.call("POST", "/v1/fine_tuning/jobs", { token: key, json: { model: "micro-llama", training_file: fileId } });

function uploadAdapter(key: string) {
  const f = microLlamaAdapterForm();
  return api.call("POST", "/v1/adapters", { token: key, body: f });
}

describe("tenant quotas", () => {
  it("shows the deployment's limits on a tenant, and an admin's own ones once set", async () => {
    const t = await tenantWith();
    expect(t.limits).toEqual({ max_active_jobs: 2, max_adapters: 5, monthly_tokens: 0, requests_per_minute: 0 });
    const set = await (await admin("PATCH", `/tenants/${t.id}`, { limits: { max_active_jobs: 7, monthly_tokens: 1000 } })).json();
    expect(set.limits).toEqual({ max_active_jobs: 7, max_adapters: 5, monthly_tokens: 1000, requests_per_minute: 0 });
    expect(set.own_limits).toEqual({ max_active_jobs: 7, max_adapters: null, monthly_tokens: 1000, requests_per_minute: null });
    // null goes back to the deployment's setting; an absent key keeps what was set.
    const back = await (await admin("PATCH", `/tenants/${t.id}`, { limits: { max_active_jobs: null } })).json();
    expect(back.limits).toEqual({ max_active_jobs: 2, max_adapters: 5, monthly_tokens: 1000, requests_per_minute: 0 });
    const got = await (await admin("GET", `/tenants/${t.id}`)).json();
    expect(got).toMatchObject({ limits: back.limits, own_limits: { max_active_jobs: null, max_adapters: null, monthly_tokens: 1000, requests_per_minute: null } });
    // Sending own_limits back changes nothing.
    expect((await (await admin("PATCH", `/tenants/${t.id}`, { limits: got.own_limits })).json()).own_limits).toEqual(got.own_limits);
    await expectError(await admin("POST", "/tenants", { name: "typo", limit: { max_adapters: 1 } }), 400, "invalid_request");
    // limits: null puts every limit back to the deployment's.
    expect((await (await admin("PATCH", `/tenants/${t.id}`, { limits: null })).json()).own_limits).toEqual({ max_active_jobs: null, max_adapters: null, monthly_tokens: null, requests_per_minute: null });
    expect((await expectError(await admin("PATCH", `/tenants/${t.id}`, { limits: { max_active_jobs: -1 } }), 400, "invalid_request")).param).toBe("limits.max_active_jobs");
    await expectError(await admin("PATCH", `/tenants/${t.id}`, { limits: { gpus: 3 } }), 400, "invalid_request");
    await expectError(await admin("PATCH", "/tenants/ten_missing", { name: "x" }), 404, "not_found");
  });

  it("refuses a job past the active-job limit with 429 and Retry-After, and takes one again once a job ends", async () => {
    const t = await tenantWith();
    const first = await createJob(api, t.key, { training_file: t.fileId });
    await createJob(api, t.key, { training_file: t.fileId });
    const over = await tryJob(t.key, t.fileId);
    expect(over.headers.get("Retry-After")).toBe("60");
    expect((await expectError(over, 429, "quota_exceeded")).message).toMatch(/2 fine-tuning jobs queued, running or paused/);
    // A bad request is still told what is wrong with it first.
    await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "nope", training_file: t.fileId } }), 404, "not_found");
    expect((await api.call("POST", `/v1/fine_tuning/jobs/${first.id}/cancel`, { token: t.key })).status).toBe(200);
    expect((await tryJob(t.key, t.fileId)).status).toBe(200);
  });

  it("withdraws, of creations that raced past the active-job limit, those written after the limit was reached", async () => {
    // Three jobs under a limit of 3, then judged as if they had raced past a limit of 2: the pre-check let
    // them all through, and the re-check after each insert counts only the jobs written before it.
    const t = await tenantWith({ max_active_jobs: 3 });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await createJob(api, t.key, { training_file: t.fileId })).id);
    const raced = { tenantId: t.id, keyId: "key", quotas: { maxActiveJobs: 2, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null } };
    const verdicts = await Promise.all(ids.map((id) => jobQuotaOverrun(api.deps, raced, id)));
    expect(verdicts.slice(0, 2)).toEqual([null, null]);
    expect(verdicts[2]).toMatchObject({ code: "quota_exceeded", message: expect.stringMatching(/2 fine-tuning jobs/) });
    // The adapter limit counts the same way: kept adapters plus the jobs written up to this one.
    const adapters = { ...raced, quotas: { ...raced.quotas, maxActiveJobs: 5, maxAdapters: 1 } };
    expect(await jobQuotaOverrun(api.deps, adapters, ids[0])).toBeNull();
    expect(await jobQuotaOverrun(api.deps, adapters, ids[1])).toMatchObject({ code: "quota_exceeded", message: expect.stringMatching(/1 adapter /) });
  });

  it("withdraws, of adapter uploads that raced past max_adapters, those written after the limit was reached", async () => {
    const t = await tenantWith({ max_adapters: 3 });
    const ids = [];
    for (let i = 0; i < 2; i++) ids.push((await (await uploadAdapter(t.key)).json()).id as string);
    const raced = { tenantId: t.id, keyId: "key", quotas: { maxActiveJobs: null, maxAdapters: 1, monthlyTokens: null, requestsPerMinute: null } };
    expect(await adapterQuotaOverrun(api.deps, raced, ids[0])).toBeNull();
    expect(await adapterQuotaOverrun(api.deps, raced, ids[1])).toMatchObject({ code: "quota_exceeded", message: expect.stringMatching(/1 adapter /) });
  });

  it("refuses all jobs and adapters at a limit of 0, without a Retry-After that waiting could not honour", async () => {
    const t = await tenantWith({ max_active_jobs: 0, max_adapters: 0 });
    const job = await tryJob(t.key, t.fileId);
    expect((await expectError(job, 429, "quota_exceeded")).message).toMatch(/may not run fine-tuning jobs \(its max_active_jobs is 0\)/);
    expect(job.headers.get("Retry-After")).toBeNull();
    expect((await expectError(await uploadAdapter(t.key), 429, "quota_exceeded")).message).toMatch(/may not keep adapters/);
  });

  it("counts kept adapters and jobs in progress against the adapter limit", async () => {
    const t = await tenantWith({ max_adapters: 2 });
    expect((await uploadAdapter(t.key)).status).toBe(201);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const full = await expectError(await uploadAdapter(t.key), 429, "quota_exceeded");
    expect(full.message).toMatch(/keeps 2 adapters .* of its 2/);
    // One job in progress reads in the singular.
    const single = await tenantWith({ max_active_jobs: 1 });
    await createJob(api, single.key, { training_file: single.fileId });
    expect((await expectError(await tryJob(single.key, single.fileId), 429, "quota_exceeded")).message).toMatch(/has 1 fine-tuning job queued/);
    await expectError(await tryJob(t.key, t.fileId), 429, "quota_exceeded");
    expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
    expect((await uploadAdapter(t.key)).status).toBe(201);
  });

  it("refuses work that bills tokens once the month's tokens are used, until the month turns", async () => {
    // Mid-month on the injected clock, so that the month cannot turn during the test.
    api.advance(monthOf(api.deps.now()).end + 14 * 86400 - api.deps.now());
    const t = await tenantWith({ monthly_tokens: 1000, max_active_jobs: 5 });
    // Bill 1200 training tokens through the runner protocol.
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, `quota-${t.id}`);
    // Earlier tests left queued jobs: lease until this one comes up.
    for (let leased = ""; leased !== job.id; ) {
      const lease = await runnerCall(api, "/jobs/lease", { runner_id: r });
      expect(lease.status).toBe(200);
      leased = ((await lease.json()) as { job: { id: string } }).job.id;
    }
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: { step: 1, total_steps: 9, epoch: 0, loss: 2, trained_tokens: 1200 } })).status).toBe(200);
    expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);

    // The tenant sees its quota and this month's use of it with its usage.
    const usage = await (await api.call("GET", "/v1/usage", { token: t.key })).json();
    expect(usage.quota).toEqual({ limits: { max_active_jobs: 5, max_adapters: 5, monthly_tokens: 1000, requests_per_minute: 0 }, month: monthOf(api.deps.now()).key, month_tokens: 1200 });
    const over = await tryJob(t.key, t.fileId);
    const err = await expectError(over, 429, "quota_exceeded");
    expect(err.message).toMatch(/used 1200 of its 1000 tokens this month/);
    const wait = Number(over.headers.get("Retry-After"));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(31 * 86400);
    const chat = await api.call("POST", "/v1/chat/completions", { token: t.key, json: { model: "micro-llama", messages: [{ role: "user", content: "hi" }] } });
    await expectError(chat, 429, "quota_exceeded");
    // Other tenants are not affected.
    const other = await tenantWith();
    expect((await tryJob(other.key, other.fileId)).status).toBe(200);

    api.advance(wait);
    expect((await tryJob(t.key, t.fileId)).status).toBe(200);
  });

  it("refuses requests past the tenant's requests_per_minute with 429 and Retry-After, until the minute turns", async () => {
    // 10 s into a minute on the injected clock.
    api.advance(70 - (api.deps.now() % 60));
    const created = async (limits?: Record<string, number>) => (await (await admin("POST", "/tenants", { name: "rate", limits })).json()) as { id: string; api_key: string };
    const t = await created({ requests_per_minute: 3 });
    const other = await created();
    const models = (key: string) => api.call("GET", "/v1/models", { token: key });
    for (const left of [2, 1, 0]) {
      const res = await models(t.api_key);
      expect(res.status).toBe(200);
      expect([res.headers.get("x-ratelimit-limit-requests"), res.headers.get("x-ratelimit-remaining-requests"), res.headers.get("x-ratelimit-reset-requests")]).toEqual(["3", String(left), "50s"]);
    }
    const over = await models(t.api_key);
    expect((await expectError(over, 429, "rate_limited")).message).toMatch(/more than its 3 requests this minute/);
    expect(over.headers.get("Retry-After")).toBe("50");
    // Another tenant (no limit: no headers) is not slowed down.
    const free = await models(other.api_key);
    expect(free.status).toBe(200);
    expect(free.headers.get("x-ratelimit-limit-requests")).toBeNull();

    api.advance(50);
    const next = await models(t.api_key);
    expect(next.status).toBe(200);
    expect(next.headers.get("x-ratelimit-remaining-requests")).toBe("2");
    // A route that answers with its own Response (a file download) carries the headers too.
    const fileId = await uploadFile(api, t.api_key);
    api.advance(60);
    const download = await api.call("GET", `/v1/files/${fileId}/content`, { token: t.api_key });
    expect(download.status).toBe(200);
    expect(download.headers.get("x-ratelimit-remaining-requests")).toBe("2");
    // A request stamped a minute behind (another API process's clock) counts in the current window.
    api.advance(-60);
    expect((await models(t.api_key)).headers.get("x-ratelimit-remaining-requests")).toBe("1");
    api.advance(60);
    // Back to the deployment's setting (unlimited here).
    expect((await admin("PATCH", `/tenants/${t.id}`, { limits: { requests_per_minute: null } })).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await models(t.api_key)).status).toBe(200);
  });
});
