// Checkpoint formats in the runner protocol: a runner records each checkpoint with the format version it wrote,
// and declares at registration the formats it can resume; a job whose latest checkpoint is in a format a runner
// cannot resume is not leased to it (it waits for a runner that can). Runners and checkpoints from before this
// state nothing, and count as format 1: the trainer_state.json without the tokenizer's identity, the only one
// such a runner reads.
import { and, sql, type SQL } from "drizzle-orm";
import { checkpoints, jobs, runners } from "../db/schema.js";

/** The format of a checkpoint, or of a runner, that states none. */
export const OLDEST_CHECKPOINT_FORMAT = 1;

/** The formats a runner row can resume: what it declared, or the oldest when it declared none. */
export function runnerCheckpointFormats(row: { checkpointFormats: string | null }): number[] {
  return row.checkpointFormats === null ? [OLDEST_CHECKPOINT_FORMAT] : (JSON.parse(row.checkpointFormats) as number[]);
}

/** The format of the job's latest checkpoint (the one a lease hands over), null when it has none. */
export const latestFormat: SQL = sql`(select coalesce(${checkpoints.format}, ${OLDEST_CHECKPOINT_FORMAT}) from ${checkpoints} where ${checkpoints.jobId} = ${jobs.id} order by ${checkpoints.step} desc limit 1)`;

/** The job has no checkpoint, or its latest one is in one of these formats. */
export function resumableIn(formats: readonly number[]): SQL {
  return sql`(${latestFormat} is null or ${latestFormat} in (${sql.join(
    formats.map((f) => sql`${f}`),
    sql`, `,
  )}))`;
}

/**
 * The job has a checkpoint that no live runner of its model can resume, while live runners of its model exist
 * (old ones, during a rolling upgrade): it waits until one that can is live. Without any live runner of the
 * model, every job of it waits alike, which queue depth already shows.
 */
export function waitingForCheckpointFormat(liveSince: number): SQL {
  const liveOfModel = (alias: string) =>
    sql`select 1 from ${runners} as ${sql.raw(alias)}, json_each(${sql.raw(alias)}.models) as m where ${sql.raw(alias)}.last_seen_at >= ${liveSince} and m.value = ${jobs.model}`;
  return and(
    sql`${latestFormat} is not null`,
    sql`exists (${liveOfModel("r")})`,
    sql`not exists (${liveOfModel("rf")} and ${latestFormat} in (select f.value from json_each(coalesce(rf.checkpoint_formats, ${`[${OLDEST_CHECKPOINT_FORMAT}]`})) as f))`,
  )!;
}
