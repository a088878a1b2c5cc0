// Who may report on a job: only the runner holding its lease. Everyone else gets 409 lease_lost with the
// reason, so a runner knows to stop working on it (cancelled, taken over, finished).
import type { Db } from "../db/client.js";
import { ApiError, notFound } from "../errors.js";
import type { JobRow } from "./shape.js";
import { findJob } from "./store.js";

/** The 409 a runner gets when it does not (or no longer) hold the job's lease; 404 when there is no job. */
export function leaseLost(job: JobRow | null, jobId: string, runnerId: string): ApiError {
  if (!job) return notFound("fine-tuning job", jobId, "job_id");
  if (job.status === "cancelled" || job.status === "paused") return new ApiError("lease_lost", `job ${job.id} was ${job.status}; stop working on it`);
  if (job.status === "running") {
    return new ApiError("lease_lost", `job ${job.id} is leased to runner ${job.leaseOwner}, not ${runnerId}; your lease expired and it was taken over`);
  }
  return new ApiError("lease_lost", `job ${job.id} is ${job.status}; runner ${runnerId} holds no lease on it`);
}

/** Loads the job and checks that this runner holds it right now. */
export async function requireHolder(db: Db, jobId: string, runnerId: string): Promise<JobRow> {
  const job = await findJob(db, jobId);
  if (!job || job.status !== "running" || job.leaseOwner !== runnerId) throw leaseLost(job, jobId, runnerId);
  return job;
}
