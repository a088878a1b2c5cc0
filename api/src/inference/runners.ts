// Runner choice for an inference call: live runners (heard from within the lease period) that serve the
// base model, those already holding the adapter first (no download), the rest in random order to spread load.
import { gte, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { prepared } from "../db/prepared.js";
import { runners } from "../db/schema.js";

/**
 * A runner is live while it has been heard from within the lease period (TUNESERVE_LEASE_SECONDS; it
 * heartbeats well within it): the one definition routing, job creation and the admin API share.
 */
export const liveSince = (now: number, leaseSeconds: number) => now - leaseSeconds;

export type RunnerTarget = { id: string; url: string; holdsAdapter: boolean };

/** Pure ordering: fresh runners serving `baseModel`, adapter holders first, shuffled within each group. */
export function orderRunners(
  rows: { id: string; url: string | null; models: string; adapters: string; lastSeenAt: number }[],
  q: { baseModel: string; adapter: string | null; now: number; freshSeconds: number },
  random: () => number = Math.random,
): RunnerTarget[] {
  const out: (RunnerTarget & { r: number })[] = [];
  for (const row of rows) {
    if (!row.url || row.lastSeenAt < liveSince(q.now, q.freshSeconds)) continue;
    if (!(JSON.parse(row.models) as string[]).includes(q.baseModel)) continue;
    const holdsAdapter = q.adapter !== null && (JSON.parse(row.adapters) as string[]).includes(q.adapter);
    out.push({ id: row.id, url: row.url, holdsAdapter, r: random() });
  }
  out.sort((a, b) => Number(b.holdsAdapter) - Number(a.holdsAdapter) || a.r - b.r);
  return out.map(({ id, url, holdsAdapter }) => ({ id, url, holdsAdapter }));
}

/** The runners to try for one call, best first. */
export async function candidateRunners(db: Db, q: { baseModel: string; adapter: string | null; now: number; freshSeconds: number }): Promise<RunnerTarget[]> {
  const live = prepared(db, "runnersSeenSince", (d) => d.select().from(runners).where(gte(runners.lastSeenAt, sql.placeholder("since"))).prepare());
  const rows = await live.all({ since: liveSince(q.now, q.freshSeconds) });
  return orderRunners(rows, q);
}

/** Whether any live runner (training-only ones included) serves the base model. */
export async function liveRunnerServes(db: Db, baseModel: string, since: number): Promise<boolean> {
  const rows = await db.select({ models: runners.models }).from(runners).where(gte(runners.lastSeenAt, since));
  return rows.some((r) => (JSON.parse(r.models) as string[]).includes(baseModel));
}
