// The per-tenant rate limit (ARCHITECTURE.md §7): API requests a minute, all of a tenant's keys together,
// counted in fixed one-minute windows in the database so that every API process and Worker isolate shares
// one count. A tenant without a limit costs nothing; one with a limit costs one upsert a request. Refused
// requests count too, so a client that keeps hammering stays refused until the window turns. As with any
// fixed window, up to twice the limit can pass across a window's edge.
import { sql } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { rateWindows } from "../db/schema.js";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { limitsOf } from "./limits.js";

const WINDOW_SECONDS = 60;

/**
 * Counts each request against the tenant's requests_per_minute (after tenantAuth), refuses it with 429 and
 * Retry-After past the limit, and puts OpenAI's x-ratelimit-* headers on every answer, streams and files too.
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    const { deps, tenant } = c.var;
    const limit = limitsOf(tenant.quotas, deps.config).requests_per_minute;
    if (limit === 0) return next();
    const now = deps.now();
    const windowStart = now - (now % WINDOW_SECONDS);
    const [row] = await deps.db
      .insert(rateWindows)
      .values({ tenantId: tenant.tenantId, windowStart, count: 1 })
      .onConflictDoUpdate({
        target: rateWindows.tenantId,
        // SET sees the stored row: a later window starts over at 1; a request stamped in an earlier window
        // (another process's clock a little behind) counts in the current one rather than resetting it.
        set: {
          count: sql`CASE WHEN ${windowStart} > ${rateWindows.windowStart} THEN 1 ELSE ${rateWindows.count} + 1 END`,
          windowStart: sql`max(${rateWindows.windowStart}, ${windowStart})`,
        },
      })
      .returning({ count: rateWindows.count, windowStart: rateWindows.windowStart });
    const reset = Math.max(1, row.windowStart + WINDOW_SECONDS - now);
    const headers = {
      "x-ratelimit-limit-requests": String(limit),
      "x-ratelimit-remaining-requests": String(Math.max(0, limit - row.count)),
      "x-ratelimit-reset-requests": `${reset}s`,
    };
    if (row.count > limit) {
      const message = `this tenant has sent more than its ${limit} requests this minute; retry in ${reset} s, or ask the operator to raise requests_per_minute`;
      throw new ApiError("rate_limited", message, null, { ...headers, "Retry-After": String(reset) });
    }
    await next();
    // Routes that answer with their own Response (files, streams, proxied answers) may have immutable headers.
    try {
      for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
    } catch {
      c.res = new Response(c.res.body, c.res);
      for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
    }
  };
}
