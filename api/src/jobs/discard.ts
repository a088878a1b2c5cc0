// A job that ended without a model (cancelled or failed) can neither resume nor be called at a checkpoint:
// its checkpoints' weights, its attempts' outputs and results, and an adapter folder a complete that lost to
// the end began, are deleted, so nothing stays stored that no one can use or is billed for (that complete runs
// this again once it has lost, as it may have written after the end did). Its rows (checkpoints, events) stay
// as the job's history.
import { blobKeys, type BlobStore } from "../blob/port.js";
import { jobAdapterId, type JobRow } from "./shape.js";

/**
 * Best effort, after the job's end is recorded: a blob store that fails here is logged, and the request that
 * ended the job still succeeds (what is left is only unused storage).
 */
export async function discardEndedJobBlobs(blobs: BlobStore, ended: Pick<JobRow, "id" | "tenantId" | "status">[]): Promise<void> {
  for (const job of ended) {
    if (job.status !== "cancelled" && job.status !== "failed") continue;
    const prefixes = [blobKeys.jobCheckpoints(job.tenantId, job.id), blobKeys.jobOutputs(job.tenantId, job.id), blobKeys.jobAllResults(job.tenantId, job.id), blobKeys.adapter(job.tenantId, jobAdapterId(job.id))];
    for (const prefix of prefixes) await blobs.deletePrefix(prefix).catch((err: unknown) => console.error(`[${job.id}] deleting ${prefix} of the ended job failed:`, err));
  }
}
