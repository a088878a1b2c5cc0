import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { blobCount, expectError, type TestApi } from "../../helpers/api.js";
import { blobKeys } from "../../../api/src/blob/port.js";
import { blobPath, chatLines, createJob, freshMicroLlamaApis, jobEvents, microLlama, microLlamaSource, registerRunner, runnerCall, runningJob, tenantWithFile, uploadFile } from "../../helpers/jobs.js";

const fresh = freshMicroLlamaApis();

const progress = (step: number, extra: Record<string, number> = {}) => ({ step, total_steps: 10, epoch: step / 10, loss: 2 - step / 10, ...extra });

async function leaseOk(api: TestApi, runner: string, idempotencyKey?: string) {
  const res = await runnerCall(api, "/jobs/lease", { runner_id: runner, idempotency_key: idempotencyKey });
  if (res.status !== 200) throw new Error(`expected a lease, got ${res.status} ${await res.text()}`);
  return res.json();
}

async function putAdapter(api: TestApi, outputs: Record<string, string>) {
  for (const name of ["adapter_config.json", "adapter_model.safetensors"]) {
    const body = new Uint8Array(await readFile(`${microLlama}/adapter/${name}`));
    const res = await api.call("PUT", blobPath(outputs[name]), { body });
    expect(res.status).toBe(200);
  }
}

describe("runner registration", () => {
  it("registers, keeps the id for the same name, heartbeats, and needs the runner token", async () => {
    const api = await fresh();
    const reg = await (await runnerCall(api, "/runners/register", { name: "gpu-1", url: "http://gpu-1:8080", models: ["micro-llama"], capacity: 8 })).json();
    expect(reg).toMatchObject({ object: "runner", name: "gpu-1", models: ["micro-llama"], capacity: 8, lease_seconds: 60 });
    expect(reg.unregistered_models).toEqual([]);
    const again = await (await runnerCall(api, "/runners/register", { name: "gpu-1", models: ["micro-llama", "other"], capacity: 2 })).json();
    expect(again).toMatchObject({ id: reg.id, capacity: 2, models: ["micro-llama", "other"], url: null, unregistered_models: ["other"] });
    api.advance(5);
    const hb = await (await runnerCall(api, `/runners/${reg.id}/heartbeat`, { adapters: ["ft:micro-llama:t::x"] })).json();
    expect(hb.adapters).toEqual(["ft:micro-llama:t::x"]);
    expect(hb.gone_adapters).toEqual(["ft:micro-llama:t::x"]); // a model the API does not know
    expect(hb.last_seen_at).toBeGreaterThanOrEqual(again.last_seen_at + 5);
    await expectError(await runnerCall(api, "/runners/run_nope/heartbeat", {}), 404, "not_found");
    await expectError(await runnerCall(api, "/jobs/lease", { runner_id: "run_nope" }), 404, "not_found");
    const t = await api.tenant();
    await expectError(await api.call("POST", "/internal/v1/jobs/lease", { token: t.key, json: { runner_id: reg.id } }), 401, "unauthorized");
    await expectError(await api.call("POST", "/internal/v1/jobs/lease", { token: api.admin, json: { runner_id: reg.id } }), 401, "unauthorized");
    // The API proxies tenants' requests to this URL: only http(s).
    for (const url of ["javascript:alert(1)", "file:///etc/passwd"]) {
      await expectError(await runnerCall(api, "/runners/register", { name: "gpu-2", url, models: ["micro-llama"], capacity: 1 }), 400, "invalid_request");
    }
  });
});

/** A stand-in runner process answering /healthz as `instance` (null: it answers nothing, as a frozen one; "none": an OK with no instance). */
async function healthServer(instance: string | null): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    if (instance === "none") res.end('{"ok":true}');
    else if (instance !== null) res.end(JSON.stringify({ ok: true, instance }));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((ok) => (server.closeAllConnections(), server.close(() => ok()))),
  };
}

