// A rolling upgrade of runners: old and new runners lease side by side, and a job with a checkpoint is leased
// only to a runner that declared (at registration) the checkpoint's format. Runners and checkpoints from before
// formats were declared count as the oldest format, 1.
import { describe, expect, it } from "vitest";
import { expectError, type TestApi } from "../../helpers/api.js";
import { blobPath, createJob, freshMicroLlamaApis, jobEvents, runnerCall, tenantWithFile } from "../../helpers/jobs.js";

const fresh = freshMicroLlamaApis();

/** Registers a runner; `formats` undefined plays a runner from before checkpoint formats (it sends none). */
async function runner(api: TestApi, name: string, formats?: number[]): Promise<string> {
  const res = await runnerCall(api, "/runners/register", { name, models: ["micro-llama"], capacity: 4, checkpoint_formats: formats });
  if (res.status !== 200) throw new Error(`register ${name}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

const lease = (api: TestApi, runnerId: string) => runnerCall(api, "/jobs/lease", { runner_id: runnerId });

/** Uploads one file for checkpoint `step` and records it, with `format` when given (an old runner sends none). */
async function recordCheckpoint(api: TestApi, jobId: string, runnerId: string, step: number, format?: number) {
  const up = await (await runnerCall(api, `/jobs/${jobId}/checkpoints/uploads`, { runner_id: runnerId, step, files: ["trainer_state.json"] })).json();
  expect((await api.call("PUT", blobPath(up.urls["trainer_state.json"]), { body: "{}" })).status).toBe(200);
  const res = await runnerCall(api, `/jobs/${jobId}/checkpoints`, { runner_id: runnerId, step, metrics: { train_loss: 1 }, format });
  expect(res.status).toBe(200);
}

/** A job leased by `holder`, checkpointed at step 5 in `format`, then handed back by its shutdown (queued, attempt given back). */
async function handedBackJob(api: TestApi, holder: string, format?: number) {
  const t = await tenantWithFile(api);
  const job = await createJob(api, t.key, { training_file: t.fileId });
  expect((await (await lease(api, holder)).json()).job.id).toBe(job.id);
  await recordCheckpoint(api, job.id, holder, 5, format);
  const back = await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: holder, error: { code: "runner_shutdown", message: "upgrade" }, retryable: true });
  expect((await back.json()).status).toBe("queued");
  return { t, job };
}

describe("leasing a job with a checkpoint during a rolling upgrade", () => {
  it("skips a runner that cannot resume the checkpoint's format: the job waits for one that can, and does not fail", async () => {
    const api = await fresh();
    const upgraded = await runner(api, "new", [1, 2]);
    const { t, job } = await handedBackJob(api, upgraded, 2);
    const old = await runner(api, "old");
    // Before formats, the old runner got this job, refused its checkpoint and failed it for good.
    expect((await lease(api, old)).status).toBe(204);
    const got = await (await lease(api, upgraded)).json();
    expect(got.job.id).toBe(job.id);
    expect(got.urls.checkpoint).toMatchObject({ step: 5, format: 2 });
    expect(got.lease.attempt).toBe(2);
    expect((await jobEvents(api, t.key, job.id)).some((e) => /failed/i.test(e.message))).toBe(false);
  });

  it("leases other work to the runner that cannot resume a waiting job", async () => {
    const api = await fresh();
    const upgraded = await runner(api, "new", [1, 2]);
    const { job: waiting } = await handedBackJob(api, upgraded, 2);
    const t2 = await tenantWithFile(api, "beta");
    const later = await createJob(api, t2.key, { training_file: t2.fileId });
    const old = await runner(api, "old", [1]);
    const got = await (await lease(api, old)).json();
    expect(got.job.id).toBe(later.id);
    expect(got.urls.checkpoint).toBeNull();
    expect((await (await lease(api, upgraded)).json()).job.id).toBe(waiting.id);
  });

  it("hands an expired lease's job over only to a runner that can resume its checkpoint", async () => {
    const api = await fresh();
    const upgraded = await runner(api, "new", [1, 2]);
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    await lease(api, upgraded);
    await recordCheckpoint(api, job.id, upgraded, 3, 2);
    api.advance(61);
    const old = await runner(api, "old");
    expect((await lease(api, old)).status).toBe(204);
    const other = await runner(api, "new-2", [2]);
    const got = await (await lease(api, other)).json();
    expect(got.job.id).toBe(job.id);
    expect(got.urls.checkpoint).toMatchObject({ step: 3, format: 2 });
  });

  it("reads a checkpoint recorded without a format (an old runner's) as format 1, which old and new runners resume", async () => {
    const api = await fresh();
    const old = await runner(api, "old");
    const { job } = await handedBackJob(api, old);
    const onlyNew = await runner(api, "only-2", [2]);
    expect((await lease(api, onlyNew)).status).toBe(204);
    const upgraded = await runner(api, "new", [1, 2]);
    const got = await (await lease(api, upgraded)).json();
    expect(got.job.id).toBe(job.id);
    expect(got.urls.checkpoint).toMatchObject({ step: 5, format: 1 });
  });

  it("follows the latest checkpoint: an old runner resumes once the newest one is in its format again", async () => {
    const api = await fresh();
    const upgraded = await runner(api, "new", [1, 2]);
    const { job } = await handedBackJob(api, upgraded, 2);
    expect((await (await lease(api, upgraded)).json()).job.id).toBe(job.id);
    await recordCheckpoint(api, job.id, upgraded, 9, 1);
    await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: upgraded, error: { code: "runner_shutdown", message: "upgrade" }, retryable: true });
    const old = await runner(api, "old");
    const got = await (await lease(api, old)).json();
    expect(got.job.id).toBe(job.id);
    expect(got.urls.checkpoint).toMatchObject({ step: 9, format: 1 });
  });

  it("re-registering replaces the formats a runner name declared (an old runner upgraded in place)", async () => {
    const api = await fresh();
    const upgraded = await runner(api, "new", [1, 2]);
    await handedBackJob(api, upgraded, 2);
    const r = await runner(api, "in-place");
    expect((await lease(api, r)).status).toBe(204);
    expect(await runner(api, "in-place", [1, 2])).toBe(r);
    expect((await lease(api, r)).status).toBe(200);
  });

  it("refuses checkpoint_formats and format that are not format versions", async () => {
    const api = await fresh();
    for (const bad of [[], [0], ["2"], [1.5]]) {
      await expectError(await runnerCall(api, "/runners/register", { name: "x", models: ["micro-llama"], capacity: 4, checkpoint_formats: bad }), 400, "invalid_request");
    }
    const r = await runner(api, "r", [2]);
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    await lease(api, r);
    await expectError(await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {}, format: 0 }), 400, "invalid_request");
  });
});

describe("visibility of jobs no live runner can resume", () => {
  const metrics = async (api: TestApi) => (await (await api.call("GET", "/admin/v1/metrics", { token: api.admin })).json()) as { jobs: Record<string, number> };

  it("counts them in /admin/v1/metrics and lists each runner's formats, until a runner that can resume them is live", async () => {
    const api = await fresh();
    const upgraded = await runner(api, "new", [1, 2]);
    const { t, job } = await handedBackJob(api, upgraded, 2);
    const waitingEvents = async () => (await jobEvents(api, t.key, job.id)).filter((e) => e.data?.waiting_for_checkpoint_format !== undefined);
    expect((await lease(api, await runner(api, "old"))).status).toBe(204);
    expect((await metrics(api)).jobs).toMatchObject({ queued: 1, waiting_for_checkpoint_format: 0 });
    // A runner that can resume it is live: the job is not stuck, and its tenant is told nothing.
    expect(await waitingEvents()).toEqual([]);
    api.advance(61);
    // Only the old runner is live now (the new one stopped heartbeating): nobody can resume the job.
    const old = await runner(api, "old");
    expect((await lease(api, old)).status).toBe(204);
    expect((await metrics(api)).jobs).toMatchObject({ queued: 1, waiting_for_checkpoint_format: 1 });
    // Its tenant is told why it waits, once for this checkpoint however often runners poll.
    expect((await lease(api, old)).status).toBe(204);
    const told = await waitingEvents();
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ data: { step: 5, waiting_for_checkpoint_format: 2 } });
    expect(told[0].message).toMatch(/^Waiting for a runner that can resume the checkpoint at step 5 \(checkpoint format 2\): no live runner of micro-llama can/);
    expect((await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key }).then((r) => r.json())).status).toBe("queued");
    const prom = await (await api.call("GET", "/admin/v1/metrics?format=prometheus", { token: api.admin })).text();
    expect(prom).toContain("tuneserve_jobs_waiting_for_checkpoint_format 1");
    const listed = (await (await api.call("GET", "/admin/v1/runners", { token: api.admin })).json()).data as Array<{ name: string; checkpoint_formats: number[] }>;
    expect(Object.fromEntries(listed.map((r) => [r.name, r.checkpoint_formats]))).toEqual({ new: [1, 2], old: [1] });
    await runner(api, "new", [1, 2]);
    expect((await metrics(api)).jobs.waiting_for_checkpoint_format).toBe(0);
  });

  it("leaves out a job whose lease ran out on its last attempt: the next lease call fails it, no runner resumes it", async () => {
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "1" });
    const upgraded = await runner(api, "new", [1, 2]);
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    expect((await (await lease(api, upgraded)).json()).job.id).toBe(job.id);
    await recordCheckpoint(api, job.id, upgraded, 5, 2);
    // The new runner dies; only an old one is live.
    api.advance(61);
    await runner(api, "old");
    expect((await metrics(api)).jobs).toMatchObject({ running: 1, waiting_for_checkpoint_format: 0 });
  });
});
