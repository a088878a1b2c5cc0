// Idempotency-Key: a client that retries a POST (a dropped connection, a timeout) with the same key gets the
// outcome of the first attempt instead of doing the work, and paying for it, twice. One row per (tenant,
// key), moved by single conditional statements (D1 has no interactive transactions): the first request
// claims the key; a retry while it runs gets 409; a retry after it finished is answered from the stored
// result; a retry after it failed runs again. A running attempt refreshes its row; one that stops
// refreshing (its process died) may be taken over. Used by completions (inference/idempotency.ts adds
// their billing), fine-tuning job creation and uploads (upload-once.ts).
import { z } from "@hono/zod-openapi";
import { and, eq, gte, lt, ne, notExists, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { idempotencyKeys } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { sha256Hex } from "./hash.js";

/** How long a key is remembered, as Stripe does. */
export const KEY_TTL_SECONDS = 24 * 3600;
/** A "running" attempt refreshes its row this often while it runs (holdKey) … */
export const HEARTBEAT_SECONDS = 10;
/** … so one not refreshed for this long is presumed lost (its process died) and may be taken over. */
export const STALE_RUNNING_SECONDS = 60;

export type KeyClaim<T> = { kind: "run" } | { kind: "replay"; result: T };

export type KeyRef = { tenantId: string; key: string; requestId: string };

/** The header's value, checked: 1–255 printable ASCII characters. */
export function parseIdempotencyKey(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const key = raw.trim();
  if (!/^[\x20-\x7e]{1,255}$/.test(key)) {
    throw new ApiError("invalid_request", "Idempotency-Key must be 1–255 printable ASCII characters (a UUID, say)", "Idempotency-Key");
  }
  return key;
}

/** The header in a route's OpenAPI request (checked by parseIdempotencyKey, which names it in errors). */
export const idempotencyHeaders = z.object({
  "idempotency-key": z.string().optional().openapi({ description: "1–255 printable ASCII characters: a retry with the same key gets the first attempt's outcome instead of doing (and billing) the work again" }),
});

/** Hash of a normalised request (its endpoint and fields, keys sorted), so a key reused for another request is caught. */
export const requestHash = (endpoint: string, request: unknown): Promise<string> => sha256Hex(JSON.stringify(sortedKeys({ endpoint, request })));

/** `v` with every object's keys in sorted order, so that field order does not change the hash. */
function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v === null || typeof v !== "object") return v;
  const o = v as Record<string, unknown>;
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, sortedKeys(o[k])]));
}

/** Not held by a live attempt: anything but "running", or running without a heartbeat for STALE_RUNNING_SECONDS. */
const notHeld = (now: number) => or(ne(idempotencyKeys.state, "running"), lt(idempotencyKeys.updatedAt, now - STALE_RUNNING_SECONDS));

/**
 * Claims `key` for this request: "run" or "replay" (a finished attempt's answer). Throws 409 while another
 * attempt holds it, 400 when the key was used for another request.
 */
export async function claimKey<T>(db: Db, f: KeyRef & { hash: string; now: number }, tries = 3): Promise<KeyClaim<T>> {
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
  // Gone since the insert found it: another request's clean-up forgot it (it had expired). Nothing holds it.
  if (!row && tries > 1) return claimKey(db, f, tries - 1);
  if (row && row.requestHash !== f.hash) {
    throw new ApiError("invalid_request", `Idempotency-Key '${f.key}' was already used for a different request; use a new key for a new request`, "Idempotency-Key");
  }
  if (row?.state === "done" && row.result) return { kind: "replay", result: JSON.parse(row.result) as T };
  throw new ApiError("conflict", `a request with Idempotency-Key '${f.key}' is still running; retry when it has finished`, "Idempotency-Key", { "Retry-After": "1" });
}

/**
 * Whether `key` holds a finished attempt's answer that claimKey would replay (if the request matches), read
 * without claiming it: for a route that refuses early, before it can fingerprint the request (an adapter upload
 * checks its quota before storing the files it hashes), so that a replay is still let through to be answered.
 */
export async function hasAnswer(db: Db, f: { tenantId: string; key: string; now: number }): Promise<boolean> {
  const [row] = await db
    .select({ key: idempotencyKeys.key })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.state, "done"), gte(idempotencyKeys.createdAt, f.now - KEY_TTL_SECONDS)));
  return row !== undefined;
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
 * Ends this attempt: "done" with its answer (later retries replay it), or "incomplete" (a retry runs again).
 * Only a running attempt that still holds the key settles it, once.
 */
export async function settleKey(db: Db, f: KeyRef & { result: unknown; now: number }): Promise<void> {
  await settleKeyQuery(db, f);
}

/**
 * Lets go of a key whose attempt was refused before any work (a runner's 400: nothing ran, nothing was
 * billed), as if it had never been used, so that the corrected request can take it.
 */
export async function forgetKey(db: Db, f: KeyRef): Promise<void> {
  await db
    .delete(idempotencyKeys)
    .where(
      and(
        eq(idempotencyKeys.tenantId, f.tenantId),
        eq(idempotencyKeys.key, f.key),
        eq(idempotencyKeys.requestId, f.requestId),
        eq(idempotencyKeys.state, "running"),
        eq(idempotencyKeys.billedPromptTokens, 0),
        eq(idempotencyKeys.billedCompletionTokens, 0),
      ),
    );
}

/** settleKey as a statement, to run in the same batch as the work it records (a job's creation). */
export function settleKeyQuery(db: Db, f: KeyRef & { result: unknown; now: number }) {
  return db
    .update(idempotencyKeys)
    .set(f.result ? { state: "done", result: JSON.stringify(f.result), updatedAt: f.now } : { state: "incomplete", updatedAt: f.now })
    .where(and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId), eq(idempotencyKeys.state, "running")));
}

/**
 * Takes back the "done" this attempt recorded with work it then withdrew (a job created past the tenant's quota
 * by a race, cancelled before it ran): the key is left as after a failed attempt, so a retry, which SDKs send
 * with the same key on a 429, is judged again instead of being answered with the withdrawn work.
 */
export function reopenKeyQuery(db: Db, f: KeyRef & { now: number }) {
  return db
    .update(idempotencyKeys)
    .set({ state: "incomplete", result: null, updatedAt: f.now })
    .where(and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId), eq(idempotencyKeys.state, "done")));
}

/**
 * True unless this attempt holds `key` with its answer: placed after settleKeyQuery in the same batch, it finds a
 * key a retry took over while the attempt stalled (settleKeyQuery then changed nothing).
 */
export function notAnsweredBy(db: Db, f: KeyRef): SQL {
  const mine = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId), eq(idempotencyKeys.state, "done"));
  return notExists(db.select({ one: sql`1` }).from(idempotencyKeys).where(mine));
}
