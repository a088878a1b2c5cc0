// Runner protocol, part 2: lease the next queued job (with presigned URLs for its inputs and outputs),
// heartbeat progress to keep the lease, append events, and fail an attempt. See docs/runner-protocol.md.
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { baseModels, runners } from "../db/schema.js";
import { notFound } from "../errors.js";
import { findTenantFile } from "../jobs/files.js";
import { leaseLost, requireHolder } from "../jobs/holder.js";
import { appendEventsBody, failBody, jobHeartbeatBody, leaseBody, type Progress } from "../jobs/protocol.js";
import { jobParent, jobProgress, jobSchema, toJob } from "../jobs/shape.js";
import { runnerCheckpointFormats } from "../jobs/checkpoint-formats.js";
import { noteJobsWaitingForCheckpointFormat } from "../jobs/checkpoint-wait.js";
import { liveSince } from "../inference/runners.js";
import { findCallableModel, peftFilesOf } from "../jobs/checkpoint-models.js";
import { runBatch } from "../db/batch.js";
import { discardEndedJobBlobs } from "../jobs/discard.js";
import { assertCurrentInstance } from "../jobs/runner-takeover.js";
import { RUNNER_SHUTDOWN, eventInsert, extendLease, failAttempt, failExhaustedJobs, findJob, leaseNextJob, leasedUnder } from "../jobs/store.js";
import { leaseUrls, leaseUrlsSchema } from "../jobs/urls.js";
import { bearerSecurity, errorResponses, errorSchema, json, jsonBody } from "../lib/openapi.js";

export const jobIdParam = z.object({ job_id: z.string().max(128) });
const leaseInfo = z.object({
  runner_id: z.string(),
  expires_at: z.number().int(),
  attempt: z.number().int().openapi({ description: "1 on the first lease; grows on every re-lease" }),
  max_attempts: z.number().int(),
});
export const leaseAnswerSchema = z.object({ job: jobSchema, lease: leaseInfo, urls: leaseUrlsSchema }).openapi("JobLease");
const leaseStateSchema = z.object({ job_id: z.string(), status: z.string(), lease_expires_at: z.number().int().nullable() }).openapi("JobLeaseState");
const conflict = json(z.any(), "lease_lost: this runner does not hold the job (cancelled, taken over or finished)");

const failStateSchema = leaseStateSchema.extend({ attempt: z.number().int(), max_attempts: z.number().int() });

export type LeaseAnswer = z.infer<typeof leaseAnswerSchema>;
export type LeaseState = z.infer<typeof leaseStateSchema>;
export type FailState = z.infer<typeof failStateSchema>;

const lease = createRoute({
  method: "post",
  path: "/internal/v1/jobs/lease",
  security: bearerSecurity,
  request: jsonBody(leaseBody),
  responses: { 200: json(leaseAnswerSchema, "a job is now leased to this runner"), 204: { description: "nothing is queued for this runner's models" }, 409: json(errorSchema, "another process has registered this runner's name since: this one must stop"), ...errorResponses },
});
const heartbeat = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/heartbeat",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(jobHeartbeatBody) },
  responses: { 200: json(leaseStateSchema, "the lease, extended"), 409: conflict, ...errorResponses },
});
const events = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/events",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(appendEventsBody) },
  responses: { 200: json(z.object({ appended: z.number().int() }), "events stored"), 409: conflict, ...errorResponses },
});
const fail = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/fail",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(failBody) },
  responses: { 200: json(failStateSchema, "queued again (retry) or failed"), 409: conflict, ...errorResponses },
});

/** A lease whose inputs vanished (file deleted after creation) cannot run anywhere: fail it and look further. */
const maxSkips = 5;

const sameStep = (a: Progress | null, b: { step: number }) => a !== null && a.step === b.step;

