// Stores and removes an adapter: its two PEFT files under blobKeys.adapter and its row, kept consistent.
import { and, eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { BlobStore } from "../blob/port.js";
import { blobKeys } from "../blob/port.js";
import { runBatch } from "../db/batch.js";
import type { Db } from "../db/client.js";
import { adapters } from "../db/schema.js";
import type { UploadKeyRecord } from "../lib/upload-once.js";
import { storageBillOnDelete } from "../usage/storage.js";
import { fineTunedModelId, type AdapterRow } from "./models.js";
import type { AdapterFacts } from "./validate.js";

/** The two files of a PEFT adapter, as stored and served. */
export const adapterFiles = ["adapter_config.json", "adapter_model.safetensors"] as const;
export type AdapterFileName = (typeof adapterFiles)[number];
export const adapterFileTypes: Record<AdapterFileName, string> = {
  "adapter_config.json": "application/json",
  "adapter_model.safetensors": "application/octet-stream",
};

export interface NewAdapter {
  tenantId: string;
  baseModel: string;
  suffix?: string | null;
  jobId?: string | null;
  facts: AdapterFacts;
  /** Bytes of both files together. */
  sizeBytes: number;
  /** SHA-256 hex of adapter_model.safetensors (the caller has it already: an upload or a job's hand-in hashes it as it streams). */
  weightsSha256: string;
  now: number;
}

/** The row of adapter `id` (an upload's is new, a fine-tuning job's follows from the job's). */
export function adapterRow(id: string, a: NewAdapter): AdapterRow {
  return {
    id,
    tenantId: a.tenantId,
    modelId: fineTunedModelId(a.baseModel, a.tenantId, a.suffix, id),
    baseModel: a.baseModel,
    method: "lora",
    rank: a.facts.rank,
    alpha: a.facts.alpha,
    targetModules: JSON.stringify(a.facts.targetModules),
    sizeBytes: a.sizeBytes,
    sha256: a.weightsSha256,
    blobPrefix: blobKeys.adapter(a.tenantId, id),
    jobId: a.jobId ?? null,
    createdAt: a.now,
    storageBilledUntil: a.now,
  };
}

/**
 * Records an uploaded adapter whose files are already under `row.blobPrefix`, with its Idempotency-Key's answer in
 * the same batch; a failed insert removes the files, so no orphan blobs stay. False when that batch deleted the row
 * again because a retry had taken the key over (upload-once.ts): its files are then the caller's to remove.
 */
export async function insertUploadedAdapter(db: Db, blobs: BlobStore, row: AdapterRow, key: UploadKeyRecord): Promise<boolean> {
  let written: unknown[];
  try {
    const dropIfTakenOver = db.delete(adapters).where(and(eq(adapters.id, row.id), key.takenOver)).returning({ id: adapters.id });
    written = await runBatch(db, [db.insert(adapters).values(row), ...key.record(row.id), dropIfTakenOver]);
  } catch (e) {
    await blobs.deletePrefix(row.blobPrefix).catch(() => undefined);
    throw e;
  }
  return (written.at(-1) as unknown[]).length === 0;
}

/**
 * Takes back an adapter just written past the tenant's quota: its row and files, unbilled (it was never kept);
 * `also` (an Idempotency-Key's undoing) goes in the batch that deletes the row.
 */
export async function withdrawAdapter(db: Db, blobs: BlobStore, row: AdapterRow, also: BatchItem<"sqlite">[] = []): Promise<void> {
  await runBatch(db, [db.delete(adapters).where(eq(adapters.id, row.id)), ...also]);
  await blobs.deletePrefix(row.blobPrefix);
}

/**
 * Deletes the tenant's adapter row and bills its storage up to now, in one batch (usage/storage.ts), then
 * removes its files; false when it was not there.
 */
export async function deleteAdapter(db: Db, blobs: BlobStore, tenantId: string, adapterId: string, now: number): Promise<boolean> {
  const mine = and(eq(adapters.id, adapterId), eq(adapters.tenantId, tenantId));
  const [row] = await db.select().from(adapters).where(mine);
  if (!row) return false;
  const bill = storageBillOnDelete(db, row, now);
  const results = await runBatch(db, [...bill, db.delete(adapters).where(mine).returning({ prefix: adapters.blobPrefix })]);
  const gone = results[bill.length] as { prefix: string }[];
  // Empty when a delete that raced this one removed it first (and billed these days itself).
  if (gone.length === 0) return false;
  await blobs.deletePrefix(gone[0].prefix);
  // A fine-tuned job's checkpoints are its adapter at earlier steps, and its output folder the runner's copy of
  // it: their weights go with it (the rows stay as the job's history).
  if (row.jobId) {
    await blobs.deletePrefix(blobKeys.jobCheckpoints(tenantId, row.jobId));
    await blobs.deletePrefix(blobKeys.jobOutputs(tenantId, row.jobId));
  }
  return true;
}
