// A runner's shutdown seen from one job attempt (TrainingExecution against the real API over HTTP, the real
// engine in a worker thread): the trainer checkpoints the step it reached before the job is handed back, the
// next attempt resumes there, a trainer that does not hand a checkpoint over in time is cancelled at the
// deadline, and an attempt that already trained its last step finishes instead (across an API outage, and a
// blob store refusing an expired or timed-out upload, too).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";
import { CHECKPOINT_VERSION, RESUMABLE_CHECKPOINT_VERSIONS } from "../../../gpu-runner/src/engine/train/checkpoint.js";
import { startTrainingWorker, type TrainEvent } from "../../../gpu-runner/src/engine/train/loop.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { ApiCallError, RunnerApiClient } from "../../../gpu-runner/src/runner/api-client.js";
import { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import type { ExecutorDeps, TrainingStarter } from "../../../gpu-runner/src/runner/executor-deps.js";
import { TrainingExecution } from "../../../gpu-runner/src/runner/training-executor.js";
import { apiClient, factsJsonl } from "../e2e/harness.js";
import { listenLocal } from "../../helpers/http-server.js";

let dir: string;
let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof apiClient>;
let client: RunnerApiClient;
let runnerId: string;
let models: ModelCache;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-shutdown-"));
  server = await startServer({ port: 0, dataDir: join(dir, "api"), env: {} });
  api = apiClient(server.url);
  const modelDir = await ensureBuiltinModel(join(dir, "models", "tuneserve-micro"));
  expect((await api.call("POST", "/admin/v1/models", server.adminToken, { id: "tuneserve-micro", source: modelDir })).status).toBe(201);
  client = new RunnerApiClient(server.url, server.runnerToken);
  // As startRunner registers: a runner that declared no formats is leased no job with this build's checkpoints.
  runnerId = (await client.register({ name: "in-process", models: ["tuneserve-micro"], capacity: 1, checkpoint_formats: [...RESUMABLE_CHECKPOINT_VERSIONS] })).id;
  models = new ModelCache([{ id: "tuneserve-micro", dir: modelDir }], join(dir, "cache"));
});

