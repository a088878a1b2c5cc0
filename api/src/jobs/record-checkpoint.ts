// Recording a checkpoint: the files the holder PUT at the step's upload keys (its attempt's: checkpoint-uploads.ts)
// are copied to the checkpoint's own keys, which no presigned PUT link points at, and measured as copied, as
// complete copies the final adapter. The upload links stay valid until TUNESERVE_PRESIGN_SECONDS runs out: what is
// PUT through them after the record, or by a runner that lost its lease, is read by nothing. A step is recorded
// once; recording it again answers the first record and keeps its copy.
import type { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { copyBlob } from "../blob/copy.js";
import { blobKeys, type BlobInfo, type BlobStore } from "../blob/port.js";
import { checkpoints } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../errors.js";
import { newId } from "../lib/ids.js";
import { findCheckpointUploads } from "./checkpoint-uploads.js";
import { leaseLost, requireHolder } from "./holder.js";
import type { recordCheckpointBody } from "./protocol.js";
import type { JobRow } from "./shape.js";
import { eventInsert, findJob, heldBy, insertWhereJob } from "./store.js";
import { outOfUploadBounds, type UploadLimits } from "./upload-bounds.js";

type CheckpointRow = typeof checkpoints.$inferSelect;
type RecordBody = z.infer<typeof recordCheckpointBody>;

/**
 * Copies the listed objects from `from` to `to` (blob/copy.ts); returns what was stored (its sizes those of the
 * copies), stopping at the first over TUNESERVE_MAX_BLOB_BYTES, or the name of an object deleted since it was listed.
 */
async function copyObjects(blobs: BlobStore, listed: readonly BlobInfo[], from: string, to: string, limits: UploadLimits): Promise<{ copied: BlobInfo[] } | { gone: string }> {
  const copied: BlobInfo[] = [];
  const max = limits.TUNESERVE_MAX_BLOB_BYTES;
  for (const o of listed) {
    const name = o.key.slice(from.length);
    const stored = await copyBlob(blobs, o.key, to + name, max, () => new ApiError("payload_too_large", `${name} is over TUNESERVE_MAX_BLOB_BYTES=${max}`, "step"));
    if (!stored) return { gone: name };
    copied.push({ key: to + name, size: stored.size });
    // Written again since it was listed (an S3 or R2 link takes any size): the caller refuses it.
    if (stored.size > max) return { copied };
  }
  return { copied };
}

/** Deletes a prefix without failing the call: a failure leaves files the job's end deletes. */
const dropPrefix = (blobs: BlobStore, prefix: string) => blobs.deletePrefix(prefix).catch((err: unknown) => console.error(`deleting ${prefix} failed:`, err));

/**
 * Records checkpoint `body.step` of `job` (held by the caller) from the files at its upload keys: copied to the
 * checkpoint's own keys and checked there (413 payload_too_large over TUNESERVE_MAX_BLOB_BYTES or, for its
 * adapter, TUNESERVE_MAX_ADAPTER_BYTES; both copies deleted), inserted only while the caller still holds the job.
 * A recorded step answers its first record, whatever was PUT to its upload keys since (which is deleted).
 */
export async function recordCheckpoint(deps: Deps, job: JobRow, body: RecordBody): Promise<CheckpointRow> {
  const { db, blobs, config, now } = deps;
  const recorded = () => db.query.checkpoints.findFirst({ where: and(eq(checkpoints.jobId, job.id), eq(checkpoints.step, body.step)) });
  const first = await recorded();
  if (first) {
    // Recorded before copies were made (an older API), a checkpoint's files are its upload keys: kept.
    const uploaded = [blobKeys.checkpointUpload(job.tenantId, job.id, job.attempt, body.step), blobKeys.legacyCheckpointUpload(job.tenantId, job.id, body.step)];
    await Promise.all(uploaded.filter((p) => p !== first.blobPrefix).map((p) => dropPrefix(blobs, p)));
    return first;
  }
  const { prefix: uploads, listed } = await findCheckpointUploads(blobs, job, body.step);
  const refuse = async (over: string, copy?: string) => {
    // Deleted now: unrecorded, they are storage nothing reads, kept by a job that succeeds until its model is deleted.
    await Promise.all([uploads, copy].map((p) => p && blobs.deletePrefix(p)));
    return new ApiError("payload_too_large", `checkpoint step ${body.step}: ${over}; its files were deleted`, "step");
  };
  const over = outOfUploadBounds(listed, uploads, config);
  if (over) throw await refuse(over);
  if (listed.length === 0) {
    // A job that ended meanwhile had its checkpoint files deleted: say so, not that nothing was uploaded. So has a
    // record of the same step that won since `first` was looked for: its checkpoint is the answer.
    await requireHolder(db, job.id, body);
    const won = await recorded();
    if (won) return won;
    throw new ApiError("invalid_request", `no files were uploaded for checkpoint step ${body.step}; PUT them to the URLs from checkpoints/uploads first`, "step");
  }

  const id = newId("ftckpt-");
  const copy = blobKeys.checkpoint(job.tenantId, job.id, id);
  const result = await copyObjects(blobs, listed, uploads, copy, config).catch(async (e: unknown) => {
    if (e instanceof ApiError && e.code === "payload_too_large") throw await refuse(e.message, copy);
    await dropPrefix(blobs, copy);
    throw e;
  });
  if ("gone" in result) {
    // Deleted while copied: by the job's end (lease_lost), or by a record of the same step that won.
    await dropPrefix(blobs, copy);
    await requireHolder(db, job.id, body);
    const won = await recorded();
    if (won) return won;
    throw new ApiError("invalid_request", `checkpoint step ${body.step}: ${result.gone} was deleted while it was recorded; PUT it again and record the step again`, "step");
  }
  const overCopied = outOfUploadBounds(result.copied, copy, config);
  if (overCopied) throw await refuse(overCopied, copy);

  const t = now();
  // Inserted only while the runner still holds the job: a cancel (or pause) since the check above has deleted,
  // or will hand to the next lease, what this checkpoint would point at.
  const inserted = await insertWhereJob(db, checkpoints, { id, jobId: job.id, step: body.step, blobPrefix: copy, metrics: JSON.stringify(body.metrics), format: body.format ?? null, createdAt: t }, heldBy(job.id, body))
    .onConflictDoNothing({ target: [checkpoints.jobId, checkpoints.step] })
    .returning();
  if (inserted.length > 0) {
    await eventInsert(db, job.id, t, { level: "info", message: `Checkpoint saved at step ${body.step} (${result.copied.length} files)`, data: { step: body.step, ...body.metrics } });
    // Read by nothing now: the checkpoint is its copy.
    await dropPrefix(blobs, uploads);
    return inserted[0];
  }
  // Another record of the step won (its copy is the checkpoint), or the job ended meanwhile.
  await dropPrefix(blobs, copy);
  const row = await recorded();
  if (!row) throw leaseLost(await findJob(db, job.id), job.id, body);
  return row;
}
