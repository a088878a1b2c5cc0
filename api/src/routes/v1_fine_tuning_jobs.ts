// Tenant fine-tuning jobs, OpenAI-compatible: create, list, get, cancel. Jobs wait in `queued` until a runner
// leases them through the runner protocol (internal_jobs.ts, docs/runner-protocol.md).
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, isNull, lt, sql, type SQL } from "drizzle-orm";
import type { Router } from "../app.js";
import type { Db } from "../db/client.js";
import { checkpoints, jobs } from "../db/schema.js";
import { ApiError, notFound } from "../errors.js";
import { createJob, createJobBody } from "../jobs/create.js";
import { jobIdPrefix, jobSchema, toJob, type JobRow } from "../jobs/shape.js";
import { cancelJob, eventInsert, failExhaustedJobs, pauseJob, resumeJob } from "../jobs/store.js";
import { idempotencyHeaders, parseIdempotencyKey } from "../lib/idempotency-keys.js";
import { createJobOnce } from "../jobs/create-once.js";
import { discardEndedJobBlobs } from "../jobs/discard.js";
import { bearerSecurity, errorSchema, json, jsonBody, keyedErrorResponses, replayed, tenantErrorResponses } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";

export type CreateFineTuningJobRequest = z.infer<typeof createJobBody>;
export type FineTuningJob = z.infer<typeof jobSchema>;

export const jobIdParam = z.object({ fine_tuning_job_id: z.string().max(128) });

/**
 * The job a status move returned, or the reason it did not move: 404 when the tenant has no such job, else
 * 409 saying why its status does not allow the move.
 */
async function movedOr409(db: Db, tenantId: string, jobId: string, moved: JobRow | null, why: (status: string) => string): Promise<JobRow> {
  if (moved) return moved;
  const existing = await getTenantJob(db, tenantId, jobId);
  throw new ApiError("conflict", `job ${jobId} ${why(existing.status)}`, "fine_tuning_job_id");
}

/** The tenant's job, or 404 (absent or another tenant's). */
export async function getTenantJob(db: Db, tenantId: string, jobId: string): Promise<JobRow> {
  const row = await db.query.jobs.findFirst({ where: and(eq(jobs.id, jobId), eq(jobs.tenantId, tenantId)) });
  if (!row) throw notFound("fine-tuning job", jobId, "fine_tuning_job_id");
  return row;
}

const create = createRoute({
  method: "post",
  path: "/v1/fine_tuning/jobs",
  security: bearerSecurity,
  request: { ...jsonBody(createJobBody), headers: idempotencyHeaders },
  responses: {
    200: replayed(json(jobSchema, "the job, queued for a runner (with Idempotent-Replayed: true, the job an earlier request with the same Idempotency-Key created)")),
    ...tenantErrorResponses,
    ...keyedErrorResponses,
  },
});
/**
 * OpenAI's list filter: `metadata[key]=value` (each pair must match; up to 16), or `metadata=null` for jobs
 * created without metadata.
 */
function metadataFilter(query: Record<string, string>): SQL[] {
  const conditions: SQL[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (name === "metadata") {
      if (value !== "null") throw new ApiError("invalid_request", "metadata: filter with metadata[key]=value, or metadata=null for jobs without metadata", "metadata");
      conditions.push(isNull(jobs.metadata));
      continue;
    }
    const key = /^metadata\[(.+)\]$/.exec(name)?.[1];
    if (key === undefined) continue;
    if (key.length > 64 || value.length > 512) throw new ApiError("invalid_request", `${name}: keys are at most 64 characters and values 512`, name);
    conditions.push(sql`exists (select 1 from json_each(${jobs.metadata}) where key = ${key} and value = ${value})`);
  }
  if (conditions.length > 16) throw new ApiError("invalid_request", "metadata: at most 16 filters", "metadata");
  return conditions;
}

const list = createRoute({
  method: "get",
  path: "/v1/fine_tuning/jobs",
  description: "Filter by metadata with `metadata[key]=value` (repeatable, all must match) or `metadata=null`.",
  security: bearerSecurity,
  request: { query: listQueryOf(jobIdPrefix) },
  responses: { 200: json(listEnvelope(jobSchema), "the tenant's jobs, newest first"), ...tenantErrorResponses },
});
const get = createRoute({
  method: "get",
  path: "/v1/fine_tuning/jobs/{fine_tuning_job_id}",
  security: bearerSecurity,
  request: { params: jobIdParam },
  responses: { 200: json(jobSchema, "the job"), ...tenantErrorResponses },
});
const cancel = createRoute({
  method: "post",
  path: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
  security: bearerSecurity,
  request: { params: jobIdParam },
  responses: { 200: json(jobSchema, "the cancelled job"), 409: json(errorSchema, "the job already ended"), ...tenantErrorResponses },
});

