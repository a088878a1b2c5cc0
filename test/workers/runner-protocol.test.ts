// The job queue on D1 inside workerd: the atomic lease (UPDATE … WHERE id IN (SELECT …) RETURNING), the
// batched writes of create/complete, the guarded INSERT … SELECTs of heartbeats and checkpoints, presigned R2
// links for inputs and outputs, and usage.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, origin, tenant } from "./helpers.js";
import { adapterFiles, registerMicroLlama } from "./micro-llama.js";

const runnerToken = env.TUNESERVE_RUNNER_TOKEN as string;
const adminToken = env.TUNESERVE_ADMIN_TOKEN as string;
const runner = (path: string, json: unknown) => call("POST", `/internal/v1${path}`, { token: runnerToken, json });
const send = (url: string, init?: RequestInit) => exports.default.fetch(new Request(new URL(new URL(url).pathname + new URL(url).search, origin), init));

async function setup() {
  await registerMicroLlama();
  const t = await tenant("jobs");
  const form = new FormData();
  form.append("purpose", "fine-tune");
  form.append("file", new Blob(['{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'], { type: "application/jsonl" }), "train.jsonl");
  const file = (await (await call("POST", "/v1/files", { token: t.key, body: form })).json()) as { id: string };
  return { t, fileId: file.id };
}