describe("runner restarts and namesakes", () => {
  const register = (api: TestApi, instance: string, url: string) => runnerCall(api, "/runners/register", { name: "gpu-1", url, instance, models: ["micro-llama"], capacity: 8 });
  /** Registers gpu-1 as instance-1 at a URL where `answers` answers /healthz, then as instance-2: a restart keeps the id. */
  async function expectRestartWhile(api: TestApi, answers: string): Promise<void> {
    const server = await healthServer(answers);
    try {
      const reg = await (await register(api, "instance-1", server.url)).json();
      expect(await (await register(api, "instance-2", server.url)).json()).toMatchObject({ id: reg.id });
    } finally {
      await server.close();
    }
  }

  it("refuses a second live process under a runner's name, and lets a restart take over at once, its leases released", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const first = await healthServer("instance-1");
    const reg = await (await register(api, "instance-1", first.url)).json();
    const job = await createJob(api, t.key, { training_file: t.fileId });
    expect((await leaseOk(api, reg.id)).lease.attempt).toBe(1);

    const dup = await expectError(await register(api, "instance-2", "http://127.0.0.1:9/"), 409, "conflict");
    expect(dup).toMatchObject({ param: "name" });
    expect(dup.message).toContain("give each runner its own name");

    // The first process dies: the restarted one gets the id back and the job at once, not when the lease runs out.
    await first.close();
    const again = await (await register(api, "instance-2", "http://127.0.0.1:9/")).json();
    expect(again.id).toBe(reg.id);
    const lease = await leaseOk(api, reg.id);
    expect(lease).toMatchObject({ job: { id: job.id }, lease: { attempt: 2 } });
    const events = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, { token: t.key })).json()).data;
    expect(events.map((e: { message: string }) => e.message)).toContain("Runner gpu-1 restarted during attempt 1; that attempt is over");

    // The same process registering again (it re-registers after withdrawing a model) keeps its lease.
    expect((await register(api, "instance-2", "http://127.0.0.1:9/")).status).toBe(200);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: reg.id })).status).toBe(204);
  });

  it("stops a superseded process: its leases and runner heartbeats answer 409 once another process took the name", async () => {
    const api = await fresh();
    const gone = await healthServer(null);
    const reg = await (await register(api, "instance-1", gone.url)).json();
    expect((await register(api, "instance-2", gone.url)).status).toBe(200);
    await gone.close();
    const lease = await expectError(await runnerCall(api, "/jobs/lease", { runner_id: reg.id, instance: "instance-1" }), 409, "conflict");
    expect(lease.message).toContain("superseded");
    await expectError(await runnerCall(api, `/runners/${reg.id}/heartbeat`, { instance: "instance-1" }), 409, "conflict");
    expect((await runnerCall(api, `/runners/${reg.id}/heartbeat`, { instance: "instance-2" })).status).toBe(200);
    // A runner from before instance ids sends none, and is not told apart.
    expect((await runnerCall(api, "/jobs/lease", { runner_id: reg.id })).status).toBe(204);
  });

  it("lets one of two processes registering a new name at once have it", async () => {
    const api = await fresh();
    // Both live, each at its own URL: whichever call reads the other's row first finds that process answering
    // there, and one whose read came before the other's write loses the upsert; either way one of them has the name.
    const servers = await Promise.all(["instance-1", "instance-2"].map((i) => healthServer(i)));
    try {
      const both = await Promise.all(["instance-1", "instance-2"].map((i, n) => register(api, i, servers[n].url)));
      expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  it("takes a restart when something other than the old process answers at its URL, and a URL-less runner over without ending its leases", async () => {
    const api = await fresh();
    // Another process answers at the old URL, without an instance id: not the old runner.
    await expectRestartWhile(api, "none");
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const plain = (instance: string) => runnerCall(api, "/runners/register", { name: "trainer", instance, models: ["micro-llama"], capacity: 1 });
    const trainer = await (await plain("instance-a")).json();
    expect((await leaseOk(api, trainer.id)).job.id).toBe(job.id);
    // No URL to ask: maybe a live second process, so its lease runs out by itself rather than being ended.
    expect((await plain("instance-b")).status).toBe(200);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: trainer.id, instance: "instance-b" })).status).toBe(204);
  });

  it("takes a runner restarted on the same URL for a restart, and forgets runners unseen for a week", async () => {
    const api = await fresh();
    // The new process itself answers at the old URL (a restart on the same port).
    await expectRestartWhile(api, "instance-2");
    api.advance(8 * 24 * 3600);
    await registerRunner(api, "other");
    const listed = (await (await api.call("GET", "/admin/v1/runners", { token: api.admin })).json()).data;
    expect(listed.map((r: { name: string }) => r.name)).toEqual(["other"]);
  });
});

describe("lease", () => {
  it("gives each job to exactly one of two racing runners", async () => {
    const api = await fresh({ TUNESERVE_MAX_ACTIVE_JOBS: "12" });
    const t = await tenantWithFile(api);
    const [a, b] = [await registerRunner(api, "a"), await registerRunner(api, "b")];
    for (let i = 0; i < 12; i++) {
      const job = await createJob(api, t.key, { training_file: t.fileId });
      const results = await Promise.all([runnerCall(api, "/jobs/lease", { runner_id: a }), runnerCall(api, "/jobs/lease", { runner_id: b })]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 204]);
      const won = await results.find((r) => r.status === 200)!.json();
      expect(won.job.id).toBe(job.id);
      expect(won.lease.attempt).toBe(1);
    }
  });

  it("hands out the oldest job first and only for models the runner serves", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const first = await createJob(api, t.key, { training_file: t.fileId });
    const second = await createJob(api, t.key, { training_file: t.fileId });
    const other = await registerRunner(api, "other-models", ["some-other-model"]);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: other })).status).toBe(204);
    const r = await registerRunner(api, "r");
    expect((await leaseOk(api, r)).job.id).toBe(first.id);
    expect((await leaseOk(api, r)).job.id).toBe(second.id);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
    const job = await (await api.call("GET", `/v1/fine_tuning/jobs/${first.id}`, { token: t.key })).json();
    expect(job.status).toBe("running");
  });

  it("re-leases an expired lease to another runner and refuses the old holder", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const [a, b] = [await registerRunner(api, "a"), await registerRunner(api, "b")];
    const la = await leaseOk(api, a);
    expect(la.lease.expires_at - la.job.created_at).toBeGreaterThanOrEqual(60);
    api.advance(30);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: b })).status).toBe(204);
    api.advance(31);
    const lb = await leaseOk(api, b);
    expect(lb.job.id).toBe(job.id);
    expect(lb.lease).toMatchObject({ runner_id: b, attempt: 2, max_attempts: 3 });
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: a, progress: progress(1) }), 409, "lease_lost");
    expect(err.message).toContain(b);
    await expectError(await runnerCall(api, `/jobs/${job.id}/events`, { runner_id: a, events: [{ message: "hi" }] }), 409, "lease_lost");
    await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: a, trained_tokens: 1 }), 409, "lease_lost");
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: b, progress: progress(1) })).status).toBe(200);
  });

  it("lets the holder heartbeat an expired lease nobody took, and extends it", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const a = await registerRunner(api, "a");
    await leaseOk(api, a);
    api.advance(90);
    const hb = await (await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: a, progress: progress(2) })).json();
    expect(hb).toMatchObject({ job_id: job.id, status: "running" });
    const b = await registerRunner(api, "b");
    expect((await runnerCall(api, "/jobs/lease", { runner_id: b })).status).toBe(204);
    expect(hb.lease_expires_at).toBeGreaterThan(api.deps.now() + 50);
  });

  it("answers a lease call retried after its answer was lost (same idempotency key) with the same job, its attempt not spent", async () => {
    // One attempt only: without the key the lost lease would sit out its time and then fail the job.
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "1" });
    const t = await tenantWithFile(api);
    const first = await createJob(api, t.key, { training_file: t.fileId });
    const second = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, "r");
    const lost = await leaseOk(api, r, "key-of-call-1");
    expect(lost).toMatchObject({ job: { id: first.id }, lease: { attempt: 1, max_attempts: 1 } });
    // The runner never saw that answer; its client asks again with the same key, and the lease is extended.
    api.advance(30);
    const before = api.deps.now();
    const again = await leaseOk(api, r, "key-of-call-1");
    expect(again).toMatchObject({ job: { id: first.id }, lease: { runner_id: r, attempt: 1, max_attempts: 1 } });
    // Extended from now (the clock is real seconds plus the advance: a second may pass during the call).
    expect(again.lease.expires_at).toBeGreaterThanOrEqual(before + 60);
    expect(again.lease.expires_at).toBeLessThanOrEqual(api.deps.now() + 60);
    expect(again.urls.outputs).toEqual(expect.objectContaining({ "adapter_config.json": expect.any(String) }));
    expect((await runnerCall(api, `/jobs/${first.id}/heartbeat`, { runner_id: r, attempt: 1, progress: progress(1) })).status).toBe(200);
    const events = (await (await api.call("GET", `/v1/fine_tuning/jobs/${first.id}/events`, { token: t.key })).json()).data;
    expect(events.filter((e: { message: string }) => e.message.startsWith("Fine-tuning job started")).length).toBe(1);
    // The next lease (a new key) is another job; the first key, once its job ended, leases anew too.
    expect((await leaseOk(api, r, "key-of-call-2")).job.id).toBe(second.id);
    expect((await runnerCall(api, `/jobs/${first.id}/fail`, { runner_id: r, attempt: 1, error: { code: "runner_shutdown", message: "bye" }, retryable: true })).status).toBe(200);
    expect(await leaseOk(api, r, "key-of-call-1")).toMatchObject({ job: { id: first.id }, lease: { attempt: 2, max_attempts: 2 } });
    // A call without a key (a runner from before keys) leases anew every time, as before.
    const third = await createJob(api, t.key, { training_file: t.fileId });
    expect((await leaseOk(api, r)).job.id).toBe(third.id);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
  });

  it("gives one job to two lease calls with one key racing each other", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    for (let i = 0; i < 2; i++) await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, "r");
    const both = await Promise.all([leaseOk(api, r, "racing-key"), leaseOk(api, r, "racing-key")]);
    expect(both[0].job.id).toBe(both[1].job.id);
    expect(both.map((l) => l.lease.attempt)).toEqual([1, 1]);
  });

  it("fails a job whose lease expired on its last attempt instead of leasing it again", async () => {
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "2" });
    const { t, job, r } = await runningJob(api);
    api.advance(61);
    expect((await leaseOk(api, r)).lease.attempt).toBe(2);
    api.advance(61);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
    const got = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json();
    expect(got).toMatchObject({ status: "failed", error: { code: "lease_expired" } });
  });
});

