// A job that ended without a model (cancelled or failed) can neither resume nor be called at a checkpoint:
// its checkpoints' weights and its attempts' outputs are deleted, so nothing stays stored that no one can
// use or is billed for. Its rows (checkpoints, events) stay as the job's history.
import { blobKeys, type BlobStore } from "../blob/port.js";
import type { JobRow } from "./shape.js";

export async function discardEndedJobBlobs(blobs: BlobStore, ended: Pick<JobRow, "id" | "tenantId" | "status">[]): Promise<void> {
  for (const job of ended) {
    if (job.status !== "cancelled" && job.status !== "failed") continue;
    await blobs.deletePrefix(blobKeys.jobCheckpoints(job.tenantId, job.id));
    await blobs.deletePrefix(blobKeys.jobOutputs(job.tenantId, job.id));
  }
}
