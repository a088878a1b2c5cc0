// Adapter storage billing (ARCHITECTURE.md §7: "storage bills adapter bytes × time"). Each adapter is billed
// per UTC day it was kept, in byte-hours, one usage event per adapter and day under the key
// `adapter:<id>:storage:<YYYY-MM-DD>`. A day is billed once it has ended (billClosedDays, run hourly by the
// Node server and the Worker's cron) or when the adapter is deleted (storageBillOnDelete, in the delete's
// batch). Both compute the same quantity for a day that ended with the adapter kept, and the key is unique,
// so a sweep that races a delete, or runs twice, never bills a day twice.
import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { adapters } from "../db/schema.js";
import { runBatch } from "../jobs/store.js";
import { day } from "./query.js";
import { usageInsert, type UsageFact } from "./record.js";

export const storageKind = "storage_byte_hours" as const;

export interface StoredAdapter {
  id: string;
  tenantId: string;
  modelId: string;
  sizeBytes: number;
  createdAt: number;
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

/** The statements that bill an adapter's last days when it is deleted: run them in the delete's batch. */
export function storageBillOnDelete(db: Db, a: StoredAdapter, now: number) {
  return storageFacts(a, now).map((f) => usageInsert(db, f));
}

/** Adapters billed per batch: each batch bills their days and moves their mark in one transaction. */
const ADAPTERS_PER_BATCH = 50;

/**
 * Bills every adapter for the UTC days that have ended since it was last billed, and returns how many events
 * it wrote. Safe to run at any time and from several places at once.
 */
export async function billClosedDays(db: Db, now: number): Promise<{ adapters: number; events: number }> {
  const today = startOfDay(now);
  const billedUntil = sql<number>`coalesce(${adapters.storageBilledUntil}, ${adapters.createdAt})`;
  let done = { adapters: 0, events: 0 };
  for (let lastId = ""; ; ) {
    const due = await db
      .select({ id: adapters.id, tenantId: adapters.tenantId, modelId: adapters.modelId, sizeBytes: adapters.sizeBytes, createdAt: adapters.createdAt, storageBilledUntil: adapters.storageBilledUntil })
      .from(adapters)
      .where(and(sql`${adapters.id} > ${lastId}`, lt(billedUntil, today)))
      .orderBy(adapters.id)
      .limit(ADAPTERS_PER_BATCH);
    if (due.length === 0) return done;
    const inserts = due.flatMap((a) => storageFacts(a, today).map((f) => usageInsert(db, f)));
    const marks = due.map((a) =>
      db
        .update(adapters)
        .set({ storageBilledUntil: today })
        .where(and(eq(adapters.id, a.id), or(isNull(adapters.storageBilledUntil), lt(adapters.storageBilledUntil, today)))),
    );
    const results = await runBatch(db, [...inserts, ...marks]);
    const written = results.slice(0, inserts.length).filter((r) => (r as unknown[]).length === 1).length;
    done = { adapters: done.adapters + due.length, events: done.events + written };
    lastId = due[due.length - 1].id;
  }
}
