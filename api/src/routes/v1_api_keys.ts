// Tenant API keys: create (secret shown once), list (prefix only), revoke (not the last active one: a
// tenant without a key could not create another; the admin API issues one for a tenant that needs it).
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, isNull, lt, sql } from "drizzle-orm";
import type { Router } from "../app.js";
import { apiKeys } from "../db/schema.js";
import { ApiError, notFound } from "../errors.js";
import { issueApiKey } from "../lib/api-keys.js";
import { bearerSecurity, errorSchema, json, tenantErrorResponses } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";

export const apiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal("api_key"),
    name: z.string(),
    prefix: z.string().openapi({ description: "the first characters of the secret" }),
    created_at: z.number().int(),
    last_used_at: z.number().int().nullable(),
    revoked_at: z.number().int().nullable(),
  })
  .openapi("ApiKey");
// Strict: a field this API lacks (say scopes or expires_at) must not quietly give a full, lasting key instead.
export const createKeyBody = z.object({ name: z.string().trim().min(1).max(200).default("unnamed") }).strict();
export const createdKeySchema = apiKeySchema.extend({ key: z.string().openapi({ description: "the secret; shown only in this response" }) });

export type ApiKey = z.infer<typeof apiKeySchema>;

export const toApiKey = (k: typeof apiKeys.$inferSelect): ApiKey => ({
  id: k.id,
  object: "api_key",
  name: k.name,
  prefix: k.prefix,
  created_at: k.createdAt,
  last_used_at: k.lastUsedAt,
  revoked_at: k.revokedAt,
});

const keyId = z.object({ key_id: z.string().max(128) });

const createKey = createRoute({
  method: "post",
  path: "/v1/api_keys",
  security: bearerSecurity,
  request: { body: { content: { "application/json": { schema: createKeyBody } }, required: false } },
  responses: { 201: json(createdKeySchema, "the new key; its secret is never shown again"), ...tenantErrorResponses },
});
const listKeys = createRoute({
  method: "get",
  path: "/v1/api_keys",
  security: bearerSecurity,
  request: { query: listQueryOf("key_") },
  responses: { 200: json(listEnvelope(apiKeySchema), "the tenant's keys, newest first"), ...tenantErrorResponses },
});
const revokeKey = createRoute({
  method: "delete",
  path: "/v1/api_keys/{key_id}",
  security: bearerSecurity,
  request: { params: keyId },
  responses: { 200: json(apiKeySchema, "the revoked key"), 409: json(errorSchema, "the tenant's last active key: create another first"), ...tenantErrorResponses },
});

export function registerApiKeys(app: Router): void {
  app.openapi(createKey, async (c) => {
    const { db, now } = c.var.deps;
    // The body is optional: without one the validator hands over {} (any JSON Content-Type spelling is validated).
    const name = c.req.valid("json").name ?? "unnamed";
    const { row, secret } = await issueApiKey(db, c.var.tenant.tenantId, name, now());
    return c.json({ ...toApiKey({ ...row, lastUsedAt: null, revokedAt: null }), key: secret }, 201);
  });
  app.openapi(listKeys, async (c) => {
    const { limit, after } = c.req.valid("query");
    const tenant = c.var.tenant.tenantId;
    const rows = await c.var.deps.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, tenant), after ? lt(apiKeys.id, after) : undefined))
      .orderBy(desc(apiKeys.id))
      .limit(limit + 1);
    return c.json(page(rows.map(toApiKey), limit), 200);
  });
  app.openapi(revokeKey, async (c) => {
    const { db, now } = c.var.deps;
    const { key_id } = c.req.valid("param");
    const where = and(eq(apiKeys.id, key_id), eq(apiKeys.tenantId, c.var.tenant.tenantId));
    const row = await db.query.apiKeys.findFirst({ where });
    if (!row) throw notFound("API key", key_id, "key_id");
    if (!row.revokedAt) {
      // One statement, so two revokes racing cannot both leave the tenant without a key.
      const others = sql`(select count(*) from ${apiKeys} k where k.tenant_id = ${row.tenantId} and k.revoked_at is null and k.id <> ${row.id})`;
      const [done] = await db.update(apiKeys).set({ revokedAt: now() }).where(and(where, isNull(apiKeys.revokedAt), sql`${others} > 0`)).returning({ id: apiKeys.id });
      if (!done && !(await db.query.apiKeys.findFirst({ where }))?.revokedAt) {
        throw new ApiError("conflict", `${key_id} is the tenant's last active API key; create another (POST /v1/api_keys) before revoking it`, "key_id");
      }
    }
    const updated = await db.query.apiKeys.findFirst({ where });
    return c.json(toApiKey(updated!), 200);
  });
}