describe("heartbeat, events, fail, cancel", () => {
  it("stores progress, shows an ETA, writes one metrics event per step and accepts runner events", async () => {
    const api = await fresh();
    const { t, job, r } = await runningJob(api);
    // The attempt's first heartbeat, before any step: progress stored, no metrics event.
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: { step: 0, total_steps: 1, epoch: 0, loss: null } })).status).toBe(200);
    for (const step of [1, 1, 2]) {
      expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(step, { eta_s: 120, tokens_per_s: 900 }) })).status).toBe(200);
    }
    expect((await runnerCall(api, `/jobs/${job.id}/events`, { runner_id: r, events: [{ level: "warn", message: "slow disk", data: { mb_s: 3 } }] })).status).toBe(200);
    const got = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json();
    expect(got.progress).toMatchObject({ step: 2, total_steps: 10, loss: 1.8, tokens_per_s: 900, eta_s: 120 });
    expect(got.estimated_finish).toBe(got.progress.updated_at + 120);
    const events = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, { token: t.key })).json()).data;
    const metrics = events.filter((e: { type: string }) => e.type === "metrics");
    expect(metrics.map((e: { data: { step: number } }) => e.data.step)).toEqual([2, 1]);
    expect(metrics[0]).toMatchObject({ message: "Step 2/10: training loss=1.8000", data: { train_loss: 1.8 } });
    expect(events[0]).toMatchObject({ level: "warn", message: "slow disk", data: { mb_s: 3 }, type: "message" });
  });

  it("refuses event data nested too deep to store, naming it", async () => {
    const api = await fresh();
    const { job, r } = await runningJob(api);
    const deep = "[".repeat(5000) + "]".repeat(5000);
    const body = `{"runner_id":"${r}","events":[{"message":"m","data":{"a":${deep}}}]}`;
    const res = await api.call("POST", `/internal/v1/jobs/${job.id}/events`, { token: api.runner, body, headers: { "Content-Type": "application/json" } });
    expect((await expectError(res, 400, "invalid_request")).param).toBe("events.0.data");
  });

  it("puts a retryable failure back in the queue until the attempts run out", async () => {
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "2" });
    const { t, job, r } = await runningJob(api);
    const oom = { code: "out_of_memory", message: "CUDA out of memory" };
    const first = await (await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: r, error: oom, retryable: true })).json();
    expect(first).toMatchObject({ status: "queued", attempt: 1, max_attempts: 2, lease_expires_at: null });
    await expectError(await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(1) }), 409, "lease_lost");
    expect((await leaseOk(api, r)).lease.attempt).toBe(2);
    const second = await (await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: r, error: oom, retryable: true })).json();
    expect(second).toMatchObject({ status: "failed", attempt: 2 });
    const got = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json();
    expect(got).toMatchObject({ status: "failed", error: { code: "out_of_memory", message: "CUDA out of memory", param: null } });
    expect(got.finished_at).toBeTypeOf("number");
    await expectError(await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: r, error: oom, retryable: true }), 409, "lease_lost");
  });

  it("gives back the attempt of a job a shutting-down runner hands back, however often", async () => {
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "2" });
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, "r");
    const shutdown = { code: "runner_shutdown", message: "runner r shut down during the attempt" };
    for (let i = 1; i <= 3; i++) {
      const lease = await leaseOk(api, r);
      expect(lease.lease.attempt).toBe(i);
      const back = await (await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: r, attempt: i, error: shutdown, retryable: true })).json();
      expect(back).toMatchObject({ status: "queued", attempt: i, max_attempts: 2 + i });
    }
    const events = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, { token: t.key })).json()).data;
    expect(events[0].message).toBe("The runner shut down during attempt 3 (runner_shutdown: runner r shut down during the attempt); the job goes back to the queue, and the attempt is not counted");
  });

  it("fails at once when the failure is not retryable", async () => {
    const api = await fresh();
    const { job, r } = await runningJob(api);
    const res = await (await runnerCall(api, `/jobs/${job.id}/fail`, { runner_id: r, error: { code: "bad_data", message: "line 3 has no assistant turn" }, retryable: false })).json();
    expect(res).toMatchObject({ status: "failed", attempt: 1 });
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
  });

  it("cancelling a running job clears its lease: the runner's next heartbeat is refused", async () => {
    const api = await fresh();
    const { t, job, r } = await runningJob(api);
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(1) })).status).toBe(200);
    expect((await (await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).json()).status).toBe("cancelled");
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(2) }), 409, "lease_lost");
    expect(err.message).toContain("cancelled");
    await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 }), 409, "lease_lost");
    api.advance(120);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
  });

  it("bills a cancelled job once for the tokens its last progress report counted, and one that never ran for nothing", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const trainingUsage = async () => {
      const usage = await (await api.call("GET", "/v1/usage?group_by=kind", { token: t.key })).json();
      return (usage.data as { kind: string; quantity: number }[]).filter((b) => b.kind === "training_tokens").reduce((n, b) => n + b.quantity, 0);
    };
    const ran = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, "r");
    await leaseOk(api, r);
    expect((await runnerCall(api, `/jobs/${ran.id}/heartbeat`, { runner_id: r, progress: { ...progress(3), trained_tokens: 420 } })).status).toBe(200);
    // A heartbeat that does not know the count (a new attempt before its first step) keeps the last one.
    expect((await runnerCall(api, `/jobs/${ran.id}/heartbeat`, { runner_id: r, progress: progress(0) })).status).toBe(200);
    const cancelled = await (await api.call("POST", `/v1/fine_tuning/jobs/${ran.id}/cancel`, { token: t.key })).json();
    expect(cancelled).toMatchObject({ status: "cancelled", trained_tokens: 420 });
    await expectError(await api.call("POST", `/v1/fine_tuning/jobs/${ran.id}/cancel`, { token: t.key }), 409, "conflict");
    await expectError(await runnerCall(api, `/jobs/${ran.id}/complete`, { runner_id: r, trained_tokens: 999 }), 409, "lease_lost");
    expect(await trainingUsage()).toBe(420);

    const waiting = await createJob(api, t.key, { training_file: t.fileId });
    expect(await (await api.call("POST", `/v1/fine_tuning/jobs/${waiting.id}/cancel`, { token: t.key })).json()).toMatchObject({ status: "cancelled", trained_tokens: null });
    expect(await trainingUsage()).toBe(420);
  });

  it("bills nothing for a job whose runner died on its last attempt, cancelled before any lease call failed it", async () => {
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "1" });
    const { t, job, r } = await runningJob(api);
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: { ...progress(3), trained_tokens: 420 } })).status).toBe(200);
    api.advance(61); // the runner died on the job's last attempt: the job has failed, as a lease call would say
    const path = `/v1/fine_tuning/jobs/${job.id}`;
    expect((await expectError(await api.call("POST", `${path}/cancel`, { token: t.key }), 409, "conflict")).message).toMatch(/has already ended \(failed\)/);
    expect(await (await api.call("GET", path, { token: t.key })).json()).toMatchObject({ status: "failed", error: { code: "lease_expired" } });
    const usage = await (await api.call("GET", "/v1/usage?group_by=kind", { token: t.key })).json();
    expect(usage.data).toEqual([]);
  });

  it("pauses a running job (its runner loses the lease) and resumes it from its last checkpoint", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const other = await tenantWithFile(api, "other");
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, "r");
    expect((await leaseOk(api, r)).lease.attempt).toBe(1);
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 4, files: ["state.bin"] })).json();
    await api.call("PUT", blobPath(up.urls["state.bin"]), { body: "state at 4" });
    expect((await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 4, metrics: { train_loss: 1 } })).status).toBe(200);
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: { ...progress(5), trained_tokens: 300 } })).status).toBe(200);

    const jobPath = `/v1/fine_tuning/jobs/${job.id}`;
    await expectError(await api.call("POST", `${jobPath}/pause`, { token: other.key }), 404, "not_found");
    const paused = await (await api.call("POST", `${jobPath}/pause`, { token: t.key })).json();
    expect(paused).toMatchObject({ status: "paused", estimated_finish: null });
    await expectError(await api.call("POST", `${jobPath}/pause`, { token: t.key }), 409, "conflict");
    // The runner's next report tells it to stop; no runner gets the job while it is paused.
    expect((await expectError(await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(6) }), 409, "lease_lost")).message).toMatch(/was paused/);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
    const events = (await (await api.call("GET", `${jobPath}/events`, { token: t.key })).json()).data.map((e: { message: string }) => e.message);
    expect(events).toContain("The job was paused; resumed, it continues from the checkpoint at step 4");

    expect(await (await api.call("POST", `${jobPath}/resume`, { token: t.key })).json()).toMatchObject({ status: "queued" });
    await expectError(await api.call("POST", `${jobPath}/resume`, { token: t.key }), 409, "conflict");
    // The paused attempt did not use up one of the job's attempts; the lease hands over the checkpoint.
    const again = await leaseOk(api, r);
    expect(again.lease).toMatchObject({ attempt: 2, max_attempts: 4 });
    expect(again.urls.checkpoint.step).toBe(4);
    // The paused copy, on the same runner, is fenced off by its attempt; the new lease reports as usual.
    const stale = await expectError(await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, attempt: 1, progress: progress(6) }), 409, "lease_lost");
    expect(stale.message).toMatch(/leased again \(attempt 2\) after your attempt 1/);
    // An attempt the job never had is not called an earlier one.
    const unknown = await expectError(await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, attempt: 3, progress: progress(6) }), 409, "lease_lost");
    expect(unknown.message).toMatch(/is on attempt 2 and was never leased as your attempt 3/);
    await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, attempt: 1, trained_tokens: 5 }), 409, "lease_lost");
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, attempt: 2, progress: progress(5) })).status).toBe(200);

    // Paused again and cancelled while paused: billed for what its last report counted.
    expect((await api.call("POST", `${jobPath}/pause`, { token: t.key })).status).toBe(200);
    expect(await (await api.call("POST", `${jobPath}/cancel`, { token: t.key })).json()).toMatchObject({ status: "cancelled", trained_tokens: 300 });
    await expectError(await api.call("POST", `${jobPath}/resume`, { token: t.key }), 409, "conflict");
  });

  it("counts an attempt whose lease had run out before a pause: the job fails on its last one instead", async () => {
    const api = await fresh({ TUNESERVE_MAX_ATTEMPTS: "2" });
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, "r");
    const path = `/v1/fine_tuning/jobs/${job.id}`;
    await leaseOk(api, r);
    api.advance(61); // the runner died: its lease ran out on attempt 1 of 2
    expect(await (await api.call("POST", `${path}/pause`, { token: t.key })).json()).toMatchObject({ status: "paused" });
    expect((await api.call("POST", `${path}/resume`, { token: t.key })).status).toBe(200);
    expect((await leaseOk(api, r)).lease).toMatchObject({ attempt: 2, max_attempts: 2 });
    api.advance(61); // and again, on its last attempt
    expect((await expectError(await api.call("POST", `${path}/pause`, { token: t.key }), 409, "conflict")).message).toMatch(/is failed/);
    expect(await (await api.call("GET", path, { token: t.key })).json()).toMatchObject({ status: "failed", error: { code: "lease_expired" } });
  });

  it("fails a job whose training file was deleted before a runner leased it", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    expect((await api.call("DELETE", `/v1/files/${t.fileId}`, { token: t.key })).status).toBe(200);
    const r = await registerRunner(api, "r");
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
    const got = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json();
    expect(got).toMatchObject({ status: "failed", error: { code: "input_missing" } });
  });
});