const pause = createRoute({
  method: "post",
  path: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/pause",
  description: "Stops a queued or running job without ending it; its runner stops at its next report. Resumed, it continues from its last checkpoint.",
  security: bearerSecurity,
  request: { params: jobIdParam },
  responses: { 200: json(jobSchema, "the paused job"), 409: json(errorSchema, "the job is not queued or running"), ...tenantErrorResponses },
});
const resume = createRoute({
  method: "post",
  path: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/resume",
  security: bearerSecurity,
  request: { params: jobIdParam },
  responses: { 200: json(jobSchema, "the job, queued again"), 409: json(errorSchema, "the job is not paused"), ...tenantErrorResponses },
});

export function registerFineTuningJobs(app: Router): void {
  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    const key = parseIdempotencyKey(c.req.header("Idempotency-Key"));
    if (key === null) return c.json(toJob(await createJob(c.var.deps, c.var.tenant, body)), 200);
    const { row, replayed } = await createJobOnce(c, body, key);
    return c.json(toJob(row), 200, replayed ? { "Idempotent-Replayed": "true" } : {});
  });
  app.openapi(list, async (c) => {
    const { limit, after } = c.req.valid("query");
    const rows = await c.var.deps.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.tenantId, c.var.tenant.tenantId), after ? lt(jobs.id, after) : undefined, ...metadataFilter(c.req.query())))
      .orderBy(desc(jobs.id))
      .limit(limit + 1);
    return c.json(page(rows.map(toJob), limit), 200);
  });
  app.openapi(get, async (c) => {
    const row = await getTenantJob(c.var.deps.db, c.var.tenant.tenantId, c.req.valid("param").fine_tuning_job_id);
    return c.json(toJob(row), 200);
  });
  app.openapi(cancel, async (c) => {
    const { db, now } = c.var.deps;
    const id = c.req.valid("param").fine_tuning_job_id;
    const t = now();
    // As for a pause: a job whose runner died on its last attempt has failed (unbilled, as every failed job),
    // though no lease call has said so yet; whether one came first must not decide what the tenant pays.
    await discardEndedJobBlobs(c.var.deps.blobs, await failExhaustedJobs(db, t));
    const row = await movedOr409(db, c.var.tenant.tenantId, id, await cancelJob(db, { jobId: id, tenantId: c.var.tenant.tenantId, now: t }), (status) => `has already ended (${status}); only a queued, running or paused job can be cancelled`);
    const billed = row.trainedTokens ?? 0;
    await eventInsert(db, id, t, { level: "info", message: billed > 0 ? `The job was cancelled; billed for ${billed} tokens trained` : "The job was cancelled", data: { trained_tokens: billed } });
    await discardEndedJobBlobs(c.var.deps.blobs, [row]);
    return c.json(toJob(row), 200);
  });
  app.openapi(pause, async (c) => {
    const { db, now } = c.var.deps;
    const id = c.req.valid("param").fine_tuning_job_id;
    const t = now();
    // A job whose runner died on its last attempt has failed, though no lease call has said so yet: say it now
    // rather than pause it (a resume could never lease it).
    await discardEndedJobBlobs(c.var.deps.blobs, await failExhaustedJobs(db, t));
    const row = await movedOr409(db, c.var.tenant.tenantId, id, await pauseJob(db, { jobId: id, tenantId: c.var.tenant.tenantId, now: t }), (status) => `is ${status}; only a queued or running job can be paused`);
    const [last] = await db.select({ step: checkpoints.step }).from(checkpoints).where(eq(checkpoints.jobId, id)).orderBy(desc(checkpoints.step)).limit(1);
    const from = last ? `the checkpoint at step ${last.step}` : "the start";
    await eventInsert(db, id, t, { level: "info", message: `The job was paused; resumed, it continues from ${from}`, data: { resume_step: last?.step ?? 0 } });
    return c.json(toJob(row), 200);
  });
  app.openapi(resume, async (c) => {
    const { db, now } = c.var.deps;
    const id = c.req.valid("param").fine_tuning_job_id;
    const row = await movedOr409(db, c.var.tenant.tenantId, id, await resumeJob(db, { jobId: id, tenantId: c.var.tenant.tenantId }), (status) => `is ${status}; only a paused job can be resumed`);
    await eventInsert(db, id, now(), { level: "info", message: "The job was resumed and is queued for a runner" });
    return c.json(toJob(row), 200);
  });
}
