// The per-tenant rate limit (ARCHITECTURE.md §7): API requests a minute, all of a tenant's keys together,
// counted in fixed one-minute windows in the database so that every API process and Worker isolate shares
// one count. A tenant without a limit costs nothing; one with a limit costs one upsert a request. Refused
// requests count too, so a client that keeps hammering stays refused until the window turns. As with any
// fixed window, up to twice the limit can pass across a window's edge.
import { sql } from "drizzle-orm";
import type { Context } from "hono";
import { rateWindows } from "../db/schema.js";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { limitsOf } from "./limits.js";

const WINDOW_SECONDS = 60;

/**
 * Counts this request against the tenant's requests_per_minute, sets OpenAI's x-ratelimit-* headers, and
 * refuses it with 429 and Retry-After once the window's count passes the limit.
 */
export async function countRequest(c: Context<AppEnv>): Promise<void> {
  const { deps, tenant } = c.var;
  const limit = limitsOf(tenant.quotas, deps.config).requests_per_minute;
  if (limit === 0) return;
  const now = deps.now();
  const windowStart = now - (now % WINDOW_SECONDS);
  const [row] = await deps.db
    .insert(rateWindows)
    .values({ tenantId: tenant.tenantId, windowStart, count: 1 })
    .onConflictDoUpdate({
      target: rateWindows.tenantId,
      // SET sees the stored row: a later window starts over at 1.
      set: { count: sql`CASE WHEN ${rateWindows.windowStart} = ${windowStart} THEN ${rateWindows.count} + 1 ELSE 1 END`, windowStart },
    })
    .returning({ count: rateWindows.count });
  const reset = windowStart + WINDOW_SECONDS - now;
  c.header("x-ratelimit-limit-requests", String(limit));
  c.header("x-ratelimit-remaining-requests", String(Math.max(0, limit - row.count)));
  c.header("x-ratelimit-reset-requests", `${reset}s`);
  if (row.count > limit) {
    throw new ApiError("rate_limited", `this tenant has sent more than its ${limit} requests this minute; retry in ${reset} s, or ask the operator to raise requests_per_minute`, null, { "Retry-After": String(reset) });
  }
}