describe("jobs that continue a fine-tuned model", () => {
  /** Uploads the micro-llama fixture adapter (r 8, alpha 16, all seven modules) as one of the tenant's models. */
  async function uploadedModel(api: TestApi, key: string): Promise<string> {
    const f = new FormData();
    f.set("base_model", "micro-llama");
    f.set("suffix", "first");
    for (const [field, name] of [["adapter_config", "adapter_config.json"], ["adapter_model", "adapter_model.safetensors"]]) {
      f.set(field, new Blob([new Uint8Array(await readFile(`${microLlama}/adapter/${name}`))]), name);
    }
    const res = await api.call("POST", "/v1/adapters", { token: key, body: f });
    expect(res.status).toBe(201);
    return (await res.json()).model;
  }

  it("takes the parent's LoRA shape, hands its adapter to the runner, and fails the job if the parent is deleted first", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const parent = await uploadedModel(api, t.key);
    const post = (json: unknown) => api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json, headers: { "Idempotency-Key": "continue" } });
    const job = await (await post({ model: parent, training_file: t.fileId, adapter: { dropout: 0.1, r: 8 } })).json();
    expect((await post({ model: parent, training_file: t.fileId, adapter: { r: 8, dropout: 0.1 } })).headers.get("Idempotent-Replayed")).toBe("true");
    expect(job).toMatchObject({ model: parent, adapter: { type: "lora", r: 8, alpha: 16, dropout: 0.1, use_rslora: false } });
    // The shape is the parent's: another rank (or alpha, modules, rsLoRA) is a 400 naming the field.
    const bad = await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: parent, training_file: t.fileId, adapter: { r: 4 } } }), 400, "invalid_request");
    expect(bad).toMatchObject({ param: "adapter.r", message: expect.stringMatching(/continues ft:micro-llama:.*whose adapter has r=8; leave r out/) });
    // Another tenant's fine-tuned model is not there for it.
    const other = await tenantWithFile(api, "other");
    await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: other.key, json: { model: parent, training_file: other.fileId } }), 404, "not_found");

    const r = await registerRunner(api, "r");
    const lease = await leaseOk(api, r);
    expect(lease.job.model).toBe(parent);
    expect(lease.urls.base_model.id).toBe("micro-llama");
    expect(lease.urls.initial_adapter.model).toBe(parent);
    const config = await api.call("GET", blobPath(lease.urls.initial_adapter.files["adapter_config.json"]));
    expect((await config.json()).r).toBe(8);
    expect(Object.keys(lease.urls.initial_adapter.files).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);

    // A second job whose parent is deleted before a runner leases it fails, saying what is missing.
    const second = await createJob(api, t.key, { model: parent, training_file: t.fileId });
    expect((await api.call("DELETE", `/v1/models/${encodeURIComponent(parent)}`, { token: t.key })).status).toBe(200);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
    const got = await (await api.call("GET", `/v1/fine_tuning/jobs/${second.id}`, { token: t.key })).json();
    expect(got).toMatchObject({ status: "failed", error: { code: "input_missing", message: expect.stringContaining(`fine-tuned model ${parent}, which the job continues, no longer exists`) } });
  });
});

