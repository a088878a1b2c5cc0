// Writes one usage event per billable fact: the idempotency key (job id + kind, request id + kind) is unique,
// so a retried complete or a replayed inference report never bills twice (ARCHITECTURE.md §7).
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
