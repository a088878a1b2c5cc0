// While the API was down, no runner could heartbeat: every lease that ran out meanwhile ran out because of the
// API, not because its runner died. A Node API that starts therefore gives each running job a full lease from
// now, so the runners that kept training can report again before another runner takes their jobs over (from
// the last checkpoint, spending an attempt, or failing the job on its last one). A runner that really died
// is taken over at most one lease later. (A Worker has no start; see docs/runner.md.)
import { and, eq, isNotNull, lt } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { jobs } from "../db/schema.js";

/** Extends the lease of every running job to at least `now + leaseSeconds`; returns how many it extended. */
export async function extendLeasesAfterStart(db: Db, now: number, leaseSeconds: number): Promise<number> {
  const until = now + leaseSeconds;
  const rows = await db
    .update(jobs)
    .set({ leaseExpiresAt: until })
    .where(and(eq(jobs.status, "running"), isNotNull(jobs.leaseExpiresAt), lt(jobs.leaseExpiresAt, until)))
    .returning({ id: jobs.id });
  return rows.length;
}
