// Idempotency-Key on completions: a client that retries (a dropped connection, a timeout) with the same key
// gets the stored answer of the first finished attempt instead of a second generation and a second bill.
// One row per (tenant, key), moved by single conditional statements (D1 has no interactive transactions):
// the first request claims the key; a retry while it runs gets 409; a retry after it finished is replayed;
// a retry after it failed or was cut short runs again, billed only for tokens beyond what the key has paid.
import { and, eq, lt, or, sql } from "drizzle-orm";
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
/** A "running" attempt older than this is presumed lost (its API instance died) and may be taken over. */
export const STALE_RUNNING_SECONDS = 15 * 60;

/** The finished completion a retry is answered with. */
export type StoredCompletion = { id: string; created: number; text: string; finish_reason: Finish; usage: GenerateUsage };

export type KeyClaim = { kind: "run"; billed: GenerateUsage } | { kind: "replay"; result: StoredCompletion };

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
export const requestHash = (request: unknown): Promise<string> => sha256Hex(JSON.stringify(request));

const billedOf = (r: { billedPromptTokens: number; billedCompletionTokens: number }): GenerateUsage => ({ prompt_tokens: r.billedPromptTokens, completion_tokens: r.billedCompletionTokens });

/**
 * Claims `key` for this request: "run" (billed says what earlier attempts paid) or "replay" (a finished
 * attempt's answer). Throws 409 while another attempt runs, 400 when the key was used for another request.
 */
export async function claimKey(db: Db, f: KeyRef & { hash: string; now: number }): Promise<KeyClaim> {
  const where = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key));
  const fresh = { requestHash: f.hash, state: "running", requestId: f.requestId, result: null, billedPromptTokens: 0, billedCompletionTokens: 0, createdAt: f.now, updatedAt: f.now };
  const inserted = await db.insert(idempotencyKeys).values({ tenantId: f.tenantId, key: f.key, ...fresh }).onConflictDoNothing().returning({ key: idempotencyKeys.key });
  if (inserted.length > 0) {
    // A new key is the moment to forget this tenant's expired ones.
    await db.delete(idempotencyKeys).where(and(eq(idempotencyKeys.tenantId, f.tenantId), lt(idempotencyKeys.createdAt, f.now - KEY_TTL_SECONDS)));
    return { kind: "run", billed: { prompt_tokens: 0, completion_tokens: 0 } };
  }
  // Expired: the key starts over as if new.
  const renewed = await db.update(idempotencyKeys).set(fresh).where(and(where, lt(idempotencyKeys.createdAt, f.now - KEY_TTL_SECONDS))).returning({ key: idempotencyKeys.key });
  if (renewed.length > 0) return { kind: "run", billed: { prompt_tokens: 0, completion_tokens: 0 } };
  // The same request after a failed, cut-short or lost attempt: run it again.
  const retaken = await db
    .update(idempotencyKeys)
    .set({ state: "running", requestId: f.requestId, updatedAt: f.now })
    .where(and(where, eq(idempotencyKeys.requestHash, f.hash), or(eq(idempotencyKeys.state, "incomplete"), and(eq(idempotencyKeys.state, "running"), lt(idempotencyKeys.updatedAt, f.now - STALE_RUNNING_SECONDS)))))
    .returning({ billedPromptTokens: idempotencyKeys.billedPromptTokens, billedCompletionTokens: idempotencyKeys.billedCompletionTokens });
  if (retaken.length > 0) return { kind: "run", billed: billedOf(retaken[0]) };
  const [row] = await db.select().from(idempotencyKeys).where(where);
  if (row && row.requestHash !== f.hash) {
    throw new ApiError("invalid_request", `Idempotency-Key '${f.key}' was already used for a different request; use a new key for a new request`, "Idempotency-Key");
  }
  if (row?.state === "done" && row.result) return { kind: "replay", result: JSON.parse(row.result) as StoredCompletion };
  throw new ApiError("conflict", `a request with Idempotency-Key '${f.key}' is still running; retry when it has finished`, "Idempotency-Key", { "Retry-After": "1" });
}

/**
 * Bills an attempt under its key: only the tokens beyond what earlier attempts paid (each kind at most its
 * largest attempt), in one atomic batch with the key's running totals.
 */
export async function meterKeyed(db: Db, f: KeyRef & { model: string; usage: GenerateUsage; billed: GenerateUsage; now: number }): Promise<void> {
  const rows = (["prompt_tokens", "completion_tokens"] as const)
    .map((kind) => ({ kind, quantity: Math.max(0, f.usage[kind] - f.billed[kind]) }))
    .filter((r) => r.quantity > 0)
    .map((r) => ({ id: newId("use_"), idempotencyKey: `req:${f.requestId}:${r.kind}`, tenantId: f.tenantId, kind: r.kind, model: f.model, quantity: r.quantity, ref: f.requestId, createdAt: f.now }));
  if (rows.length === 0) return;
  const mine = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId));
  await runBatch(db, [
    db.insert(usageEvents).values(rows).onConflictDoNothing({ target: usageEvents.idempotencyKey }),
    db
      .update(idempotencyKeys)
      .set({ billedPromptTokens: sql`max(${idempotencyKeys.billedPromptTokens}, ${f.usage.prompt_tokens})`, billedCompletionTokens: sql`max(${idempotencyKeys.billedCompletionTokens}, ${f.usage.completion_tokens})`, updatedAt: f.now })
      .where(mine),
  ]);
}

/** Ends this attempt: "done" with its answer (later retries replay it), or "incomplete" (a retry runs again). */
export async function settleKey(db: Db, f: KeyRef & { result: StoredCompletion | null; now: number }): Promise<void> {
  await db
    .update(idempotencyKeys)
    .set(f.result ? { state: "done", result: JSON.stringify(f.result), updatedAt: f.now } : { state: "incomplete", updatedAt: f.now })
    .where(and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId)));
}
