// Idempotency-Key on completions: a client that retries (a dropped connection, a timeout) with the same key
// gets the stored answer of the first finished attempt instead of a second generation and a second bill.
// One row per (tenant, key), moved by single conditional statements (D1 has no interactive transactions):
// the first request claims the key; a retry while it runs gets 409; a retry after it finished is replayed;
// a retry after it failed or was cut short runs again, billed only for tokens beyond what the key has paid.
// A running attempt refreshes its row; one that stops refreshing (its process died) may be taken over.
import { and, eq, lt, ne, or, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { idempotencyKeys, usageEvents } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { newId } from "../lib/ids.js";
import { sha256Hex } from "../lib/hash.js";
import { runBatch } from "../jobs/store.js";
import type { Finish } from "./openai.js";
import type { GenerateUsage } from "./runner-protocol.js";

/** How long a key is remembered, as Stripe does. */
export const KEY_TTL_SECONDS = 24 * 3600;
/** A "running" attempt refreshes its row this often while it runs (holdKey) … */
export const HEARTBEAT_SECONDS = 10;
/** … so one not refreshed for this long is presumed lost (its process died) and may be taken over. */
export const STALE_RUNNING_SECONDS = 60;

/** The finished completion a retry is answered with. */
export type StoredCompletion = { id: string; created: number; text: string; finish_reason: Finish; usage: GenerateUsage };

export type KeyClaim = { kind: "run" } | { kind: "replay"; result: StoredCompletion };

type KeyRef = { tenantId: string; key: string; requestId: string };

/** The header's value, checked: 1–255 printable ASCII characters. */
export function parseIdempotencyKey(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const key = raw.trim();
  if (!/^[\x20-\x7e]{1,255}$/.test(key)) {
    throw new ApiError("invalid_request", "Idempotency-Key must be 1–255 printable ASCII characters (a UUID, say)", "Idempotency-Key");
  }
  return key;
}

/** Hash of the normalised request (endpoint, model, input, sampling, stream), so a reused key is caught. */
export const requestHash = (request: { stream: boolean; includeUsage: boolean }): Promise<string> =>
  // include_usage shapes only a stream: a JSON request differing in it alone is the same request.
  sha256Hex(JSON.stringify({ ...request, includeUsage: request.stream ? request.includeUsage : null }));

/** Not held by a live attempt: anything but "running", or running without a heartbeat for STALE_RUNNING_SECONDS. */
const notHeld = (now: number) => or(ne(idempotencyKeys.state, "running"), lt(idempotencyKeys.updatedAt, now - STALE_RUNNING_SECONDS));

/**
 * Claims `key` for this request: "run" or "replay" (a finished attempt's answer). Throws 409 while another
 * attempt holds it, 400 when the key was used for another request.
 */
export async function claimKey(db: Db, f: KeyRef & { hash: string; now: number }): Promise<KeyClaim> {
  const where = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key));
  const fresh = { requestHash: f.hash, state: "running", requestId: f.requestId, result: null, billedPromptTokens: 0, billedCompletionTokens: 0, createdAt: f.now, updatedAt: f.now };
  const inserted = await db.insert(idempotencyKeys).values({ tenantId: f.tenantId, key: f.key, ...fresh }).onConflictDoNothing().returning({ key: idempotencyKeys.key });
  if (inserted.length > 0) {
    // A new key is the moment to forget this tenant's expired ones; failing to is no reason to fail the call.
    await db
      .delete(idempotencyKeys)
      .where(and(eq(idempotencyKeys.tenantId, f.tenantId), lt(idempotencyKeys.createdAt, f.now - KEY_TTL_SECONDS), notHeld(f.now)))
      .catch((err: unknown) => console.error("forgetting expired idempotency keys failed:", err));
    return { kind: "run" };
  }
  // Expired, and no attempt holds it: the key starts over as if new.
  const renewed = await db.update(idempotencyKeys).set(fresh).where(and(where, lt(idempotencyKeys.createdAt, f.now - KEY_TTL_SECONDS), notHeld(f.now))).returning({ key: idempotencyKeys.key });
  if (renewed.length > 0) return { kind: "run" };
  // The same request after a failed, cut-short or lost attempt: run it again (billing counts what was paid).
  const retaken = await db
    .update(idempotencyKeys)
    .set({ state: "running", requestId: f.requestId, updatedAt: f.now })
    .where(and(where, eq(idempotencyKeys.requestHash, f.hash), ne(idempotencyKeys.state, "done"), notHeld(f.now)))
    .returning({ key: idempotencyKeys.key });
  if (retaken.length > 0) return { kind: "run" };
  const [row] = await db.select().from(idempotencyKeys).where(where);
  if (row && row.requestHash !== f.hash) {
    throw new ApiError("invalid_request", `Idempotency-Key '${f.key}' was already used for a different request; use a new key for a new request`, "Idempotency-Key");
  }
  if (row?.state === "done" && row.result) return { kind: "replay", result: JSON.parse(row.result) as StoredCompletion };
  throw new ApiError("conflict", `a request with Idempotency-Key '${f.key}' is still running; retry when it has finished`, "Idempotency-Key", { "Retry-After": "1" });
}

