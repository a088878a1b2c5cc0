// Runners as separate processes against one API: a runner SIGKILLed mid-training is replaced by a second one
// that resumes from the last checkpoint (billed once), a runner sent SIGTERM checkpoints the step it reached
// and the next one resumes there, a paused job resumes from its checkpoint, a runner whose name another
// process took exits, and a job cancelled mid-training stops its runner, which then takes the next job.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { apiClient, factsJsonl, spawnCli, waitFor, type Proc } from "./harness.js";

let dir: string;
let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof apiClient>;
let modelDir: string;
const procs: Proc[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-e2e-runners-"));
  // A short lease, so a killed runner's job is free again within seconds.
  server = await startServer({ port: 0, dataDir: join(dir, "api"), env: { TUNESERVE_LEASE_SECONDS: "3" } });
  api = apiClient(server.url);
  modelDir = await ensureBuiltinModel(join(dir, "models", "tuneserve-micro"));
  const r = await api.call("POST", "/admin/v1/models", server.adminToken, { id: "tuneserve-micro", source: modelDir });
  expect(r.status).toBe(201);
});

// Each test stops its runners; one that failed midway must not leave a runner taking the next test's jobs.
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop("SIGKILL")));
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Starts `tuneserve runner` (training only: serve.test.ts covers inference) as a child process; waits until it registered. */
async function runner(name: string, checkpointEvery: number): Promise<Proc> {
  const p = spawnCli(["runner", "--name", name, "--model", `tuneserve-micro=${modelDir}`, "--cache-dir", join(dir, name), "--checkpoint-every", String(checkpointEvery), "--inference", "off"], {
    TUNESERVE_API_URL: server.url,
    TUNESERVE_RUNNER_TOKEN: server.runnerToken,
    TUNESERVE_RUNNER_POLL_SECONDS: "0.3",
    TUNESERVE_RUNNER_POLL_MAX_SECONDS: "1",
  });
  procs.push(p);
  await p.waitLine((l) => l.msg === "tuneserve runner started", 60_000);
  return p;
}

const hyper = (n_epochs: number) => ({ type: "supervised", supervised: { hyperparameters: { n_epochs, batch_size: 1, learning_rate_multiplier: 5 } } });
const finished = (key: string, id: string) => api.finished(key, id, 150_000);

