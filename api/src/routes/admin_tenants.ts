// Admin: create, list, get tenants, set their quotas and Stripe customer, and suspend or reinstate them.
// Creating a tenant also issues its first API key (shown once); an admin may issue it another (a tenant
// whose keys are lost or leaked).
import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq, lt, sql } from "drizzle-orm";
import type { Router } from "../app.js";
import type { ApiConfig } from "../config.js";
import { tenants } from "../db/schema.js";
import { notFound } from "../errors.js";
import { issueApiKey } from "../lib/api-keys.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";
import { createKeyBody, createdKeySchema, toApiKey } from "./v1_api_keys.js";
import { limitsOf, limitsSchema, type QuotaOverrides } from "../quotas/limits.js";

const ownLimitsSchema = z
  .object({ max_active_jobs: z.number().int().nullable(), max_adapters: z.number().int().nullable(), monthly_tokens: z.number().int().nullable(), requests_per_minute: z.number().int().nullable() })
  .openapi("TenantOwnLimits", { description: "the limits set for this tenant; null: the deployment's setting (send these back to PATCH to keep them)" });
export const tenantSchema = z
  .object({
    id: z.string(),
    object: z.literal("tenant"),
    name: z.string(),
    created_at: z.number().int(),
    limits: limitsSchema,
    own_limits: ownLimitsSchema,
    stripe_customer_id: z.string().nullable().openapi({ description: "the Stripe customer its usage is billed to (GET /admin/v1/usage/stripe-meter-events)" }),
    suspended_at: z.number().int().nullable().openapi({ description: "when it was suspended (its keys answer 403 tenant_suspended, its queued jobs wait); null while active" }),
  })
  .openapi("Tenant");
/** Each limit: a number for this tenant, or null for the deployment's setting (TUNESERVE_MAX_ACTIVE_JOBS, …). */
const limitsInput = z
  .object({
    max_active_jobs: z.number().int().min(0).max(1_000_000).nullish(),
    max_adapters: z.number().int().min(0).max(1_000_000_000).nullish(),
    monthly_tokens: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish().openapi({ description: "0: unlimited" }),
    requests_per_minute: z.number().int().min(0).max(1_000_000_000).nullish().openapi({ description: "0: unlimited" }),
  })
  .strict();
const stripeCustomerId = z.string().regex(/^cus_[A-Za-z0-9]{1,64}$/, "a Stripe customer id looks like cus_…").nullish();
const createTenantBody = z.object({ name: z.string().trim().min(1).max(200), limits: limitsInput.nullish(), stripe_customer_id: stripeCustomerId }).strict();
const updateTenantBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    limits: limitsInput.nullish(),
    stripe_customer_id: stripeCustomerId,
    suspended: z.boolean().optional().openapi({ description: "true suspends the tenant (again: keeps the first time), false reinstates it" }),
  })
  .strict();
const createdTenantSchema = tenantSchema.extend({ api_key: z.string().openapi({ description: "shown once" }) });

export type Tenant = z.infer<typeof tenantSchema>;

const toTenant = (t: typeof tenants.$inferSelect, config: ApiConfig): Tenant => ({
  id: t.id,
  object: "tenant",
  name: t.name,
  created_at: t.createdAt,
  limits: limitsOf(t, config),
  own_limits: { max_active_jobs: t.maxActiveJobs, max_adapters: t.maxAdapters, monthly_tokens: t.monthlyTokens, requests_per_minute: t.requestsPerMinute },
  stripe_customer_id: t.stripeCustomerId,
  suspended_at: t.suspendedAt,
});

/**
 * The columns a limits body sets: a given key (null included) replaces the stored value, an absent one keeps
 * it; `limits: null` puts every limit back to the deployment's setting.
 */
function limitColumns(l: z.infer<typeof limitsInput> | null | undefined): Partial<QuotaOverrides> {
  if (l === null) return { maxActiveJobs: null, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null };
  if (!l) return {};
  const out: Partial<QuotaOverrides> = {};
  if (l.max_active_jobs !== undefined) out.maxActiveJobs = l.max_active_jobs;
  if (l.max_adapters !== undefined) out.maxAdapters = l.max_adapters;
  if (l.monthly_tokens !== undefined) out.monthlyTokens = l.monthly_tokens;
  if (l.requests_per_minute !== undefined) out.requestsPerMinute = l.requests_per_minute;
  return out;
}

