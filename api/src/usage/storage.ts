// Adapter storage billing (ARCHITECTURE.md §7: "storage bills adapter bytes × time"). Each adapter is billed
// per UTC day it was kept, in byte-hours, one usage event per adapter and day under the key
// `adapter:<id>:storage:<YYYY-MM-DD>`. A day is billed once it has ended (billClosedDays, run hourly by the
// Node server and the Worker's cron) or when the adapter is deleted (storageBillOnDelete, in the delete's
// batch). Both compute the same quantity for a day that ended with the adapter kept, and the key is unique,
// so a run that races a delete, or two runs at once, never bill a day twice.
import { and, asc, eq, isNull, lt, or } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { runBatch } from "../db/batch.js";
import { adapters } from "../db/schema.js";
import { day } from "./query.js";
import { usageInsert, usageInsertFrom, type UsageFact } from "./record.js";

export const storageKind = "storage_byte_hours" as const;

export interface StoredAdapter {
  id: string;
  tenantId: string;
  modelId: string;
  sizeBytes: number;
  createdAt: number;
  /** Billed up to here; created_at when inserted (null, from an API older than storage billing: created_at). */
  storageBilledUntil: number | null;
}

/** The start of the UTC day of `t` (unix seconds). */
export const startOfDay = (t: number) => t - (t % day);
const dayName = (t: number) => new Date(startOfDay(t) * 1000).toISOString().slice(0, 10);

/**
 * The usage facts for keeping `a` from where its billing stands up to `until`, one per UTC day touched. Each
 * event's time is the start of the span it bills, so GET /v1/usage puts it in the day it covers.
 */
export function storageFacts(a: StoredAdapter, until: number): UsageFact[] {
  const facts: UsageFact[] = [];
  for (let from = a.storageBilledUntil ?? a.createdAt; from < until; ) {
    const to = Math.min(until, startOfDay(from) + day);
    const quantity = Math.round((a.sizeBytes * (to - from)) / 3600);
    if (quantity > 0) {
      facts.push({ idempotencyKey: `adapter:${a.id}:storage:${dayName(from)}`, tenantId: a.tenantId, kind: storageKind, model: a.modelId, quantity, ref: a.id, now: from });
    }
    from = to;
  }
  return facts;
}

/**
 * The statements that bill an adapter's last days when it is deleted. Put them in the delete's batch before
 * the DELETE: each inserts only while the adapter is still there, so a delete that lost a race to another
 * one (which billed these days itself) bills nothing.
 */
export function storageBillOnDelete(db: Db, a: StoredAdapter, now: number) {
  return storageFacts(a, now).map((f) => usageInsertFrom(db, f, adapters, and(eq(adapters.id, a.id), eq(adapters.tenantId, a.tenantId))!));
}

/** Adapters per batch, and days each one is billed per batch: a batch stays small after a long outage too. */
const ADAPTERS_PER_BATCH = 50;
const DAYS_PER_BATCH = 31;

/**
 * Bills every adapter for the UTC days that have ended since it was last billed, and returns how many events
 * it wrote. Safe to run at any time and from several places at once.
 */
export async function billClosedDays(db: Db, now: number): Promise<{ adapters: number; events: number }> {
  const today = startOfDay(now);
  const due = () =>
    db
      .select({ id: adapters.id, tenantId: adapters.tenantId, modelId: adapters.modelId, sizeBytes: adapters.sizeBytes, createdAt: adapters.createdAt, storageBilledUntil: adapters.storageBilledUntil })
      .from(adapters)
      .where(or(lt(adapters.storageBilledUntil, today), isNull(adapters.storageBilledUntil)))
      .orderBy(asc(adapters.storageBilledUntil))
      .limit(ADAPTERS_PER_BATCH);
  const billed = new Set<string>();
  let events = 0;
  // Each batch moves every adapter it bills forward, so the loop ends.
  for (let batch = await due(); batch.length > 0; batch = await due()) {
    const inserts = [];
    const marks = [];
    for (const a of batch) {
      const from = a.storageBilledUntil ?? a.createdAt;
      const until = Math.min(today, startOfDay(from) + DAYS_PER_BATCH * day);
      inserts.push(...storageFacts(a, until).map((f) => usageInsert(db, f)));
      // Only forward: a run that read the adapter earlier cannot move its mark back.
      marks.push(db.update(adapters).set({ storageBilledUntil: until }).where(and(eq(adapters.id, a.id), or(lt(adapters.storageBilledUntil, until), isNull(adapters.storageBilledUntil)))));
      billed.add(a.id);
    }
    const results = await runBatch(db, [...inserts, ...marks]);
    events += results.slice(0, inserts.length).filter((r) => (r as unknown[]).length === 1).length;
  }
  return { adapters: billed.size, events };
}