describe("runner processes", () => {
  it("resumes a SIGKILLed runner's job from its checkpoint on a second runner, billing once", async () => {
    const t = await api.tenant(server.adminToken, "crashy");
    const fileId = await api.upload(t.key, factsJsonl(4));
    const job = await api.createJob(t.key, { model: "tuneserve-micro", training_file: fileId, method: hyper(6), adapter: { r: 4, alpha: 8 } });
    const first = await runner("runner-a", 10);
    const ckpt = await first.waitLine((l) => l.msg === "checkpoint recorded" && l.job_id === job.id, 90_000);
    expect(await first.stop("SIGKILL")).toBeNull(); // killed by the signal: no exit code, no goodbye
    const killedAt = (await api.job(t.key, job.id)).progress.step as number;
    expect(killedAt).toBeLessThan(72); // 12 examples × 6 epochs: it was still training

    const second = await runner("runner-b", 10);
    const done = await finished(t.key, job.id);
    expect(done.status).toBe("succeeded");
    const leased = await second.waitLine((l) => l.msg === "leased job" && l.job_id === job.id);
    expect(leased.attempt).toBe(2);
    const resumeStep = leased.resume_step as number;
    expect(resumeStep).toBeGreaterThanOrEqual(ckpt.step as number);
    expect(resumeStep).toBeGreaterThan(0);

    const events = await api.events(t.key, job.id);
    expect(events.some((e) => e.message.includes(`attempt 2 of 3, resuming from step ${resumeStep}`))).toBe(true);
    // The trainer loaded the checkpoint and carried on from it rather than starting over.
    expect(events.some((e) => new RegExp(`resumed from .* at step ${resumeStep} of 72$`).test(e.message))).toBe(true);
    const resumedAt = events.findIndex((e) => e.message.includes("resuming from step"));
    const stepsAfter = events.slice(resumedAt).filter((e) => e.type === "metrics").map((e) => e.data.step as number).filter((s) => s !== resumeStep);
    expect(Math.min(...stepsAfter)).toBeGreaterThan(resumeStep);
    expect(Math.min(...stepsAfter)).toBeLessThanOrEqual(resumeStep + 5);
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(await api.trainingUsage(t.key)).toBe(done.trained_tokens);
    await second.stop("SIGTERM");
  });

  it("stops a runner that was frozen past its lease once it wakes up, while the new holder finishes the job", async () => {
    const t = await api.tenant(server.adminToken, "sleepy");
    const fileId = await api.upload(t.key, factsJsonl(4));
    const job = await api.createJob(t.key, { model: "tuneserve-micro", training_file: fileId, method: hyper(6), adapter: { r: 4, alpha: 8 } });
    const frozen = await runner("runner-f", 10);
    await frozen.waitLine((l) => l.msg === "checkpoint recorded" && l.job_id === job.id, 90_000);
    frozen.child.kill("SIGSTOP"); // alive but silent, like a long GC pause or a partitioned network
    const taker = await runner("runner-g", 10);
    await taker.waitLine((l) => l.msg === "leased job" && l.job_id === job.id && l.attempt === 2, 60_000);
    frozen.child.kill("SIGCONT");
    const ended = await frozen.waitLine((l) => l.msg === "job attempt ended" && l.job_id === job.id, 60_000);
    expect(ended.outcome).toBe("lease_lost");
    expect(frozen.lines.some((l) => l.msg === "lease lost; stopping the job" && /leased to runner/.test(String(l.reason)))).toBe(true);
    const done = await finished(t.key, job.id);
    expect(done.status).toBe("succeeded");
    expect(await api.trainingUsage(t.key)).toBe(done.trained_tokens);
    const adapters = await api.call("GET", "/v1/adapters", t.key);
    expect(adapters.json.data).toHaveLength(1);
  });

  it("on SIGTERM checkpoints the step it reached and hands the job back; the next runner resumes from exactly that step, billing once", async () => {
    const t = await api.tenant(server.adminToken, "restarty");
    const fileId = await api.upload(t.key, factsJsonl(4));
    const job = await api.createJob(t.key, { model: "tuneserve-micro", training_file: fileId, method: hyper(30), adapter: { r: 4, alpha: 8 } });
    // No periodic checkpoint: whatever checkpoint the job has, the shutdown wrote it.
    const p = await runner("runner-d", 0);
    await waitFor("training progress", async () => ((await api.job(t.key, job.id)).progress?.step >= 3 ? true : undefined));
    expect(await p.stop("SIGTERM")).toBe(0);
    const saved = p.lines.filter((l) => l.msg === "checkpoint recorded" && l.job_id === job.id);
    expect(saved).toHaveLength(1);
    const step = saved[0].step as number;
    expect(step).toBeGreaterThanOrEqual(3);
    expect(step).toBeLessThan(360); // 12 examples × 30 epochs (enough that a busy test machine stops it mid-run): it was still training

    const back = await api.job(t.key, job.id);
    expect(back.status).toBe("queued"); // at once, without waiting for the lease to expire
    expect(back.progress.step).toBe(step); // the step handed back was reported before the hand-back
    expect((await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, t.key)).json.data.map((c: { step_number: number }) => c.step_number)).toEqual([step]);
    expect((await api.events(t.key, job.id)).some((e) => /runner_shutdown.*resumes from the checkpoint at step/.test(e.message))).toBe(true);

    const next = await runner("runner-e", 20);
    const leased = await next.waitLine((l) => l.msg === "leased job" && l.job_id === job.id);
    expect(leased).toMatchObject({ attempt: 2, resume_step: step });
    const done = await finished(t.key, job.id);
    expect(done.status).toBe("succeeded");
    const events = await api.events(t.key, job.id);
    expect(events.some((e) => e.message === `resumed from the checkpoint at step ${step} of 360`)).toBe(true);
    // No step trained twice: the first step after the resume is the next one.
    const resumedAt = events.findIndex((e) => e.message.includes("resuming from step"));
    const stepsAfter = events.slice(resumedAt).filter((e) => e.type === "metrics").map((e) => e.data.step as number).filter((s) => s !== step);
    expect(Math.min(...stepsAfter)).toBe(step + 1);
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(await api.trainingUsage(t.key)).toBe(done.trained_tokens);
    expect(await next.stop("SIGTERM")).toBe(0);
  });

  it("pauses a job mid-training (its runner stops) and resumes it from the checkpoint to success, billed once", async () => {
    const t = await api.tenant(server.adminToken, "pausy");
    const fileId = await api.upload(t.key, factsJsonl(4));
    // rsLoRA too: the runner trains with alpha/√r and writes use_rslora into the adapter it hands in.
    const job = await api.createJob(t.key, { model: "tuneserve-micro", training_file: fileId, method: hyper(12), adapter: { r: 4, alpha: 8, use_rslora: true } });
    const p = await runner("runner-p", 5);
    const ckpt = await p.waitLine((l) => l.msg === "checkpoint recorded" && l.job_id === job.id, 90_000);
    expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/pause`, t.key)).json.status).toBe("paused");
    const ended = await p.waitLine((l) => l.msg === "job attempt ended" && l.job_id === job.id, 30_000);
    expect(ended.outcome).toBe("lease_lost");
    expect((await api.job(t.key, job.id)).status).toBe("paused");

    expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/resume`, t.key)).json.status).toBe("queued");
    const leased = await p.waitLine((l) => l.msg === "leased job" && l.job_id === job.id && (l.resume_step as number) > 0, 60_000);
    expect(leased.resume_step).toBeGreaterThanOrEqual(ckpt.step as number);
    const done = await finished(t.key, job.id);
    expect(done.status).toBe("succeeded");
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(await api.trainingUsage(t.key)).toBe(done.trained_tokens);
    const [adapter] = (await api.call("GET", "/v1/adapters", t.key)).json.data;
    expect((await api.call("GET", `/v1/adapters/${adapter.id}/files/adapter_config.json`, t.key)).json).toMatchObject({ r: 4, lora_alpha: 8, use_rslora: true });
    expect(await p.stop("SIGTERM")).toBe(0);
  });

  it("exits (code 1) once another process has registered its name: two runners must not share one id", async () => {
    const dup = await runner("dup", 10);
    // A training-only runner has no URL to ask, so the API lets the newcomer take the name over.
    const r = await api.call("POST", "/internal/v1/runners/register", server.runnerToken, { name: "dup", instance: "someone-else-1", models: ["tuneserve-micro"], capacity: 1 });
    expect(r.status).toBe(200);
    const said = await dup.waitLine((l) => l.level === "error" && typeof l.msg === "string" && l.msg.startsWith("another process has registered this runner's name"), 30_000);
    expect(said.error).toContain("superseded");
    expect(await waitFor("the superseded runner to exit", async () => dup.child.exitCode ?? undefined, 30_000)).toBe(1);
  });

  it("stops training a cancelled job and leases the next one", async () => {
    const t = await api.tenant(server.adminToken, "fickle");
    const fileId = await api.upload(t.key, factsJsonl(4));
    const long = await api.createJob(t.key, { model: "tuneserve-micro", training_file: fileId, method: hyper(50), adapter: { r: 4, alpha: 8 } });
    const p = await runner("runner-c", 0);
    await waitFor("training progress", async () => ((await api.job(t.key, long.id)).progress?.step >= 2 ? true : undefined));
    const cancelled = await api.call("POST", `/v1/fine_tuning/jobs/${long.id}/cancel`, t.key);
    expect(cancelled.json.status).toBe("cancelled");
    const ended = await p.waitLine((l) => l.msg === "job attempt ended" && l.job_id === long.id, 30_000);
    expect(ended.outcome, JSON.stringify(p.lines.slice(-8))).toBe("lease_lost");
    const stoppedAt = (await api.job(t.key, long.id)).progress.step as number;
    expect(stoppedAt).toBeLessThan(600); // 12 examples × 50 epochs: stopped long before the end

    const next = await api.createJob(t.key, { model: "tuneserve-micro", training_file: fileId, method: hyper(1), adapter: { r: 4, alpha: 8 } });
    expect((await finished(t.key, next.id)).status).toBe("succeeded");
    const after = await api.job(t.key, long.id);
    expect(after.status).toBe("cancelled");
    // Billed for the steps its last progress report counted, once, beside the finished job.
    expect(after.trained_tokens).toBeGreaterThan(0);
    expect(after.trained_tokens).toBe(after.progress.trained_tokens);
    expect(await api.trainingUsage(t.key)).toBe(after.trained_tokens + (await api.job(t.key, next.id)).trained_tokens);
    expect(await p.stop("SIGTERM")).toBe(0);
  });
});
