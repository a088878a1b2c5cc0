// The job queue's moves as single atomic SQL statements (D1 has no interactive transactions): lease, heartbeat,
// fail, cancel and expiry each decide their outcome inside one UPDATE … WHERE … RETURNING (cancel's billing
// rides in the same batch).
import { and, asc, eq, getTableColumns, inArray, lte, or, sql, type SQL } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import { runBatch } from "../db/batch.js";
import type { Db } from "../db/client.js";
import { jobEvents, jobs, tenants } from "../db/schema.js";
import { newId } from "../lib/ids.js";
import { resumableIn } from "./checkpoint-formats.js";
import { trainingUsageKey, usageInsertFrom } from "../usage/record.js";
import type { Holder } from "./protocol.js";
import type { JobRow } from "./shape.js";
import { sourcesOf } from "./state.js";

export interface NewEvent {
  level: "info" | "warn" | "error";
  message: string;
  data?: Record<string, unknown> | null;
  type?: "message" | "metrics";
}

/** The row of one new job event. */
function eventRow(jobId: string, now: number, e: NewEvent): typeof jobEvents.$inferInsert {
  return { id: newId("ftevent-"), jobId, level: e.level, type: e.type ?? "message", message: e.message, data: e.data ? JSON.stringify(e.data) : null, createdAt: now };
}

/** The INSERT of one job event (for batches). */
export function eventInsert(db: Db, jobId: string, now: number, e: NewEvent) {
  return db.insert(jobEvents).values(eventRow(jobId, now, e));
}

/** The job's tenant is not suspended (a suspended tenant's jobs wait, and are not counted as queue depth). */
export const tenantActive: SQL = sql`${jobs.tenantId} not in (select ${tenants.id} from ${tenants} where ${tenants.suspendedAt} is not null)`;

/** A job some runner may take now: queued, or running on a lease that has run out, with attempts left, of an active tenant. */
export function leasable(now: number): SQL {
  const from = sourcesOf("running");
  return and(
    inArray(jobs.status, from),
    or(eq(jobs.status, "queued"), lte(jobs.leaseExpiresAt, now)),
    sql`${jobs.attempt} < ${jobs.maxAttempts}`,
    tenantActive,
  )!;
}

/** The running job a lease call with this idempotency key took for the runner (the key is stored with the lease). */
const leasedUnderKey = (runnerId: string, key: string): SQL => and(eq(jobs.status, "running"), eq(jobs.leaseOwner, runnerId), eq(jobs.leaseKey, key))!;

/**
 * Leases the oldest leasable job of the given models, with no checkpoint or one in one of `formats`, to a runner. One UPDATE picks and takes it, re-checking
 * the condition on the row it updates, so of two concurrent callers exactly one gets each job.
 */
export async function leaseNextJob(db: Db, opts: { runnerId: string; models: string[]; formats: readonly number[]; now: number; leaseSeconds: number; key?: string }): Promise<JobRow | null> {
  if (opts.models.length === 0) return null;
  // One lease per key: of two calls with one key racing (a retry sent while the first call was still running),
  // the second finds the first's job through leasedUnder instead of taking another.
  const keyFree = opts.key === undefined ? undefined : sql`not exists (select 1 from ${jobs} where ${leasedUnderKey(opts.runnerId, opts.key)})`;
  // A job whose latest checkpoint this runner cannot resume waits for one that can (old and new runners side by
  // side in a rolling upgrade), rather than being leased here to fail.
  const cond = and(leasable(opts.now), inArray(jobs.model, opts.models), resumableIn(opts.formats), keyFree);
  const candidate = db.select({ id: jobs.id }).from(jobs).where(cond).orderBy(asc(jobs.createdAt), asc(jobs.id)).limit(1);
  const rows = await db
    .update(jobs)
    .set({
      status: "running",
      leaseOwner: opts.runnerId,
      leaseExpiresAt: opts.now + opts.leaseSeconds,
      attempt: sql`${jobs.attempt} + 1`,
      leaseKey: opts.key ?? null,
      startedAt: sql`coalesce(${jobs.startedAt}, ${opts.now})`,
    })
    .where(and(inArray(jobs.id, candidate), cond))
    .returning();
  return rows[0] ?? null;
}

/**
 * The job a lease call with this idempotency key already leased to the runner, if the runner still holds it:
 * the call's answer was lost and the runner asks again. The lease is extended from now and the job handed back
 * under the same attempt, so the lost answer neither orphans the job nor spends one of its attempts.
 */