/**
 * Keeps this attempt's hold on the key fresh while it runs (every HEARTBEAT_SECONDS), so that an attempt
 * whose process died is taken over within STALE_RUNNING_SECONDS. Returns the function that stops it.
 */
export function holdKey(db: Db, f: KeyRef, now: () => number): () => void {
  const mine = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId), eq(idempotencyKeys.state, "running"));
  const timer = setInterval(() => {
    db.update(idempotencyKeys).set({ updatedAt: now() }).where(mine).catch((err: unknown) => console.error("refreshing an idempotency key failed:", err));
  }, HEARTBEAT_SECONDS * 1000);
  return () => clearInterval(timer);
}

/**
 * Bills an attempt under its key: only the tokens beyond what the key has paid (each kind at most its
 * largest attempt). The amounts are worked out inside one atomic batch from the key's current totals, and
 * only while this attempt still holds the key: an attempt that was taken over (stale) bills nothing more.
 */
export async function meterKeyed(db: Db, f: KeyRef & { model: string; usage: GenerateUsage; now: number }): Promise<void> {
  const mine = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId));
  const paid = { prompt_tokens: idempotencyKeys.billedPromptTokens, completion_tokens: idempotencyKeys.billedCompletionTokens } as const;
  const inserts = (["prompt_tokens", "completion_tokens"] as const).map((kind) =>
    db
      .insert(usageEvents)
      .select((qb) =>
        qb
          .select({
            id: sql<string>`${newId("use_")}`.as("id"),
            idempotencyKey: sql<string>`${`req:${f.requestId}:${kind}`}`.as("idempotency_key"),
            tenantId: sql<string>`${f.tenantId}`.as("tenant_id"),
            kind: sql<string>`${kind}`.as("kind"),
            model: sql<string>`${f.model}`.as("model"),
            quantity: sql<number>`${f.usage[kind]} - ${paid[kind]}`.as("quantity"),
            ref: sql<string>`${f.requestId}`.as("ref"),
            createdAt: sql<number>`${f.now}`.as("created_at"),
          })
          .from(idempotencyKeys)
          .where(and(mine, sql`${f.usage[kind]} > ${paid[kind]}`)),
      )
      .onConflictDoNothing({ target: usageEvents.idempotencyKey }),
  );
  await runBatch(db, [
    ...inserts,
    db
      .update(idempotencyKeys)
      .set({ billedPromptTokens: sql`max(${idempotencyKeys.billedPromptTokens}, ${f.usage.prompt_tokens})`, billedCompletionTokens: sql`max(${idempotencyKeys.billedCompletionTokens}, ${f.usage.completion_tokens})`, updatedAt: f.now })
      .where(mine),
  ]);
}

/**
 * Ends this attempt: "done" with its answer (later retries replay it), or "incomplete" (a retry runs again).
 * Only a running attempt that still holds the key settles it, once.
 */
export async function settleKey(db: Db, f: KeyRef & { result: StoredCompletion | null; now: number }): Promise<void> {
  await db
    .update(idempotencyKeys)
    .set(f.result ? { state: "done", result: JSON.stringify(f.result), updatedAt: f.now } : { state: "incomplete", updatedAt: f.now })
    .where(and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId), eq(idempotencyKeys.state, "running")));
}