export function registerInternalJobs(app: Router): void {
  app.openapi(lease, async (c) => {
    const deps = c.var.deps;
    const { db, config } = deps;
    const { runner_id, instance, idempotency_key: key } = c.req.valid("json");
    const runner = await db.query.runners.findFirst({ where: eq(runners.id, runner_id) });
    if (!runner) throw notFound("runner", runner_id, "runner_id");
    assertCurrentInstance(runner, instance);
    const now = deps.now();
    await db.update(runners).set({ lastSeenAt: now }).where(eq(runners.id, runner_id));
    await discardEndedJobBlobs(deps.blobs, await failExhaustedJobs(db, now));
    const leaseSeconds = config.TUNESERVE_LEASE_SECONDS;
    // A retry of a call whose answer was lost (same idempotency key) gets the job that call leased, still under
    // its attempt, rather than another one: the runner would not know it holds the first, which would sit out
    // its lease and spend an attempt (on the last one, fail). Without a key, every call leases anew. (A key,
    // rather than the runner listing the jobs it holds for the API to hand back the rest: it matches exactly the
    // lease whose answer was lost, and cannot end one that another copy of the runner is working on.)
    const again = () => (key === undefined ? Promise.resolve(null) : leasedUnder(db, { runnerId: runner_id, key, now, leaseSeconds }));
    for (let i = 0; i < maxSkips; i++) {
      let replayed = await again();
      const leased = replayed ? null : await leaseNextJob(db, { runnerId: runner_id, models: JSON.parse(runner.models), formats: runnerCheckpointFormats(runner), now, leaseSeconds, key });
      // Nothing leasable may also mean the first call, still running, just took a job under this key.
      if (!replayed && !leased) replayed = await again();
      const job = replayed ?? leased;
      if (!job) {
        // Jobs this runner skipped may be ones no live runner can resume: their tenants are told why they wait.
        await noteJobsWaitingForCheckpointFormat(db, { models: JSON.parse(runner.models), now, liveSince: liveSince(now, leaseSeconds) });
        return c.body(null, 204);
      }
      const training = await findTenantFile(db, job.tenantId, job.trainingFile);
      const validation = job.validationFile ? await findTenantFile(db, job.tenantId, job.validationFile) : null;
      const model = await db.query.baseModels.findFirst({ where: eq(baseModels.id, job.model) });
      const parent = jobParent(job);
      const parentModel = parent ? await findCallableModel(db, job.tenantId, parent.model) : null;
      const parentFiles = parentModel && parentModel.kind !== "base" ? peftFilesOf(parentModel) : null;
      if (!training || !model || (job.validationFile && !validation) || (parent && !parentFiles)) {
        const missing = !model
          ? `base model ${job.model}`
          : !training
            ? `training file ${job.trainingFile}`
            : job.validationFile && !validation
              ? `validation file ${job.validationFile}`
              : `fine-tuned model ${parent!.model}, which the job continues,`;
        const error = { code: "input_missing", message: `${missing} no longer exists` };
        const failed = await failAttempt(db, { jobId: job.id, holder: { runner_id, attempt: job.attempt }, now, error, retryable: false });
        // Null when the job was cancelled or paused meanwhile: it did not fail, and its history must not say so.
        if (failed) {
          await eventInsert(db, job.id, now, { level: "error", message: `The job failed: ${error.message}` });
          await discardEndedJobBlobs(deps.blobs, [failed]);
        }
        continue;
      }
      const urls = await leaseUrls(deps, job, { training, validation, parent: parentFiles }, model.source);
      const resume = urls.checkpoint ? `, resuming from step ${urls.checkpoint.step}` : "";
      if (!replayed) await eventInsert(db, job.id, now, { level: "info", message: `Fine-tuning job started on runner ${runner.name} (attempt ${job.attempt} of ${job.maxAttempts}${resume})` });
      return c.json({ job: toJob(job), lease: { runner_id, expires_at: job.leaseExpiresAt!, attempt: job.attempt, max_attempts: job.maxAttempts }, urls }, 200);
    }
    return c.body(null, 204);
  });

  app.openapi(heartbeat, async (c) => {
    const { db, now, config } = c.var.deps;
    const { job_id } = c.req.valid("param");
    const { progress, ...holder } = c.req.valid("json");
    const before = await requireHolder(db, job_id, holder);
    const t = now();
    // A new attempt's heartbeats before its first step do not know the count yet: the last one reported stays,
    // so a cancel meanwhile still bills the work done.
    const stored: Progress = { ...progress, trained_tokens: progress.trained_tokens ?? jobProgress(before)?.trained_tokens, updated_at: t };
    // One metrics event per trained step reported, however often the runner heartbeats within a step (a
    // heartbeat before the first step of an attempt carries no loss and makes no event). Whether the step is new
    // is decided with the update, not from `before`: heartbeats racing each other all read the same `before`.
    let stepEvent;
    if (progress.loss !== null && !sameStep(jobProgress(before), progress)) {
      const loss = progress.loss.toFixed(4);
      const data = { step: progress.step, total_steps: progress.total_steps, epoch: progress.epoch, train_loss: progress.loss, lr: progress.lr ?? null, tokens_per_s: progress.tokens_per_s ?? null };
      stepEvent = { step: progress.step, event: { level: "info" as const, type: "metrics" as const, message: `Step ${progress.step}/${progress.total_steps}: training loss=${loss}`, data } };
    }
    const row = await extendLease(db, { jobId: job_id, holder, now: t, leaseSeconds: config.TUNESERVE_LEASE_SECONDS, progress: JSON.stringify(stored), stepEvent });
    if (!row) throw leaseLost(await findJob(db, job_id), job_id, holder);
    return c.json({ job_id, status: row.status, lease_expires_at: row.leaseExpiresAt }, 200);
  });

  app.openapi(events, async (c) => {
    const { db, now } = c.var.deps;
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    await requireHolder(db, job_id, body);
    const t = now();
    await runBatch(db, body.events.map((e) => eventInsert(db, job_id, t, { level: e.level, message: e.message, data: e.data ?? null })));
    return c.json({ appended: body.events.length }, 200);
  });

  app.openapi(fail, async (c) => {
    const { db, now } = c.var.deps;
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const t = now();
    const row = await failAttempt(db, { jobId: job_id, holder: body, now: t, error: body.error, retryable: body.retryable });
    if (!row) throw leaseLost(await findJob(db, job_id), job_id, body);
    const what = `${body.error.code}: ${body.error.message}`;
    const message =
      row.status === "queued" && body.error.code === RUNNER_SHUTDOWN
        ? `The runner shut down during attempt ${row.attempt} (${what}); the job goes back to the queue, and the attempt is not counted`
        : row.status === "queued"
        ? `Attempt ${row.attempt} of ${row.maxAttempts} failed (${what}); the job goes back to the queue`
        : `The job failed on attempt ${row.attempt} of ${row.maxAttempts}: ${what}${body.retryable ? " (no attempts left)" : ""}`;
    await eventInsert(db, job_id, t, { level: row.status === "queued" ? "warn" : "error", message });
    await discardEndedJobBlobs(c.var.deps.blobs, [row]);
    return c.json({ job_id, status: row.status, lease_expires_at: row.leaseExpiresAt, attempt: row.attempt, max_attempts: row.maxAttempts }, 200);
  });
}
