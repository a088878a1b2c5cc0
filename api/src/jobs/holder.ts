// Who may report on a job: only the runner holding its lease, and with the lease's attempt, only that lease.
// Everyone else gets 409 lease_lost with the reason, so a runner knows to stop working on it (cancelled,
// paused, taken over, leased again, finished).
import type { Db } from "../db/client.js";
import { ApiError, notFound } from "../errors.js";
import type { Holder } from "./protocol.js";
import type { JobRow } from "./shape.js";
import { findJob } from "./store.js";

/** The 409 a runner gets when it does not (or no longer) hold the job's lease; 404 when there is no job. */
export function leaseLost(job: JobRow | null, jobId: string, holder: Holder): ApiError {
  if (!job) return notFound("fine-tuning job", jobId, "job_id");
  const runnerId = holder.runner_id;
  if (job.status === "cancelled" || job.status === "paused") return new ApiError("lease_lost", `job ${job.id} was ${job.status}; stop working on it`);
  if (job.status === "running" && job.leaseOwner === runnerId && holder.attempt !== undefined && holder.attempt > job.attempt) {
    return new ApiError("lease_lost", `job ${job.id} is on attempt ${job.attempt} and was never leased as your attempt ${holder.attempt}: send the attempt your lease answer gave, or stop working on it`);
  }
  if (job.status === "running" && job.leaseOwner === runnerId) {
    return new ApiError("lease_lost", `job ${job.id} was leased again (attempt ${job.attempt}) after your attempt ${holder.attempt}; stop this copy of it`);
  }
  if (job.status === "running") {
    return new ApiError("lease_lost", `job ${job.id} is leased to runner ${job.leaseOwner}, not ${runnerId}; your lease expired and it was taken over`);
  }
  return new ApiError("lease_lost", `job ${job.id} is ${job.status}; runner ${runnerId} holds no lease on it`);
}

/**
 * True when `holder` holds the job's current lease (its attempt too, when it says which); with "succeeded",
 * when the job succeeded under that lease. As heldBy (store.ts) says it in SQL.
 */
export function holds(job: JobRow, holder: Holder, status: "running" | "succeeded" = "running"): boolean {
  return job.status === status && job.leaseOwner === holder.runner_id && (holder.attempt === undefined || job.attempt === holder.attempt);
}

/** Loads the job and checks that this runner (and lease) holds it right now. */
export async function requireHolder(db: Db, jobId: string, holder: Holder): Promise<JobRow> {
  const job = await findJob(db, jobId);
  if (!job || !holds(job, holder)) throw leaseLost(job, jobId, holder);
  return job;
}