describe("worker: fine-tuning jobs and the runner protocol on D1", () => {
  it("creates one job for a creation retried with the same Idempotency-Key", async () => {
    const { t, fileId } = await setup();
    const post = () => call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId, suffix: "idem" }, headers: { "Idempotency-Key": "w-job-1" } });
    const first = (await (await post()).json()) as { id: string };
    const again = await post();
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(first.id);
    // Out of the queue, so the next test's runners lease only their own jobs.
    expect((await call("POST", `/v1/fine_tuning/jobs/${first.id}/cancel`, { token: t.key })).status).toBe(200);
  });

  it("keeps job metadata and filters the list by it (json_each on D1), and pauses and resumes a job", async () => {
    const { t, fileId } = await setup();
    const create = (metadata?: Record<string, string>) => call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId, metadata } });
    const tagged = (await (await create({ team: "blue" })).json()) as { id: string; metadata: unknown };
    expect(tagged.metadata).toEqual({ team: "blue" });
    const plain = (await (await create()).json()) as { id: string };
    const ids = async (q: string) => ((await (await call("GET", `/v1/fine_tuning/jobs?${q}`, { token: t.key })).json()) as { data: { id: string }[] }).data.map((j) => j.id);
    expect(await ids("metadata[team]=blue")).toEqual([tagged.id]);
    expect(await ids("metadata=null")).toEqual([plain.id]);
    // Pause and resume on D1 (the attempt adjustment is one UPDATE with CASE and max()).
    const paused = (await (await call("POST", `/v1/fine_tuning/jobs/${plain.id}/pause`, { token: t.key })).json()) as { status: string };
    expect(paused.status).toBe("paused");
    expect(((await (await call("POST", `/v1/fine_tuning/jobs/${plain.id}/resume`, { token: t.key })).json()) as { status: string }).status).toBe("queued");
    for (const id of [tagged.id, plain.id]) expect((await call("POST", `/v1/fine_tuning/jobs/${id}/cancel`, { token: t.key })).status).toBe(200);
  });

  it("leases each job to exactly one racing runner, completes once, bills once", async () => {
    const { t, fileId } = await setup();
    const ids: string[] = [];
    for (const name of ["w-a", "w-b"]) {
      const r = (await (await runner("/runners/register", { name, models: ["micro-llama"], capacity: 1 })).json()) as { id: string };
      ids.push(r.id);
    }
    let lastLease: { job: { id: string }; urls: { training_file: { url: string }; outputs: Record<string, string>; base_model: { files: Record<string, string> } } } | null = null;
    let holder = "";
    for (let i = 0; i < 4; i++) {
      const res = await call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId, suffix: "w" } });
      expect(res.status).toBe(200);
      const job = (await res.json()) as { id: string; status: string };
      expect(job.status).toBe("queued");
      const both = await Promise.all(ids.map((id) => runner("/jobs/lease", { runner_id: id, idempotency_key: `lease-${i}-of-${id}` })));
      expect(both.map((r) => r.status).sort()).toEqual([200, 204]);
      const winner = both.findIndex((r) => r.status === 200);
      lastLease = (await both[winner].json()) as typeof lastLease;
      holder = ids[winner];
      expect(lastLease!.job.id).toBe(job.id);
      // The winner's call retried with its key (its answer lost) gets the same job back, not a new lease.
      const retried = await runner("/jobs/lease", { runner_id: holder, idempotency_key: `lease-${i}-of-${holder}` });
      expect(((await retried.json()) as { job: { id: string } }).job.id).toBe(job.id);
    }
    const lease = lastLease!;
    const jobId = lease.job.id;
    expect(Object.keys(lease.urls.base_model.files).sort()).toEqual(["config.json", "tokenizer.json", "tokenizer_config.json"]);
    expect(new TextDecoder().decode(await (await send(lease.urls.training_file.url)).arrayBuffer())).toContain("hello");
    const other = ids.find((id) => id !== holder)!;
    await expectError(await runner(`/jobs/${jobId}/heartbeat`, { runner_id: other, progress: { step: 1, total_steps: 3, epoch: 0, loss: 2 } }), 409, "lease_lost");
    expect((await runner(`/jobs/${jobId}/heartbeat`, { runner_id: holder, progress: { step: 1, total_steps: 3, epoch: 0, loss: 2 } })).status).toBe(200);
    for (const [name, bytes] of Object.entries(adapterFiles())) {
      expect((await send(lease.urls.outputs[name], { method: "PUT", body: bytes })).status).toBe(200);
    }
    const done = (await (await runner(`/jobs/${jobId}/complete`, { runner_id: holder, trained_tokens: 321 })).json()) as { job: { status: string; fine_tuned_model: string }; adapter: { id: string } };
    expect(done.job.status).toBe("succeeded");
    expect(done.job.fine_tuned_model).toMatch(/^ft:micro-llama:.*:w:/);
    expect(await (await runner(`/jobs/${jobId}/complete`, { runner_id: holder, trained_tokens: 321 })).json()).toEqual(done);
    const usage = (await (await call("GET", "/v1/usage?group_by=kind", { token: t.key })).json()) as { data: { kind: string; quantity: number }[] };
    expect(usage.data).toEqual([expect.objectContaining({ kind: "training_tokens", quantity: 321 })]);
    const failed = (await (await runner(`/jobs/${lease.job.id}/fail`, { runner_id: holder, error: { code: "x", message: "y" }, retryable: true })).json()) as unknown;
    expect(failed).toMatchObject({ error: { code: "lease_lost" } });
  });

  it("bills a cancelled job for the tokens of its last progress report, in the cancel's batch", async () => {
    const { t, fileId } = await setup();
    const job = (await (await call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId } })).json()) as { id: string };
    const r = (await (await runner("/runners/register", { name: "w-cancel", models: ["micro-llama"], capacity: 1 })).json()) as { id: string };
    const lease = (await (await runner("/jobs/lease", { runner_id: r.id })).json()) as { job: { id: string } };
    expect(lease.job.id).toBe(job.id);
    const beat = () => runner(`/jobs/${job.id}/heartbeat`, { runner_id: r.id, progress: { step: 2, total_steps: 9, epoch: 0, loss: 2, trained_tokens: 77 } });
    // Two heartbeats of one step write one metrics event: the event's INSERT … SELECT in the update's batch (D1).
    expect((await Promise.all([beat(), beat()])).map((res) => res.status)).toEqual([200, 200]);
    const events = (await (await call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, { token: t.key })).json()) as { data: { type: string }[] };
    expect(events.data.filter((e) => e.type === "metrics")).toHaveLength(1);
    // A checkpoint is recorded by an INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING, only while the lease holds (D1).
    const uploads = (await (await runner(`/jobs/${job.id}/checkpoints/uploads`, { runner_id: r.id, step: 2, files: ["state.bin"] })).json()) as { urls: Record<string, string> };
    expect((await send(uploads.urls["state.bin"], { method: "PUT", body: new Uint8Array([1, 2, 3]) })).status).toBe(200);
    const record = () => runner(`/jobs/${job.id}/checkpoints`, { runner_id: r.id, step: 2, metrics: { train_loss: 2 } });
    const first = (await (await record()).json()) as { id: string; step_number: number };
    expect(first).toMatchObject({ id: expect.stringMatching(/^ftckpt-/), step_number: 2 });
    expect(((await (await record()).json()) as { id: string }).id).toBe(first.id);
    const cancelled = (await (await call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).json()) as { status: string; trained_tokens: number };
    expect(cancelled).toMatchObject({ status: "cancelled", trained_tokens: 77 });
    await expectError(await runner(`/jobs/${job.id}/checkpoints`, { runner_id: r.id, step: 3, metrics: {} }), 409, "lease_lost");
    const usage = (await (await call("GET", "/v1/usage?group_by=kind", { token: t.key })).json()) as { data: { kind: string; quantity: number }[] };
    expect(usage.data).toEqual([expect.objectContaining({ kind: "training_tokens", quantity: 77 })]);
    // The admin's export reads it as a CloudEvent, paged by seq on D1 too.
    const exported = (await (await call("GET", `/admin/v1/usage/events?tenant_id=${t.id}`, { token: adminToken })).json()) as { data: { id: string; data: { quantity: number } }[]; next_cursor: string };
    expect(exported.data).toEqual([expect.objectContaining({ id: `job:${job.id}:training_tokens`, data: expect.objectContaining({ quantity: 77 }) })]);
    expect(Number(exported.next_cursor)).toBeGreaterThan(0);

    // With a monthly quota below that, the tenant's next job is refused until the month turns.
    expect((await call("PATCH", `/admin/v1/tenants/${t.id}`, { token: adminToken, json: { limits: { monthly_tokens: 50 } } })).status).toBe(200);
    const over = await call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId } });
    expect((await expectError(over, 429, "quota_exceeded")).message).toContain("used 77 of its 50 tokens");
    expect(Number(over.headers.get("Retry-After"))).toBeGreaterThan(0);
  });

  it("does not lease a suspended tenant's job until it is reinstated, and refuses its key (D1)", async () => {
    const { t, fileId } = await setup();
    const r = (await (await runner("/runners/register", { name: "w-susp", models: ["micro-llama"], capacity: 1 })).json()) as { id: string };
    const job = (await (await call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId } })).json()) as { id: string };
    const suspend = (suspended: boolean) => call("PATCH", `/admin/v1/tenants/${t.id}`, { token: adminToken, json: { suspended } });
    expect(((await (await suspend(true)).json()) as { suspended_at: number | null }).suspended_at).toEqual(expect.any(Number));
    await expectError(await call("GET", "/v1/models", { token: t.key }), 403, "tenant_suspended");
    // Drain whatever else is queued: the suspended tenant's job is never among it.
    const leased: string[] = [];
    for (let res = await runner("/jobs/lease", { runner_id: r.id }); res.status === 200; res = await runner("/jobs/lease", { runner_id: r.id })) leased.push(((await res.json()) as { job: { id: string } }).job.id);
    expect(leased).not.toContain(job.id);
    await suspend(false);
    const lease = await runner("/jobs/lease", { runner_id: r.id });
    expect(((await lease.json()) as { job: { id: string } }).job.id).toBe(job.id);
  });

  it("leases a job with a checkpoint only to a runner that declared its format, and counts it while none live can (D1)", async () => {
    const { t, fileId } = await setup();
    const register = async (name: string, formats?: number[]) =>
      ((await (await runner("/runners/register", { name, models: ["micro-llama"], capacity: 1, checkpoint_formats: formats })).json()) as { id: string }).id;
    const upgraded = await register("w-new", [1, 2]);
    const old = await register("w-old");
    // Drain whatever else is queued, so that the job below is the only one.
    while ((await runner("/jobs/lease", { runner_id: old })).status === 200);
    const job = (await (await call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: fileId } })).json()) as { id: string };
    expect(((await (await runner("/jobs/lease", { runner_id: upgraded })).json()) as { job: { id: string } }).job.id).toBe(job.id);
    const uploads = (await (await runner(`/jobs/${job.id}/checkpoints/uploads`, { runner_id: upgraded, step: 4, files: ["trainer_state.json"] })).json()) as { urls: Record<string, string> };
    expect((await send(uploads.urls["trainer_state.json"], { method: "PUT", body: "{}" })).status).toBe(200);
    expect((await runner(`/jobs/${job.id}/checkpoints`, { runner_id: upgraded, step: 4, metrics: {}, format: 2 })).status).toBe(200);
    // The upload link still takes a PUT, to a key nothing reads: the record copied the file to its own key (R2).
    expect((await send(uploads.urls["trainer_state.json"], { method: "PUT", body: '{"overwritten":true}' })).status).toBe(200);
    expect((await runner(`/jobs/${job.id}/fail`, { runner_id: upgraded, error: { code: "runner_shutdown", message: "upgrade" }, retryable: true })).status).toBe(200);
    expect((await runner("/jobs/lease", { runner_id: old })).status).toBe(204);
    const waiting = async () => ((await (await call("GET", "/admin/v1/metrics", { token: adminToken })).json()) as { jobs: { waiting_for_checkpoint_format: number } }).jobs.waiting_for_checkpoint_format;
    expect(await waiting()).toBe(0);
    // The one runner that could resume it registers again declaring nothing (rolled back): nobody live can.
    await register("w-new");
    expect(await waiting()).toBe(1);
    // A lease that finds nothing tells the job's tenant why it waits (a guarded INSERT … SELECT on D1), once.
    for (let i = 0; i < 2; i++) expect((await runner("/jobs/lease", { runner_id: old })).status).toBe(204);
    const events = (await (await call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, { token: t.key })).json()) as { data: { message: string; data: Record<string, unknown> | null }[] };
    expect(events.data.filter((e) => e.data?.waiting_for_checkpoint_format === 2)).toEqual([expect.objectContaining({ message: expect.stringMatching(/^Waiting for a runner that can resume the checkpoint at step 4/) })]);
    await register("w-new", [2]);
    expect(await waiting()).toBe(0);
    const lease = (await (await runner("/jobs/lease", { runner_id: upgraded })).json()) as { job: { id: string }; urls: { checkpoint: { step: number; format: number; files: Record<string, string> } } };
    expect(lease.job.id).toBe(job.id);
    expect(lease.urls.checkpoint).toMatchObject({ step: 4, format: 2 });
    expect(await (await send(lease.urls.checkpoint.files["trainer_state.json"])).text()).toBe("{}");
    expect((await call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
  });
});
