// Bearer-token guards: tenant API keys (hashed lookup), the admin token, and the runner token.
import { and, eq, isNull, sql } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import type { Db } from "../db/client.js";
import { prepared } from "../db/prepared.js";
import { apiKeys, tenants } from "../db/schema.js";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { secretsEqual, sha256Hex } from "../lib/hash.js";

function bearer(header: string | undefined, what = "api key"): string {
  const m = header?.match(/^Bearer\s+(\S+)$/i);
  if (!m) throw new ApiError("unauthorized", `missing or malformed Authorization header; send 'Authorization: Bearer <${what}>'`);
  return m[1];
}

/** The live (not revoked) key with this hash, its tenant's quotas, and whether the tenant is suspended. */
const keyByHash = (db: Db) =>
  prepared(db, "apiKeyByHash", (d) =>
    d
      .select({ key: apiKeys, suspendedAt: tenants.suspendedAt, quotas: { maxActiveJobs: tenants.maxActiveJobs, maxAdapters: tenants.maxAdapters, monthlyTokens: tenants.monthlyTokens, requestsPerMinute: tenants.requestsPerMinute } })
      .from(apiKeys)
      .innerJoin(tenants, eq(tenants.id, apiKeys.tenantId))
      .where(and(eq(apiKeys.hash, sql.placeholder("hash")), isNull(apiKeys.revokedAt)))
      .limit(1)
      .prepare(),
  );

/**
 * Why a bearer is no tenant key. The admin and runner tokens are named (compared in constant time, as their
 * guards do): sending one to /v1 is a common first mistake, and "invalid" alone sends the user hunting for a typo.
 */
async function unknownKeyMessage(secret: string, config: { TUNESERVE_ADMIN_TOKEN?: string; TUNESERVE_RUNNER_TOKEN?: string }): Promise<string> {
  const tokens = [["admin", config.TUNESERVE_ADMIN_TOKEN, "/admin/*"], ["runner", config.TUNESERVE_RUNNER_TOKEN, "/internal/*"]] as const;
  for (const [name, token, routes] of tokens) {
    if (token && (await secretsEqual(secret, token))) {
      return `invalid or revoked API key: this is the ${name} token, which opens ${routes} only; send a tenant's API key (POST /admin/v1/tenants returns one)`;
    }
  }
  return "invalid or revoked API key";
}

/** Resolves the tenant from its API key; the tenant id never comes from the request itself. */
export function tenantAuth(): MiddlewareHandler<AppEnv> {
  return async function tenantAuth(c, next) {
    const secret = bearer(c.req.header("Authorization"));
    const { db, now } = c.var.deps;
    const hash = await sha256Hex(secret);
    const found = await keyByHash(db).get({ hash });
    if (!found) throw new ApiError("unauthorized", await unknownKeyMessage(secret, c.var.deps.config));
    if (found.suspendedAt !== null) throw new ApiError("tenant_suspended", "this tenant is suspended: its API keys are refused until the operator reinstates it");
    const { key, quotas } = found;
    c.set("tenant", { tenantId: key.tenantId, keyId: key.id, quotas });
    // Touch last_used_at at most once a minute to keep reads cheap.
    const t = now();
    if (!key.lastUsedAt || t - key.lastUsedAt > 60) {
      await db.update(apiKeys).set({ lastUsedAt: t }).where(eq(apiKeys.id, key.id));
    }
    await next();
  };
}

function tokenGuard(name: "admin" | "runner", pick: (c: Parameters<MiddlewareHandler<AppEnv>>[0]) => string | undefined): MiddlewareHandler<AppEnv> {
  return async function guard(c, next) {
    const expected = pick(c);
    if (!expected) {
      throw new ApiError("not_found", `the ${name} API is disabled; set TUNESERVE_${name.toUpperCase()}_TOKEN to enable it`);
    }
    const got = bearer(c.req.header("Authorization"), `${name} token`);
    if (!(await secretsEqual(got, expected))) throw new ApiError("unauthorized", `invalid ${name} token`);
    await next();
  };
}

/** Admin routes exist only when TUNESERVE_ADMIN_TOKEN is set. */
export const adminAuth = () => tokenGuard("admin", (c) => c.var.deps.config.TUNESERVE_ADMIN_TOKEN);

/** Runner routes take a separate token that can only lease and report. */
export const runnerAuth = () => tokenGuard("runner", (c) => c.var.deps.config.TUNESERVE_RUNNER_TOKEN);
