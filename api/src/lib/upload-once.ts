// Uploads (files, adapters) under an Idempotency-Key: a client that retries an upload whose answer it lost
// gets the object the first attempt stored instead of a second copy. The key names the upload: a retry's body
// is not read or compared, since fingerprinting a streamed body would mean buffering it before storing it.
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { claimKey, holdKey, parseIdempotencyKey, requestHash, settleKey } from "./idempotency-keys.js";

/**
 * Runs `upload` once per key. `stored` finds what an earlier attempt stored, by the id it recorded; a replay
 * of an object deleted since is a 404. Without the header, `upload` just runs.
 */
export async function uploadOnce<T>(c: Context<AppEnv>, what: string, upload: () => Promise<{ id: string; value: T }>, stored: (id: string) => Promise<T | null>): Promise<{ value: T; replayed: boolean }> {
  const key = parseIdempotencyKey(c.req.header("Idempotency-Key"));
  if (key === null) return { value: (await upload()).value, replayed: false };
  const { db, now } = c.var.deps;
  const ref = { tenantId: c.var.tenant.tenantId, key, requestId: c.var.requestId };
  const claim = await claimKey<{ id: string }>(db, { ...ref, hash: await requestHash(`upload:${what}`, {}), now: now() });
  if (claim.kind === "replay") {
    await c.req.raw.body?.cancel().catch(() => {});
    const value = await stored(claim.result.id);
    if (!value) throw new ApiError("not_found", `the ${what} that Idempotency-Key '${key}' uploaded (${claim.result.id}) has been deleted; upload again with a new key`, "Idempotency-Key");
    return { value, replayed: true };
  }
  const release = holdKey(db, ref, now);
  try {
    const { id, value } = await upload();
    await settleKey(db, { ...ref, result: { id }, now: now() });
    return { value, replayed: false };
  } catch (err) {
    await settleKey(db, { ...ref, result: null, now: now() }).catch((e: unknown) => console.error(`[${ref.requestId}] settling its Idempotency-Key failed:`, e));
    throw err;
  } finally {
    release();
  }
}
