// The fine-tuning job lifecycle as one table: which status may follow which. Routes and the SQL that moves
// jobs (lease, cancel, fail, complete) take their allowed "from" sets from here so the two cannot drift.

export const jobStatuses = ["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"] as const;
export type JobStatus = (typeof jobStatuses)[number];

/**
 * Allowed moves. running → running is a re-lease after the holder's lease expired; running → queued is a
 * retryable failure going back to the queue. A paused job waits for the tenant: resumed, it is queued again
 * (and picks up from its last checkpoint).
 */
const transitions: Record<JobStatus, readonly JobStatus[]> = {
  validating_files: ["queued", "failed", "cancelled"],
  queued: ["running", "paused", "failed", "cancelled"],
  running: ["running", "queued", "paused", "succeeded", "failed", "cancelled"],
  paused: ["queued", "cancelled"],
  succeeded: [],
  failed: [],
  cancelled: [],
};

/** True when a job in `from` may move to `to`. */
export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return transitions[from].includes(to);
}

/** True for the statuses a job never leaves. */
export function isTerminal(status: JobStatus): boolean {
  return transitions[status].length === 0;
}

/** Every status a job may be in right before it moves to `to` (the WHERE clause of the move). */
export function sourcesOf(to: JobStatus): JobStatus[] {
  return jobStatuses.filter((s) => canTransition(s, to));
}

/** Throws when the move is not allowed; the message names both statuses. */
export function assertTransition(from: JobStatus, to: JobStatus): void {
  if (!canTransition(from, to)) throw new Error(`a fine-tuning job cannot move from ${from} to ${to}`);
}