describe("results file", () => {
  it("writes a succeeded job's step metrics as a CSV file of the tenant's, listed in result_files", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId, validation_file: t.fileId });
    expect(job.result_files).toEqual([]);
    const r = await registerRunner(api, "r");
    expect((await leaseOk(api, r)).urls.validation_file).toMatchObject({ id: t.fileId, filename: "train.jsonl" });
    const uploadedWhileRunning = await uploadFile(api, t.key);
    for (const step of [1, 2]) expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(step) })).status).toBe(200);
    await runnerCall(api, `/jobs/${job.id}/events`, { runner_id: r, events: [{ message: "Step 2: validation loss=1.5", data: { step: 2, valid_loss: 1.5, valid_mean_token_accuracy: 0.25 } }] });
    // A checkpoint at step 3 carries the metrics so far, the last validation's included: not step 3's validation.
    expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, progress: progress(3) })).status).toBe(200);
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 3, files: ["state.json"] })).json();
    await api.call("PUT", blobPath(up.urls["state.json"]), { body: "{}" });
    expect((await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 3, metrics: { train_loss: 1.7, valid_loss: 1.5, valid_mean_token_accuracy: 0.25 } })).status).toBe(200);
    await putAdapter(api, (await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r })).json()).urls);
    const done = await (await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 })).json();
    expect(done.job.result_files).toHaveLength(1);
    // The last report preceded the final validation: the finished job's progress counts what it was billed for.
    expect(done.job).toMatchObject({ trained_tokens: 10, progress: { step: 3, trained_tokens: 10 } });
    const id = done.job.result_files[0];
    // A retried complete writes nothing twice.
    expect((await (await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 })).json()).job.result_files).toEqual([id]);
    const file = await (await api.call("GET", `/v1/files/${id}`, { token: t.key })).json();
    expect(file).toMatchObject({ id, object: "file", purpose: "fine-tune-results", format: "csv", filename: "step_metrics.csv", lines: 3 });
    const csv = await (await api.call("GET", `/v1/files/${id}/content`, { token: t.key })).text();
    expect(csv).toBe("step,train_loss,valid_loss,valid_mean_token_accuracy,valid_reward_accuracy\n1,1.9,,,\n2,1.8,1.5,0.25,\n3,1.7,,,\n");
    const listed = await (await api.call("GET", "/v1/files?purpose=fine-tune-results", { token: t.key })).json();
    expect(listed.data.map((f: { id: string }) => f.id)).toEqual([id]);
    // Its id is as new as the file: it lists before a file uploaded while the job ran (newest first).
    const newest = await (await api.call("GET", "/v1/files?limit=2", { token: t.key })).json();
    expect(newest.data.map((f: { id: string }) => f.id)).toEqual([id, uploadedWhileRunning]);
    // Another tenant cannot see it; the results file is not a training file.
    const other = await api.tenant("other");
    await expectError(await api.call("GET", `/v1/files/${id}`, { token: other.key }), 404, "not_found");
    const asData = await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: id } }), 400, "invalid_request");
    expect(asData.message).toMatch(/purpose 'fine-tune-results'/);

    // A job cancelled before its runner completes it leaves no results file behind.
    const late = await createJob(api, t.key, { training_file: t.fileId });
    await leaseOk(api, r);
    await putAdapter(api, (await (await runnerCall(api, `/jobs/${late.id}/outputs/uploads`, { runner_id: r })).json()).urls);
    await api.call("POST", `/v1/fine_tuning/jobs/${late.id}/cancel`, { token: t.key });
    await expectError(await runnerCall(api, `/jobs/${late.id}/complete`, { runner_id: r, trained_tokens: 10 }), 409, "lease_lost");
    const after = await (await api.call("GET", "/v1/files?purpose=fine-tune-results", { token: t.key })).json();
    expect(after.data.map((f: { id: string }) => f.id)).toEqual([id]);
  });
});