export async function leasedUnder(db: Db, opts: { runnerId: string; key: string; now: number; leaseSeconds: number }): Promise<JobRow | null> {
  const rows = await db
    .update(jobs)
    .set({ leaseExpiresAt: opts.now + opts.leaseSeconds })
    .where(leasedUnderKey(opts.runnerId, opts.key))
    .returning();
  return rows[0] ?? null;
}

/**
 * Fails running jobs whose lease ran out after their last allowed attempt (their runner died every time), so
 * they do not sit in `running` forever. Returns the jobs it failed, to write their events.
 */
export async function failExhaustedJobs(db: Db, now: number): Promise<JobRow[]> {
  const rows = await db
    .update(jobs)
    .set({
      status: "failed",
      error: sql`json_object('code', 'lease_expired', 'message', 'the runner stopped reporting on every one of the ' || ${jobs.maxAttempts} || ' allowed attempts')`,
      leaseOwner: null,
      leaseExpiresAt: null,
      finishedAt: now,
    })
    .where(and(eq(jobs.status, "running"), lte(jobs.leaseExpiresAt, now), sql`${jobs.attempt} >= ${jobs.maxAttempts}`))
    .returning();
  if (rows.length > 0) {
    await runBatch(
      db,
      rows.map((r) => eventInsert(db, r.id, now, { level: "error", message: `The job failed: its lease expired on the last of ${r.maxAttempts} attempts` })),
    );
  }
  return rows;
}

/**
 * Ends the leases a runner's earlier process held (it restarted: those attempts died with it), so the jobs can
 * be leased again now rather than when the leases run out. Returns the jobs, to write their events.
 */
export async function releaseLeasesOf(db: Db, runnerId: string, now: number): Promise<JobRow[]> {
  return db
    .update(jobs)
    .set({ leaseExpiresAt: now })
    .where(and(eq(jobs.leaseOwner, runnerId), eq(jobs.status, "running"), sql`${jobs.leaseExpiresAt} > ${now}`))
    .returning();
}

/**
 * Extends the holder's lease and stores its progress; null when the runner no longer holds the job. `stepEvent`
 * is written with it when the stored progress is at another step, decided in the same batch: of heartbeats
 * racing with one new step (a retry and its first try), one writes it.
 */
export async function extendLease(db: Db, opts: { jobId: string; holder: Holder; now: number; leaseSeconds: number; progress: string; stepEvent?: { step: number; event: NewEvent } }): Promise<JobRow | null> {
  const held = heldBy(opts.jobId, opts.holder);
  const update = db.update(jobs).set({ leaseExpiresAt: opts.now + opts.leaseSeconds, progress: opts.progress }).where(held).returning();
  if (!opts.stepEvent) return (await update)[0] ?? null;
  const newStep = sql`${held} and json_extract(${jobs.progress}, '$.step') is not ${opts.stepEvent.step}`;
  const [, rows] = (await runBatch(db, [insertWhereJob(db, jobEvents, eventRow(opts.jobId, opts.now, opts.stepEvent.event), newStep), update])) as [unknown, JobRow[]];
  return rows[0] ?? null;
}

/**
 * The job is running under this runner's lease. A lease that ran out still counts until another runner takes
 * the job: nobody else has started, so the holder's work is not wasted. With status "succeeded": the job
 * succeeded under this lease (its owner and attempt stay on the row).
 */
export function heldBy(jobId: string, holder: Holder, status: "running" | "succeeded" = "running"): SQL {
  return and(eq(jobs.id, jobId), eq(jobs.status, status), eq(jobs.leaseOwner, holder.runner_id), holder.attempt === undefined ? undefined : eq(jobs.attempt, holder.attempt))!;
}

/**
 * INSERT … SELECT of one row, from the job row where `cond` holds: batched after the update that makes it
 * hold, the row lands exactly when that update won.
 */
export function insertWhereJob<T extends SQLiteTable>(db: Db, table: T, row: T["$inferInsert"], cond: SQL) {
  const values = Object.keys(getTableColumns(table)).map((k) => sql`${(row as Record<string, unknown>)[k] ?? null}`);
  return db.insert(table).select(sql`select ${sql.join(values, sql`, `)} from ${jobs} where ${cond}`);
}

/** The error code a runner reports when it hands a job back because it is shutting down. */
export const RUNNER_SHUTDOWN = "runner_shutdown";

/**
 * Ends the holder's attempt. Retryable failures with attempts left go back to the queue (the next lease
 * counts the attempt); others fail the job. Null when the runner does not hold the job.
 */
