// Runner protocol, part 3: what a leased job produces. Checkpoints (presigned PUT URLs, then a record once
// uploaded) and the final complete with the adapter and the trained-token count. See docs/runner-protocol.md.
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { adapterSchema, toAdapterObject } from "../adapters/models.js";
import type { Router } from "../app.js";
import { blobKeys, type BlobInfo } from "../blob/port.js";
import { checkpoints } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { completeJob } from "../jobs/complete-job.js";
import { leaseLost, requireHolder } from "../jobs/holder.js";
import { checkpointUploadsBody, completeBody, outputUploadsBody, recordCheckpointBody } from "../jobs/protocol.js";
import { leaseUrlsSchema, outputUploadUrls } from "../jobs/urls.js";
import { checkpointSchema, jobSchema, toCheckpoint, toJob } from "../jobs/shape.js";
import { eventInsert, findJob, heldBy, insertWhereJob } from "../jobs/store.js";
import { outOfUploadBounds } from "../jobs/upload-bounds.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { jobIdParam } from "./internal_jobs.js";

const uploadsSchema = z
  .object({ step: z.number().int(), expires_at: z.number().int(), urls: z.record(z.string(), z.string()).openapi({ description: "file name → presigned PUT URL" }) })
  .openapi("CheckpointUploads");
export const completionSchema = z
  .object({ job: jobSchema, adapter: adapterSchema.nullable().openapi({ description: "null on a retry after the tenant deleted the model" }) })
  .openapi("JobCompletion");
const conflict = json(z.any(), "lease_lost: this runner does not hold the job");

export type Uploads = z.infer<typeof uploadsSchema>;
export type Completion = z.infer<typeof completionSchema>;

const uploads = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/checkpoints/uploads",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(checkpointUploadsBody) },
  responses: { 200: json(uploadsSchema, "where to PUT the checkpoint's files"), 409: conflict, ...errorResponses },
});
const outputUploads = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/outputs/uploads",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(outputUploadsBody) },
  responses: {
    200: json(z.object({ expires_at: z.number().int(), urls: leaseUrlsSchema.shape.outputs }).openapi("OutputUploads"), "fresh PUT URLs for the final adapter files"),
    409: conflict,
    ...errorResponses,
  },
});
const record = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/checkpoints",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(recordCheckpointBody) },
  responses: { 200: json(checkpointSchema, "the checkpoint (the same one when recorded twice)"), 409: conflict, ...errorResponses },
});
const complete = createRoute({
  method: "post",
  path: "/internal/v1/jobs/{job_id}/complete",
  security: bearerSecurity,
  request: { params: jobIdParam, ...jsonBody(completeBody) },
  responses: { 200: json(completionSchema, "the succeeded job and its adapter (the same answer on a retry)"), 409: conflict, ...errorResponses },
});

export function registerInternalJobOutputs(app: Router): void {
  app.openapi(uploads, async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const job = await requireHolder(db, job_id, body);
    const prefix = blobKeys.checkpoint(job.tenantId, job.id, body.step);
    const urls: Record<string, string> = {};
    for (const name of new Set(body.files)) urls[name] = await blobs.presign(prefix + name, "PUT", config.TUNESERVE_PRESIGN_SECONDS);
    return c.json({ step: body.step, expires_at: now() + config.TUNESERVE_PRESIGN_SECONDS, urls }, 200);
  });

  app.openapi(outputUploads, async (c) => {
    const deps = c.var.deps;
    const { job_id } = c.req.valid("param");
    const job = await requireHolder(deps.db, job_id, c.req.valid("json"));
    return c.json({ expires_at: deps.now() + deps.config.TUNESERVE_PRESIGN_SECONDS, urls: await outputUploadUrls(deps, job) }, 200);
  });

  app.openapi(record, async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const job = await requireHolder(db, job_id, body);
    const prefix = blobKeys.checkpoint(job.tenantId, job.id, body.step);
    const listed: BlobInfo[] = [];
    for await (const o of blobs.list(prefix)) listed.push(o);
    const objects = listed.length;
    const over = outOfUploadBounds(listed, prefix, config);
    if (over) {
      // Not kept until the job ends: a checkpoint this large would be handed to the next lease and served as a model.
      await blobs.deletePrefix(prefix);
      throw new ApiError("payload_too_large", `checkpoint step ${body.step}: ${over}; its files were deleted`, "step");
    }
    if (objects === 0) {
      // A job that ended meanwhile had its checkpoint files deleted: say so, not that nothing was uploaded.
      await requireHolder(db, job_id, body);
      throw new ApiError("invalid_request", `no files were uploaded for checkpoint step ${body.step}; PUT them to the URLs from checkpoints/uploads first`, "step");
    }
    const t = now();
    // Inserted only while the runner still holds the job: a cancel (or pause) since the check above has deleted,
    // or will hand to the next lease, what this checkpoint would point at.
    const inserted = await insertWhereJob(db, checkpoints, { id: newId("ftckpt-"), jobId: job.id, step: body.step, blobPrefix: prefix, metrics: JSON.stringify(body.metrics), format: body.format ?? null, createdAt: t }, heldBy(job.id, body))
      .onConflictDoNothing({ target: [checkpoints.jobId, checkpoints.step] })
      .returning();
    if (inserted.length > 0) {
      await eventInsert(db, job.id, t, { level: "info", message: `Checkpoint saved at step ${body.step} (${objects} files)`, data: { step: body.step, ...body.metrics } });
    }
    const row = inserted[0] ?? (await db.query.checkpoints.findFirst({ where: and(eq(checkpoints.jobId, job.id), eq(checkpoints.step, body.step)) }));
    if (!row) throw leaseLost(await findJob(db, job.id), job.id, body);
    return c.json(toCheckpoint(row, job), 200);
  });

  app.openapi(complete, async (c) => {
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const done = await completeJob(c.var.deps, { jobId: job_id, holder: body, trainedTokens: body.trained_tokens, metrics: body.metrics });
    return c.json({ job: toJob(done.job), adapter: done.adapter && toAdapterObject(done.adapter) }, 200);
  });
}
