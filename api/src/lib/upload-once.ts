// Uploads (files, adapters) under an Idempotency-Key: a client that retries an upload whose answer it lost
// gets the object the first attempt stored instead of a second copy. A retry is compared with the first
// attempt by the fingerprint its route gives: an adapter's fields and file hashes (taken as its files stream into
// the blob store, so its key is judged once they are stored, and a replay's copy is then removed); nothing for a
// training file.
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { claimKey, hasAnswer, holdKey, parseIdempotencyKey, requestHash, settleKey } from "./idempotency-keys.js";
import { keepRunning } from "./keep-running.js";

/**
 * Runs `upload` once per key. `fingerprint` is asked for only when a key is sent. `stored` finds what an
 * earlier attempt stored, by the id it recorded; a replay of an object deleted since is a 404. Without the
 * header, `upload` just runs.
 */
export async function uploadOnce<T>(
  c: Context<AppEnv>,
  what: string,
  fingerprint: () => unknown,
  upload: () => Promise<{ id: string; value: T }>,
  stored: (id: string) => Promise<T | null>,
): Promise<{ value: T; replayed: boolean }> {
  const key = parseIdempotencyKey(c.req.header("Idempotency-Key"));
  if (key === null) return { value: (await upload()).value, replayed: false };
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
      const { id, value } = await upload();
      await settleKey(db, { ...ref, result: { id }, now: now() });
      return value;
    } catch (err) {
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