describe("checkpoints as models", () => {
  it("answers to a succeeded job's checkpoint name: a model object, its PEFT files for runners, a job may continue it; gone with the model", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId, suffix: "early" });
    const r = await registerRunner(api, "r");
    await leaseOk(api, r);
    // The runner's checkpoint: a PEFT adapter beside the optimizer state.
    const names = ["adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors"];
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 3, files: names })).json();
    for (const name of names) {
      const body = name === "optimizer.safetensors" ? "state" : new Uint8Array(await readFile(`${microLlama}/adapter/${name}`));
      expect((await api.call("PUT", blobPath(up.urls[name]), { body })).status).toBe(200);
    }
    const ck = await (await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 3, metrics: { train_loss: 1 } })).json();
    const name: string = ck.fine_tuned_model_checkpoint;
    const getModel = (token: string, model = name) => api.call("GET", `/v1/models/${encodeURIComponent(model)}`, { token });
    // Not a model while its job runs (as in OpenAI's API, only a succeeded job's checkpoints are).
    await expectError(await getModel(t.key), 404, "not_found");
    await putAdapter(api, (await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r })).json()).urls);
    const done = await (await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 })).json();
    expect(done.job.status).toBe("succeeded");

    expect(await (await getModel(t.key)).json()).toMatchObject({ id: name, object: "model", owned_by: t.id, base_model: "micro-llama", adapter_id: null });
    const other = await api.tenant("other");
    await expectError(await getModel(other.key), 404, "not_found");
    // Another step, or the same one spelled with a leading zero, names no model.
    for (const alias of [name.replace(/3$/, "4"), name.replace(/3$/, "03")]) {
      expect((await expectError(await getModel(t.key, alias), 404, "not_found")).message).toMatch(/names no checkpoint you can call: a checkpoint is a model once its job has succeeded/);
    }
    const del = await expectError(await api.call("DELETE", `/v1/models/${encodeURIComponent(name)}`, { token: t.key }), 400, "invalid_request");
    expect(del.message).toMatch(/is a checkpoint of job .*cannot be deleted on their own/);

    // Runners fetch its two PEFT files (not the optimizer state) as for any fine-tuned model.
    const files = await (await api.call("GET", `/internal/v1/adapters/${encodeURIComponent(name)}/files`, { token: api.runner })).json();
    expect(files).toMatchObject({ model: name, base_model: "micro-llama" });
    expect(files.files.map((f: { name: string }) => f.name)).toEqual(["adapter_config.json", "adapter_model.safetensors"]);

    // A job may start from it.
    const next = await createJob(api, t.key, { model: name, training_file: t.fileId });
    expect(next).toMatchObject({ model: name, adapter: { r: 8, alpha: 16 } });
    const lease = await leaseOk(api, r);
    expect(lease.job.id).toBe(next.id);
    expect(lease.urls.initial_adapter.model).toBe(name);
    expect(Object.keys(lease.urls.initial_adapter.files).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);

    // Runners holding live models are told none is gone.
    const held = { adapters: [done.adapter.model, name] };
    expect((await (await runnerCall(api, `/runners/${r}/heartbeat`, held)).json()).gone_adapters).toEqual([]);
    // Deleting the fine-tuned model takes its checkpoints (no longer models) and the runner's copy of its files.
    expect(await blobCount(api, blobKeys.jobOutputs(t.id, job.id))).toBeGreaterThan(0);
    expect((await api.call("DELETE", `/v1/models/${encodeURIComponent(done.adapter.model)}`, { token: t.key })).status).toBe(200);
    await expectError(await getModel(t.key), 404, "not_found");
    // Runners still holding them are told to drop both.
    expect((await (await runnerCall(api, `/runners/${r}/heartbeat`, held)).json()).gone_adapters).toEqual([done.adapter.model, name]);
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
    expect(await blobCount(api, blobKeys.jobOutputs(t.id, job.id))).toBe(0);
  });

  it("deletes the checkpoints and outputs of a job that ends cancelled or failed (they can never be used)", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const r = await registerRunner(api, "r");
    const checkpointed = async () => {
      const job = await createJob(api, t.key, { training_file: t.fileId });
      expect((await leaseOk(api, r)).job.id).toBe(job.id);
      const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["state.json"] })).json();
      await api.call("PUT", blobPath(up.urls["state.json"]), { body: "{}" });
      expect((await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} })).status).toBe(200);
      await putAdapter(api, (await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r })).json()).urls);
      expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(1);
      return job;
    };
    const cancelled = await checkpointed();
    // An adapter folder that a complete which lost to the cancel had begun writing.
    const lostAdapter = blobKeys.adapter(t.id, `adp_${cancelled.id.slice("ftjob-".length)}`);
    await api.deps.blobs.put(`${lostAdapter}adapter_config.json`, new TextEncoder().encode("{}"));
    expect((await api.call("POST", `/v1/fine_tuning/jobs/${cancelled.id}/cancel`, { token: t.key })).status).toBe(200);
    expect(await blobCount(api, lostAdapter)).toBe(0);
    const failed = await checkpointed();
    expect(await (await runnerCall(api, `/jobs/${failed.id}/fail`, { runner_id: r, error: { code: "oom", message: "out of memory" }, retryable: false })).json()).toMatchObject({ status: "failed" });
    for (const job of [cancelled, failed]) {
      expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
      expect(await blobCount(api, blobKeys.jobOutputs(t.id, job.id))).toBe(0);
      // The checkpoint stays listed, as the job's history.
      expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, { token: t.key })).json()).data).toHaveLength(1);
    }

    // A blob store that fails to delete leaves unused files, never a failed cancel.
    const stuck = await checkpointed();
    const deletePrefix = api.deps.blobs.deletePrefix.bind(api.deps.blobs);
    api.deps.blobs.deletePrefix = async () => {
      throw new Error("blob store down");
    };
    try {
      expect(await (await api.call("POST", `/v1/fine_tuning/jobs/${stuck.id}/cancel`, { token: t.key })).json()).toMatchObject({ status: "cancelled" });
    } finally {
      api.deps.blobs.deletePrefix = deletePrefix;
    }
    const events = (await (await api.call("GET", `/v1/fine_tuning/jobs/${stuck.id}/events`, { token: t.key })).json()).data;
    expect(events[0].message).toMatch(/^The job was cancelled/);
  });
});

