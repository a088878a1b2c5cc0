// Runner protocol, part 3: what a leased job produces. Checkpoints (presigned PUT URLs, then a record once
// uploaded, which copies them: jobs/record-checkpoint.ts) and the final complete with the adapter and the
// trained-token count. See docs/runner-protocol.md.
import { createRoute, z } from "@hono/zod-openapi";
import { adapterSchema, toAdapterObject } from "../adapters/models.js";
import type { Router } from "../app.js";
import { blobKeys } from "../blob/port.js";
import { completeJob } from "../jobs/complete-job.js";
import { requireHolder } from "../jobs/holder.js";
import { checkpointUploadsBody, completeBody, outputUploadsBody, recordCheckpointBody } from "../jobs/protocol.js";
import { leaseUrlsSchema, outputUploadUrls } from "../jobs/urls.js";
import { checkpointSchema, jobSchema, toCheckpoint, toJob } from "../jobs/shape.js";
import { recordCheckpoint } from "../jobs/record-checkpoint.js";
import { bearerSecurity, errorResponses, errorSchema, json, jsonBody } from "../lib/openapi.js";
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
  responses: {
    200: json(checkpointSchema, "the checkpoint (the same one when recorded twice)"),
    409: conflict,
    413: json(errorSchema, "payload_too_large: a file is over TUNESERVE_MAX_BLOB_BYTES, or its adapter over TUNESERVE_MAX_ADAPTER_BYTES; the step's files were deleted"),
    ...errorResponses,
  },
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
    const prefix = blobKeys.checkpointUpload(job.tenantId, job.id, job.attempt, body.step);
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
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const job = await requireHolder(c.var.deps.db, job_id, body);
    return c.json(toCheckpoint(await recordCheckpoint(c.var.deps, job, body), job), 200);
  });

  app.openapi(complete, async (c) => {
    const { job_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const done = await completeJob(c.var.deps, { jobId: job_id, holder: body, trainedTokens: body.trained_tokens, metrics: body.metrics });
    return c.json({ job: toJob(done.job), adapter: done.adapter && toAdapterObject(done.adapter) }, 200);
  });
}