export async function failAttempt(db: Db, opts: { jobId: string; holder: Holder; now: number; error: { code: string; message: string }; retryable: boolean }): Promise<JobRow | null> {
  // A runner shutting down cleanly hands the job back: as with a pause, the attempt is given back, so restarts
  // and scale-downs never use up a job's attempts.
  const handBack = opts.retryable && opts.error.code === RUNNER_SHUTDOWN;
  const retry = sql`(${opts.retryable ? 1 : 0} = 1 AND (${handBack ? 1 : 0} = 1 OR ${jobs.attempt} < ${jobs.maxAttempts}))`;
  const rows = await db
    .update(jobs)
    .set({
      ...(handBack ? { maxAttempts: sql`${jobs.maxAttempts} + 1` } : {}),
      status: sql`CASE WHEN ${retry} THEN 'queued' ELSE 'failed' END`,
      error: sql`CASE WHEN ${retry} THEN NULL ELSE ${JSON.stringify(opts.error)} END`,
      finishedAt: sql`CASE WHEN ${retry} THEN NULL ELSE ${opts.now} END`,
      leaseOwner: null,
      leaseExpiresAt: null,
    })
    .where(heldBy(opts.jobId, opts.holder))
    .returning();
  return rows[0] ?? null;
}

/**
 * Cancels a tenant's job that has not ended (a running job loses its lease at once; null when not cancellable)
 * and bills the tokens its last progress report counted, in one batch under the job's training usage key, so a
 * cancelled job is billed once, like a finished one.
 */
export async function cancelJob(db: Db, opts: { jobId: string; tenantId: string; now: number }): Promise<JobRow | null> {
  const reported = sql<number | null>`json_extract(${jobs.progress}, '$.trained_tokens')`;
  const [cancelled] = (await runBatch(db, [
    db
      .update(jobs)
      .set({ status: "cancelled", cancelRequested: 1, leaseOwner: null, leaseExpiresAt: null, finishedAt: opts.now, trainedTokens: sql`coalesce(${reported}, ${jobs.trainedTokens})` })
      .where(and(eq(jobs.id, opts.jobId), eq(jobs.tenantId, opts.tenantId), inArray(jobs.status, sourcesOf("cancelled"))))
      .returning(),
    usageInsertFrom(
      db,
      { idempotencyKey: trainingUsageKey(opts.jobId), tenantId: sql`${jobs.tenantId}`, kind: "training_tokens", model: sql`${jobs.model}`, quantity: sql`${jobs.trainedTokens}`, ref: sql`${jobs.id}`, now: opts.now },
      jobs,
      // Only the job this call cancelled (its tenant, this moment), though the key alone already bills once.
      and(eq(jobs.id, opts.jobId), eq(jobs.tenantId, opts.tenantId), eq(jobs.status, "cancelled"), eq(jobs.finishedAt, opts.now), sql`${jobs.trainedTokens} > 0`)!,
    ),
  ])) as [JobRow[], unknown];
  return cancelled[0] ?? null;
}

/**
 * Pauses a tenant's queued or running job (null when it is neither). A running job loses its lease at once,
 * so its runner stops at its next report. A live attempt cut short by the pause did not fail, so the job gets
 * one more attempt for it (the attempt number itself only grows: it fences off the paused copy's reports);
 * an attempt whose lease had already run out (its runner died) still counts. Resumed, the job starts again
 * from its last checkpoint.
 */
export async function pauseJob(db: Db, opts: { jobId: string; tenantId: string; now: number }): Promise<JobRow | null> {
  const [row] = await db
    .update(jobs)
    .set({
      status: "paused",
      maxAttempts: sql`CASE WHEN ${jobs.status} = 'running' AND ${jobs.leaseExpiresAt} > ${opts.now} THEN ${jobs.maxAttempts} + 1 ELSE ${jobs.maxAttempts} END`,
      leaseOwner: null,
      leaseExpiresAt: null,
    })
    .where(and(eq(jobs.id, opts.jobId), eq(jobs.tenantId, opts.tenantId), inArray(jobs.status, sourcesOf("paused"))))
    .returning();
  return row ?? null;
}

/** Puts a tenant's paused job back in the queue (null when it is not paused). */
export async function resumeJob(db: Db, opts: { jobId: string; tenantId: string }): Promise<JobRow | null> {
  const [row] = await db
    .update(jobs)
    .set({ status: "queued" })
    .where(and(eq(jobs.id, opts.jobId), eq(jobs.tenantId, opts.tenantId), eq(jobs.status, "paused")))
    .returning();
  return row ?? null;
}

/** One job by id regardless of tenant (runner routes); tenant routes filter by tenant themselves. */
export async function findJob(db: Db, jobId: string): Promise<JobRow | null> {
  return (await db.query.jobs.findFirst({ where: eq(jobs.id, jobId) })) ?? null;
}