describe("presigned URLs, checkpoints and complete", () => {
  it("keeps each attempt's outputs apart: a runner that lost its lease cannot replace the holder's adapter", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const [a, b] = [await registerRunner(api, "a"), await registerRunner(api, "b")];
    const stale = await leaseOk(api, a);
    api.advance(61);
    const holder = await leaseOk(api, b);
    expect(holder.urls.outputs["adapter_model.safetensors"]).not.toBe(stale.urls.outputs["adapter_model.safetensors"]);
    await putAdapter(api, holder.urls.outputs);
    // The stale runner still has its URLs (valid for an hour): what it PUTs lands in its own attempt's folder.
    for (const url of Object.values(stale.urls.outputs as Record<string, string>)) expect((await api.call("PUT", blobPath(url), { body: "not an adapter" })).status).toBe(200);
    const done = await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: b, trained_tokens: 10 });
    expect(done.status).toBe(200);
    expect((await done.json()).adapter).toMatchObject({ size_bytes: 570 + 77480 });
  });

  it("runs a job end to end: inputs through GET URLs, checkpoint, adapter through PUT URLs, one bill", async () => {
    const api = await fresh();
    const content = chatLines(5);
    const t = await tenantWithFile(api, "acme", content);
    const other = await api.tenant("other");
    const job = await createJob(api, t.key, { training_file: t.fileId, suffix: "support" });
    const r = await registerRunner(api, "r");
    const lease = await leaseOk(api, r);
    expect(lease.urls).toMatchObject({ validation_file: null, checkpoint: null, base_model: { id: "micro-llama", source: microLlamaSource, files: null } });
    // The file's name as uploaded comes with its id: the runner's messages about the file name both.
    expect(lease.urls.training_file).toMatchObject({ id: t.fileId, filename: "train.jsonl", lines: 5, format: "chat" });
    const data = await api.call("GET", blobPath(lease.urls.training_file.url));
    expect(await data.text()).toBe(content);
    // The GET URL is for that key only: swapping the key breaks the signature.
    const forged = blobPath(lease.urls.training_file.url).replace(t.fileId, "file-other");
    await expectError(await api.call("GET", forged), 403, "forbidden");

    // A checkpoint: ask for upload URLs, PUT, record (twice: idempotent).
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 5, files: ["adapter_model.safetensors", "optimizer.bin"] })).json();
    await expectError(await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 5, metrics: { train_loss: 1.5 } }), 400, "invalid_request");
    for (const [name, url] of Object.entries(up.urls as Record<string, string>)) {
      expect((await api.call("PUT", blobPath(url), { body: `bytes of ${name}` })).status).toBe(200);
    }
    const ck = await (await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 5, metrics: { train_loss: 1.5 } })).json();
    expect(ck).toMatchObject({ object: "fine_tuning.job.checkpoint", step_number: 5, fine_tuning_job_id: job.id, metrics: { step: 5, train_loss: 1.5 } });
    expect(ck.fine_tuned_model_checkpoint).toMatch(new RegExp(`^ft:micro-llama:${t.id}:support:[0-9a-z]{12}:ckpt-step-5$`));
    expect((await (await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 5, metrics: {} })).json()).id).toBe(ck.id);
    const cks = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, { token: t.key })).json();
    expect(cks.data.map((c: { id: string }) => c.id)).toEqual([ck.id]);

    // Completing before the adapter is uploaded names the missing file.
    const early = await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 1234 }), 400, "invalid_request");
    expect(early.message).toContain("adapter_config.json");
    // Fresh output URLs (a long job outlives the lease's): only the holder gets them, and they work.
    await expectError(await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: await registerRunner(api, "intruder") }), 409, "lease_lost");
    const outputs = await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r })).json();
    expect(Object.keys(outputs.urls).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    await putAdapter(api, outputs.urls);
    // Two completes at once (a runner's retry racing its first try): one success, answered alike.
    const complete = () => runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 1234, metrics: { train_loss: 1.2 } });
    const [done, twin] = await Promise.all([complete(), complete()].map(async (res) => (await res).json()));
    expect(twin).toEqual(done);
    expect(done.job).toMatchObject({ status: "succeeded", trained_tokens: 1234, fine_tuned_model: done.adapter.model });
    expect((await jobEvents(api, t.key, job.id)).filter((e) => e.message.startsWith("The job has successfully completed (train_loss=1.2)"))).toHaveLength(1);
    expect(done.adapter).toMatchObject({ object: "adapter", base_model: "micro-llama", method: "lora", rank: 8, alpha: 16, job_id: job.id, size_bytes: 570 + 77480 });
    expect(done.adapter.model).toBe(ck.fine_tuned_model_checkpoint.replace(/:ckpt-step-5$/, ""));

    // A retry by the same runner gives the same answer; another runner is refused; one adapter, one bill.
    const again = await (await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 99 })).json();
    expect(again).toEqual(done);
    const r2 = await registerRunner(api, "r2");
    await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r2, trained_tokens: 1234 }), 409, "lease_lost");
    const adapters = await (await api.call("GET", "/v1/adapters", { token: t.key })).json();
    expect(adapters.data.map((a: { id: string }) => a.id)).toEqual([done.adapter.id]);
    const usage = await (await api.call("GET", "/v1/usage?group_by=kind,model", { token: t.key })).json();
    expect(usage.data).toEqual([expect.objectContaining({ object: "usage.bucket", kind: "training_tokens", model: "micro-llama", quantity: 1234 })]);
    const byDay = await (await api.call("GET", "/v1/usage", { token: t.key })).json();
    expect(byDay.data).toHaveLength(1);
    expect(byDay.data[0].end_time - byDay.data[0].start_time).toBeLessThanOrEqual(86_400);
    const total = await (await api.call("GET", "/v1/usage?group_by=", { token: t.key })).json();
    // Without "kind" in group_by it is added anyway: different kinds are never summed together.
    expect(total.group_by).toEqual(["kind"]);
    expect(total.data).toEqual([expect.objectContaining({ kind: "training_tokens", model: null, quantity: 1234, start_time: total.start_time, end_time: total.end_time })]);
    expect((await (await api.call("GET", "/v1/usage", { token: other.key })).json()).data).toEqual([]);
    expect((await (await api.call("GET", "/v1/usage?group_by=", { token: other.key })).json()).data).toEqual([]);
    const adapterFile = await api.call("GET", `/v1/adapters/${done.adapter.id}/files/adapter_model.safetensors`, { token: t.key });
    expect(adapterFile.status).toBe(200);

    // Once the tenant deletes the model, a late retry does not bring it back (nor bill again).
    expect((await api.call("DELETE", `/v1/models/${done.adapter.model}`, { token: t.key })).status).toBe(200);
    const late = await (await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 1234 })).json();
    expect(late).toEqual({ job: done.job, adapter: null });
    expect((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()).data).toEqual([]);
    await expectError(await api.call("GET", `/v1/models/${done.adapter.model}`, { token: t.key }), 404, "not_found");
    const billed = await (await api.call("GET", "/v1/usage?group_by=kind", { token: t.key })).json();
    expect(billed.data.filter((b: { kind: string }) => b.kind === "training_tokens").map((b: { quantity: number }) => b.quantity)).toEqual([1234]);
  });

  it("hands the latest checkpoint to the runner that re-leases an expired job", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const [a, b] = [await registerRunner(api, "a"), await registerRunner(api, "b")];
    await leaseOk(api, a);
    for (const step of [2, 4]) {
      const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: a, step, files: ["state.bin"] })).json();
      await api.call("PUT", blobPath(up.urls["state.bin"]), { body: `state at ${step}` });
      expect((await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: a, step, metrics: { train_loss: 1 } })).status).toBe(200);
    }
    api.advance(61);
    const lb = await leaseOk(api, b);
    expect(lb.urls.checkpoint.step).toBe(4);
    expect(await (await api.call("GET", blobPath(lb.urls.checkpoint.files["state.bin"]))).text()).toBe("state at 4");
  });

  it("refuses an uploaded adapter that does not fit the job", async () => {
    const api = await fresh();
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId, adapter: { r: 4 } });
    const r = await registerRunner(api, "r");
    const lease = await leaseOk(api, r);
    await putAdapter(api, lease.urls.outputs);
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 5 }), 400, "invalid_file");
    expect(err.message).toContain("r=8");
    await api.call("PUT", blobPath(lease.urls.outputs["adapter_model.safetensors"]), { body: "not safetensors" });
    await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 5 }), 400, "invalid_file");
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json()).status).toBe("running");
  });
});