// Each test leases its own job: one left queued (handed back, or by a failed test) is cancelled.
const created: Array<{ key: string; id: string }> = [];
afterEach(async () => {
  for (const job of created.splice(0)) await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, job.key);
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A queued job of a new tenant: 12 examples, batch 1, so `epochs` × 12 steps. */
async function newJob(tenant: string, epochs: number) {
  const t = await api.tenant(server.adminToken, tenant);
  const file = await api.upload(t.key, factsJsonl(4));
  const job = await api.createJob(t.key, { model: "tuneserve-micro", training_file: file, method: { type: "supervised", supervised: { hyperparameters: { n_epochs: epochs, batch_size: 1, learning_rate_multiplier: 5 } } }, adapter: { r: 4, alpha: 8 } });
  created.push({ key: t.key, id: job.id });
  return { key: t.key, id: job.id as string };
}

/**
 * Leases the job and runs one attempt with the real trainer; `onTrainEvent` sees every trainer event with the
 * execution, to stop it. `ignoreSuspend` plays a trainer whose step outlasts the shutdown deadline.
 */
async function attempt(jobId: string, o: { onTrainEvent?: (e: TrainEvent, exec: TrainingExecution) => void; ignoreSuspend?: boolean; shutdownCheckpointMs?: number; client?: RunnerApiClient } = {}) {
  const lease = await client.lease(runnerId);
  expect(lease?.job.id).toBe(jobId);
  const events: TrainEvent[] = [];
  const logs: Array<{ level: string; msg: string; data?: Record<string, unknown> }> = [];
  let exec: TrainingExecution;
  const startTraining: TrainingStarter = (spec, onEvent) => {
    const w = startTrainingWorker(spec, (e) => {
      events.push(e);
      onEvent(e);
      o.onTrainEvent?.(e, exec);
    });
    return o.ignoreSuspend ? { result: w.result, cancel: () => w.cancel(), suspend: () => {} } : w;
  };
  const deps: ExecutorDeps = {
    client: o.client ?? client, runnerId, runnerName: "in-process", leaseSeconds: 60, models, workRoot: join(dir, "jobs"), checkpointEvery: 0,
    shutdownCheckpointMs: o.shutdownCheckpointMs ?? 20_000, spinTraining: false, startTraining, log: (level, msg, data) => void logs.push({ level, msg, data }),
  };
  exec = new TrainingExecution(deps, lease!);
  const outcome = await exec.run();
  const steps = events.flatMap((e) => (e.type === "progress" ? [e.step] : []));
  return { lease: lease!, outcome, events, steps, logs };
}

const checkpointSteps = async (key: string, id: string) => ((await api.call("GET", `/v1/fine_tuning/jobs/${id}/checkpoints`, key)).json.data as Array<{ step_number: number }>).map((c) => c.step_number).sort((a, b) => a - b);
const stopAtStep = (n: number) => (e: TrainEvent, exec: TrainingExecution) => void (e.type === "progress" && e.step === n && exec.stop());

it("hands the job back with a checkpoint of the last step trained, and the next attempt resumes from exactly there", async () => {
  const job = await newJob("handback", 20);
  const first = await attempt(job.id, { onTrainEvent: stopAtStep(2) });
  expect(first.outcome).toBe("stopped");
  const reached = first.steps.at(-1)!;
  expect(reached).toBeGreaterThanOrEqual(2);
  expect(reached).toBeLessThan(240);
  expect(first.events.filter((e) => e.type === "checkpoint").map((e) => e.step)).toEqual([reached]);
  expect(await checkpointSteps(job.key, job.id)).toEqual([reached]);
  const back = await api.job(job.key, job.id);
  expect(back).toMatchObject({ status: "queued", progress: { step: reached } });
  expect(first.logs.find((l) => l.msg === "job attempt failed")?.data).toMatchObject({ code: "runner_shutdown", message: `runner in-process shut down during the attempt; the next attempt resumes from the checkpoint at step ${reached}` });

  const second = await attempt(job.id);
  expect(second.lease.urls.checkpoint?.step).toBe(reached);
  // Recorded in the format the engine wrote it in, which the API hands over with it.
  expect(second.lease.urls.checkpoint?.format).toBe(CHECKPOINT_VERSION);
  expect(second.outcome).toBe("succeeded");
  expect(second.steps[0]).toBe(reached + 1);
  expect(second.steps.at(-1)).toBe(240);
  const done = await api.job(job.key, job.id);
  expect(done.status).toBe("succeeded");
  expect(await api.trainingUsage(job.key)).toBe(done.trained_tokens);
});

it("cancels the training at the deadline when no checkpoint comes, and hands the job back without one", async () => {
  const job = await newJob("deadline", 20);
  let stoppedAt = 0;
  const r = await attempt(job.id, { ignoreSuspend: true, shutdownCheckpointMs: 300, onTrainEvent: (e, exec) => void (e.type === "progress" && e.step === 2 && ((stoppedAt = Date.now()), exec.stop())) });
  expect(r.outcome).toBe("stopped");
  expect(Date.now() - stoppedAt).toBeLessThan(5_000);
  expect(r.logs.some((l) => l.level === "warn" && l.msg === "no checkpoint handed over within the shutdown deadline; cancelling the training")).toBe(true);
  expect(r.events.some((e) => e.type === "checkpoint")).toBe(false);
  expect(await checkpointSteps(job.key, job.id)).toEqual([]);
  expect(r.logs.find((l) => l.msg === "job attempt failed")?.data).toMatchObject({ code: "runner_shutdown", message: expect.stringMatching(/resumes from the start$/) });
  expect((await api.job(job.key, job.id)).status).toBe("queued");
});

it("finishes an attempt whose last step is trained when the shutdown comes, rather than handing it back", async () => {
  const job = await newJob("last-step", 1);
  const r = await attempt(job.id, { onTrainEvent: stopAtStep(12) });
  expect(r.outcome).toBe("succeeded");
  expect((await api.job(job.key, job.id)).status).toBe("succeeded");
});

it("keeps handing a trained job in while the API is unreachable, rather than leaving it to expire (and fail on its last attempt)", async () => {
  const job = await newJob("outage", 1);
  // The first complete meets an API that stays down through the client's own retries.
  let outages = 1;
  const flaky = new (class extends RunnerApiClient {
    override complete(...args: Parameters<RunnerApiClient["complete"]>) {
      if (outages-- > 0) return Promise.reject(new ApiCallError(`POST /internal/v1/jobs/${job.id}/complete: gave up after 6 tries: fetch failed`, null, null, true));
      return super.complete(...args);
    }
  })(server.url, server.runnerToken);
  const r = await attempt(job.id, { client: flaky });
  expect(r.outcome).toBe("succeeded");
  expect(r.logs.some((l) => l.level === "warn" && l.msg === "could not hand the trained job in yet; trying again")).toBe(true);
  const done = await api.job(job.key, job.id);
  expect(done.status).toBe("succeeded");
  expect(await api.trainingUsage(job.key)).toBe(done.trained_tokens);
});

/**
 * A client whose first hand-ins get output URLs the blob store refuses: `refusals` are the blob store's
 * answers, one per hand-in (a stand-in S3 serves them), before the API's real URLs.
 */
async function refusingUploads(refusals: Array<{ status: number; body: string }>) {
  const blobStore = await listenLocal((req, res) => {
    req.resume();
    req.on("end", () => {
      const a = refusals[Number(new URL(req.url!, "http://x").searchParams.get("try"))];
      res.writeHead(a.status, { "content-type": "application/xml" });
      res.end(a.body);
    });
  });
  let tries = 0;
  const client = new (class extends RunnerApiClient {
    override async outputUploads(...args: Parameters<RunnerApiClient["outputUploads"]>) {
      const real = await super.outputUploads(...args);
      const n = tries++;
      if (n >= refusals.length) return real;
      return { ...real, urls: Object.fromEntries(Object.keys(real.urls).map((name) => [name, `${blobStore.url}/${name}?try=${n}`])) };
    }
  })(server.url, server.runnerToken);
  return { client, close: () => blobStore.close() };
}

const s3Error = (code: string, message: string) => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;

it("hands a trained job in with fresh URLs when the blob store refuses an upload as timed out or expired", async () => {
  const job = await newJob("blob-timeout", 1);
  const blob = await refusingUploads([
    { status: 400, body: s3Error("RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.") },
    { status: 403, body: s3Error("AccessDenied", "Request has expired") },
  ]);
  try {
    const r = await attempt(job.id, { client: blob.client });
    expect(r.outcome).toBe("succeeded");
    const retries = r.logs.filter((l) => l.level === "warn" && l.msg === "could not hand the trained job in yet; trying again");
    expect(retries.map((l) => String(l.data?.error).match(/: (\d{3}) /)?.[1])).toEqual(["400", "403"]);
    const done = await api.job(job.key, job.id);
    expect(done.status).toBe("succeeded");
  } finally {
    await blob.close();
  }
});

it("fails a trained job at once when the blob store refuses its adapter for good (413 too large)", async () => {
  const job = await newJob("blob-too-large", 1);
  const blob = await refusingUploads([{ status: 413, body: s3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size") }]);
  try {
    const r = await attempt(job.id, { client: blob.client });
    expect(r.outcome).toBe("failed");
    expect(r.logs.some((l) => l.msg === "could not hand the trained job in yet; trying again")).toBe(false);
    const failed = await api.job(job.key, job.id);
    expect(failed).toMatchObject({ status: "failed", error: { code: "complete_rejected", message: expect.stringMatching(/^PUT .*adapter_config\.json\?…: 413 .*EntityTooLarge/) } });
  } finally {
    await blob.close();
  }
});
