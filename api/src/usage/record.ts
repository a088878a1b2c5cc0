// Writes one usage event per billable fact: the idempotency key (job id + kind, request id + kind) is unique,
// so a retried complete or a replayed inference report never bills twice (ARCHITECTURE.md §7).
import { sql, type SQL } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Db } from "../db/client.js";
import { usageEvents } from "../db/schema.js";
import { newId } from "../lib/ids.js";

export const usageKinds = ["training_tokens", "prompt_tokens", "completion_tokens", "storage_byte_hours"] as const;
export type UsageKind = (typeof usageKinds)[number];

export interface UsageFact {
  idempotencyKey: string;
  tenantId: string;
  kind: UsageKind;
  /** The model billed: the base model for training, the called model for inference. */
  model: string;
  quantity: number;
  /** What produced it (job id, request id), for audits. */
  ref: string;
  now: number;
}

/** The one key of a job's training usage: a finished job and a cancelled one bill under it, so at most once. */
export const trainingUsageKey = (jobId: string) => `job:${jobId}:training_tokens`;

/** The INSERT … ON CONFLICT DO NOTHING statement, for callers that put it in a db.batch with other writes. */
export function usageInsert(db: Db, f: UsageFact) {
  return db
    .insert(usageEvents)
    .values({ id: newId("use_"), idempotencyKey: f.idempotencyKey, tenantId: f.tenantId, kind: f.kind, model: f.model, quantity: f.quantity, ref: f.ref, createdAt: f.now })
    .onConflictDoNothing({ target: usageEvents.idempotencyKey })
    .returning({ id: usageEvents.id });
}

/** Records a usage fact once; returns true when this call wrote it, false when the key was already there. */
export async function recordUsage(db: Db, f: UsageFact): Promise<boolean> {
  const rows = await usageInsert(db, f);
  return rows.length === 1;
}

/** A usage fact whose tenant, model, quantity or ref may be read from the row it is billed from. */
export type UsageFactFrom = { [K in keyof UsageFact]: K extends "tenantId" | "model" | "quantity" | "ref" ? UsageFact[K] | SQL : UsageFact[K] };

/**
 * INSERT … SELECT of one usage event from `table` where `where` holds: put in the batch of the change it bills
 * (before or after it, as `where` needs), it lands only with that change, and once per idempotency key.
 */
export function usageInsertFrom(db: Db, f: UsageFactFrom, table: SQLiteTable, where: SQL) {
  return db
    .insert(usageEvents)
    .select((qb) =>
      qb
        .select({
          seq: sql<number | null>`null`.as("seq"), // assigned by the database, in commit order
          id: sql<string>`${newId("use_")}`.as("id"),
          idempotencyKey: sql<string>`${f.idempotencyKey}`.as("idempotency_key"),
          tenantId: sql<string>`${f.tenantId}`.as("tenant_id"),
          kind: sql<string>`${f.kind}`.as("kind"),
          model: sql<string>`${f.model}`.as("model"),
          quantity: sql<number>`${f.quantity}`.as("quantity"),
          ref: sql<string>`${f.ref}`.as("ref"),
          createdAt: sql<number>`${f.now}`.as("created_at"),
        })
        .from(table)
        .where(where),
    )
    .onConflictDoNothing({ target: usageEvents.idempotencyKey });
}
