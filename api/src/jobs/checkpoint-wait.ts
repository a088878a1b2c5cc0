// Tells a job's tenant (one event per checkpoint) that the job waits because no live runner of its model can
// resume its latest checkpoint: only runners from before that checkpoint's format are live (a rolling upgrade
// stopped halfway, or rolled back). The job keeps its place and its attempts; it is leased once one that can is live.
import { and, inArray, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { checkpoints, jobEvents, jobs } from "../db/schema.js";
import { newId } from "../lib/ids.js";
import { latestFormat, waitingForCheckpointFormat } from "./checkpoint-formats.js";
import { insertWhereJob, leasable } from "./store.js";

/** At most this many jobs are noted per call: a lease poll stays cheap, and the next poll notes the rest. */
const NOTE_AT_MOST = 10;

/** The step of the latest checkpoint of the job in the outer query. */
const latestStep: SQL = sql`(select max(${checkpoints.step}) from ${checkpoints} where ${checkpoints.jobId} = ${jobs.id})`;

/** No waiting event has been written for the job's latest checkpoint yet. */
const notNotedYet: SQL = sql`not exists (select 1 from ${jobEvents} where ${jobEvents.jobId} = ${jobs.id} and json_extract(${jobEvents.data}, '$.waiting_for_checkpoint_format') is not null and json_extract(${jobEvents.data}, '$.step') = ${latestStep})`;

/**
 * Writes a `warn` event on each leasable job of these models that no live runner can resume (see
 * waitingForCheckpointFormat) and that has none for its latest checkpoint yet. Called when a lease finds
 * nothing for its runner; the guarded INSERT … SELECT writes one event however many runners poll at once.
 */
export async function noteJobsWaitingForCheckpointFormat(db: Db, opts: { models: string[]; now: number; liveSince: number }): Promise<void> {
  if (opts.models.length === 0) return;
  const waiting = and(leasable(opts.now), inArray(jobs.model, opts.models), waitingForCheckpointFormat(opts.liveSince), notNotedYet)!;
  const rows = await db
    .select({ id: jobs.id, model: jobs.model, step: sql<number>`${latestStep}`, format: sql<number>`${latestFormat}` })
    .from(jobs)
    .where(waiting)
    .limit(NOTE_AT_MOST);
  for (const r of rows) {
    const message = `Waiting for a runner that can resume the checkpoint at step ${r.step} (checkpoint format ${r.format}): no live runner of ${r.model} can (they predate that format). It waits, its attempts unused, until one that can is running`;
    const data = JSON.stringify({ step: r.step, waiting_for_checkpoint_format: r.format });
    const row = { id: newId("ftevent-"), jobId: r.id, level: "warn", type: "message", message, data, createdAt: opts.now };
    await insertWhereJob(db, jobEvents, row, and(sql`${jobs.id} = ${r.id}`, notNotedYet)!);
  }
}
