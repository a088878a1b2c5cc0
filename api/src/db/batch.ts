// Atomic multi-statement writes on both drivers (D1 has no interactive transactions).
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "./client.js";

/** Runs statements as one atomic batch: D1's and libsql's batch() are both transactions. */
export async function runBatch(db: Db, items: BatchItem<"sqlite">[]): Promise<unknown[]> {
  if (items.length === 0) return [];
  const withBatch = db as unknown as { batch(items: readonly BatchItem<"sqlite">[]): Promise<unknown[]> };
  return withBatch.batch(items);
}
