// Uploads (files, adapters) under an Idempotency-Key: a client that retries an upload whose answer it lost
// gets the object the first attempt stored instead of a second copy. A retry is compared with the first
// attempt by the fingerprint its route gives: an adapter's fields and file hashes (taken as its files stream into
// the blob store, so its key is judged once they are stored, and a replay's copy is then removed); nothing for a
// training file. The key's answer is written in the batch that inserts the upload's row, so that a failed write
// cannot keep the row with the key left free (the retry would store a second copy); and an upload that stalled
// until a retry took its key over (no heartbeat for STALE_RUNNING_SECONDS) deletes its row in that batch and its
// blobs after, answering 409 as job creation does: the retry's object is the one the key names.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { claimKey, hasAnswer, holdKey, notAnsweredBy, parseIdempotencyKey, reopenKeyQuery, requestHash, settleKey, settleKeyQuery } from "./idempotency-keys.js";
import { keepRunning } from "./keep-running.js";

/**
 * Statements an Idempotency-Key adds to an upload (none without one): its answer, for the batch that inserts
 * the row, and its undoing, for the batch that withdraws the row (a quota re-check after the insert), so that
 * the key never keeps an object it did not get, nor an object stays that the key does not name.
 */
export interface UploadKeyRecord {
  record(id: string): BatchItem<"sqlite">[];
  /**
   * The condition of a delete of the row, last in the batch `record` joins: true when the key was no longer this
   * attempt's (a retry took it over), so the row is never kept beside the retry's. Never true without a key.
   */
  takenOver: SQL;
  /** The 409 an attempt answers whose row went so (its blobs are its own to remove). */
  takenOverError(): ApiError;
  withdraw(): BatchItem<"sqlite">[];
}

const noKey: UploadKeyRecord = { record: () => [], takenOver: sql`0`, takenOverError: () => new ApiError("internal_error", "an upload without an Idempotency-Key has no key to lose"), withdraw: () => [] };

/**
 * Runs `upload` once per key; `upload` writes `key`'s statements with its row. `fingerprint` is asked for only
 * when a key is sent. `stored` finds what an earlier attempt stored, by the id it recorded; a replay of an object
 * deleted since is a 404. Without the header, `upload` just runs.
 */
export async function uploadOnce<T>(
  c: Context<AppEnv>,
  what: string,
  fingerprint: () => unknown,
  upload: (key: UploadKeyRecord) => Promise<T>,
  stored: (id: string) => Promise<T | null>,
): Promise<{ value: T; replayed: boolean }> {
  const key = parseIdempotencyKey(c.req.header("Idempotency-Key"));
  if (key === null) return { value: await upload(noKey), replayed: false };
  const { db, now } = c.var.deps;
  const ref = { tenantId: c.var.tenant.tenantId, key, requestId: c.var.requestId };
  const claim = await claimKey<{ id: string }>(db, { ...ref, hash: await requestHash(`upload:${what}`, await fingerprint()), now: now() });
  if (claim.kind === "replay") {
    await c.req.raw.body?.cancel().catch(() => {});
    const value = await stored(claim.result.id);
    if (!value) throw new ApiError("not_found", `the ${what} that Idempotency-Key '${key}' uploaded (${claim.result.id}) has been deleted; upload again with a new key`, "Idempotency-Key");
    return { value, replayed: true };
  }
  const release = holdKey(db, ref, now);
  const attempt = (async () => {
    try {
      const value = await upload({
        record: (id) => [settleKeyQuery(db, { ...ref, result: { id }, now: now() })],
        takenOver: notAnsweredBy(db, ref),
        takenOverError: () =>
          new ApiError("conflict", `a retry with Idempotency-Key '${key}' took the key over while this upload stalled, and its ${what} is the one kept; fetch it by repeating the request with the same key`, "Idempotency-Key", { "Retry-After": "1" }),
        withdraw: () => [reopenKeyQuery(db, { ...ref, now: now() })],
      });
      return value;
    } catch (err) {
      // A no-op when the key was reopened with a withdrawn row (already "incomplete") or answered with a kept one.
      await settleKey(db, { ...ref, result: null, now: now() }).catch((e: unknown) => console.error(`[${ref.requestId}] settling its Idempotency-Key failed:`, e));
      throw err;
    } finally {
      release();
    }
  })();
  // On a Worker a client that disconnects would otherwise cancel the attempt before it settles its key, and
  // its retries would get 409 until the key went stale.
  keepRunning(c, attempt.catch(() => undefined));
  return { value: await attempt, replayed: false };
}

/**
 * Whether this request's Idempotency-Key holds a finished upload's answer, which uploadOnce may replay: a quota
 * checked before the upload is read must let such a retry through (the first attempt may have taken the last slot).
 */
export async function mayReplay(c: Context<AppEnv>): Promise<boolean> {
  const key = parseIdempotencyKey(c.req.header("Idempotency-Key"));
  if (key === null) return false;
  return hasAnswer(c.var.deps.db, { tenantId: c.var.tenant.tenantId, key, now: c.var.deps.now() });
}