const createTenant = createRoute({
  method: "post",
  path: "/admin/v1/tenants",
  security: bearerSecurity,
  request: jsonBody(createTenantBody),
  responses: { 201: json(createdTenantSchema, "the tenant and its first API key"), ...errorResponses },
});
const listTenants = createRoute({
  method: "get",
  path: "/admin/v1/tenants",
  security: bearerSecurity,
  request: { query: listQueryOf("ten_") },
  responses: { 200: json(listEnvelope(tenantSchema), "tenants, newest first"), ...errorResponses },
});
const updateTenant = createRoute({
  method: "patch",
  path: "/admin/v1/tenants/{tenant_id}",
  security: bearerSecurity,
  request: { params: z.object({ tenant_id: z.string().max(128) }), ...jsonBody(updateTenantBody) },
  responses: { 200: json(tenantSchema, "the tenant as updated"), ...errorResponses },
});
const issueKey = createRoute({
  method: "post",
  path: "/admin/v1/tenants/{tenant_id}/api_keys",
  security: bearerSecurity,
  request: { params: z.object({ tenant_id: z.string().max(128) }), body: { content: { "application/json": { schema: createKeyBody } }, required: false } },
  responses: { 201: json(createdKeySchema, "the tenant's new key; its secret is never shown again"), ...errorResponses },
});
const getTenant = createRoute({
  method: "get",
  path: "/admin/v1/tenants/{tenant_id}",
  security: bearerSecurity,
  request: { params: z.object({ tenant_id: z.string().max(128) }) },
  responses: { 200: json(tenantSchema, "the tenant"), ...errorResponses },
});

export function registerAdminTenants(app: Router): void {
  app.openapi(createTenant, async (c) => {
    const { db, now } = c.var.deps;
    const { name, limits, stripe_customer_id } = c.req.valid("json");
    const row = { id: newId("ten_"), name, createdAt: now(), maxActiveJobs: null, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null, stripeCustomerId: stripe_customer_id ?? null, suspendedAt: null, ...limitColumns(limits) };
    await db.insert(tenants).values(row);
    const { secret } = await issueApiKey(db, row.id, "default", row.createdAt);
    return c.json({ ...toTenant(row, c.var.deps.config), api_key: secret }, 201);
  });
  app.openapi(issueKey, async (c) => {
    const { db, now } = c.var.deps;
    const { tenant_id } = c.req.valid("param");
    // The body is optional: without one the validator hands over {} (any JSON Content-Type spelling is validated).
    const name = c.req.valid("json").name ?? "unnamed";
    if (!(await db.query.tenants.findFirst({ where: eq(tenants.id, tenant_id) }))) throw notFound("tenant", tenant_id, "tenant_id");
    const { row, secret } = await issueApiKey(db, tenant_id, name, now());
    return c.json({ ...toApiKey({ ...row, lastUsedAt: null, revokedAt: null }), key: secret }, 201);
  });
  app.openapi(listTenants, async (c) => {
    const { limit, after } = c.req.valid("query");
    const rows = await c.var.deps.db
      .select()
      .from(tenants)
      .where(after ? lt(tenants.id, after) : undefined)
      .orderBy(desc(tenants.id))
      .limit(limit + 1);
    return c.json(page(rows.map((t) => toTenant(t, c.var.deps.config)), limit), 200);
  });
  app.openapi(getTenant, async (c) => {
    const { tenant_id } = c.req.valid("param");
    const row = await c.var.deps.db.query.tenants.findFirst({ where: eq(tenants.id, tenant_id) });
    if (!row) throw notFound("tenant", tenant_id, "tenant_id");
    return c.json(toTenant(row, c.var.deps.config), 200);
  });
  app.openapi(updateTenant, async (c) => {
    const { tenant_id } = c.req.valid("param");
    const { name, limits, stripe_customer_id, suspended } = c.req.valid("json");
    const { db, now } = c.var.deps;
    const set = {
      ...(name === undefined ? {} : { name }),
      ...(stripe_customer_id === undefined ? {} : { stripeCustomerId: stripe_customer_id }),
      ...limitColumns(limits),
      ...(suspended === undefined ? {} : { suspendedAt: suspended ? sql`coalesce(${tenants.suspendedAt}, ${now()})` : null }),
    };
    const [row] = Object.keys(set).length > 0 ? await db.update(tenants).set(set).where(eq(tenants.id, tenant_id)).returning() : [await db.query.tenants.findFirst({ where: eq(tenants.id, tenant_id) })];
    if (!row) throw notFound("tenant", tenant_id, "tenant_id");
    return c.json(toTenant(row, c.var.deps.config), 200);
  });
}
