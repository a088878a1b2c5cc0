// GET /admin/v1/runners: every registered runner, whether it is live, and the jobs it holds a lease on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { createJob, registerMicroLlama, registerRunner, runnerCall, uploadFile } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

const admin = (path: string, token = api.admin) => api.call("GET", `/admin/v1${path}`, { token });

describe("admin runners", () => {
  it("lists runners with their models, liveness and leased jobs", async () => {
    const t = await api.tenant("runners");
    const job = await createJob(api, t.key, { training_file: await uploadFile(api, t.key) });
    const busy = await registerRunner(api, "b-busy");
    const idle = await registerRunner(api, "a-idle", ["micro-llama", "other"]);
    const lease = await runnerCall(api, "/jobs/lease", { runner_id: busy });
    expect(((await lease.json()) as { job: { id: string } }).job.id).toBe(job.id);

    const list = await (await admin("/runners")).json();
    expect(list.data.map((r: { name: string }) => r.name)).toEqual(["a-idle", "b-busy"]);
    expect(list.data[0]).toMatchObject({ id: idle, object: "runner", models: ["micro-llama", "other"], adapters: [], capacity: 4, active: true, running_jobs: [] });
    expect(list.data[1]).toMatchObject({ id: busy, active: true, running_jobs: [job.id] });

    expect(await (await admin(`/runners/${busy}`)).json()).toMatchObject({ id: busy, active: true, running_jobs: [job.id] });
    // Unheard-from for two minutes: listed, no longer active, and its lease has run out.
    api.advance(120);
    expect(await (await admin(`/runners/${busy}`)).json()).toMatchObject({ id: busy, active: false, running_jobs: [] });
    await expectError(await admin("/runners/run_missing"), 404, "not_found");
    await expectError(await admin("/runners", t.key), 401, "unauthorized");
  });
});
