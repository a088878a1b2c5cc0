// Admin: create, list and get tenants. Creating a tenant also issues its first API key (shown once).
import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq, lt } from "drizzle-orm";
import type { Router } from "../app.js";
import { tenants } from "../db/schema.js";
import { notFound } from "../errors.js";
import { issueApiKey } from "../lib/api-keys.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { listEnvelope, listQuery, page } from "../lib/pagination.js";

export const tenantSchema = z
  .object({ id: z.string(), object: z.literal("tenant"), name: z.string(), created_at: z.number().int() })
  .openapi("Tenant");
const createTenantBody = z.object({ name: z.string().trim().min(1).max(200) });
const createdTenantSchema = tenantSchema.extend({ api_key: z.string().openapi({ description: "shown once" }) });

export type Tenant = z.infer<typeof tenantSchema>;

const toTenant = (t: typeof tenants.$inferSelect): Tenant => ({ id: t.id, object: "tenant", name: t.name, created_at: t.createdAt });

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
  request: { query: listQuery },
  responses: { 200: json(listEnvelope(tenantSchema), "tenants, newest first"), ...errorResponses },
});
const getTenant = createRoute({
  method: "get",
  path: "/admin/v1/tenants/{tenant_id}",
  security: bearerSecurity,
  request: { params: z.object({ tenant_id: z.string() }) },
  responses: { 200: json(tenantSchema, "the tenant"), ...errorResponses },
});

export function registerAdminTenants(app: Router): void {
  app.openapi(createTenant, async (c) => {
    const { db, now } = c.var.deps;
    const { name } = c.req.valid("json");
    const row = { id: newId("ten_"), name, createdAt: now() };
    await db.insert(tenants).values(row);
    const { secret } = await issueApiKey(db, row.id, "default", row.createdAt);
    return c.json({ ...toTenant(row), api_key: secret }, 201);
  });
  app.openapi(listTenants, async (c) => {
    const { limit, after } = c.req.valid("query");
    const rows = await c.var.deps.db
      .select()
      .from(tenants)
      .where(after ? lt(tenants.id, after) : undefined)
      .orderBy(desc(tenants.id))
      .limit(limit + 1);
    return c.json(page(rows.map(toTenant), limit), 200);
  });
  app.openapi(getTenant, async (c) => {
    const { tenant_id } = c.req.valid("param");
    const row = await c.var.deps.db.query.tenants.findFirst({ where: eq(tenants.id, tenant_id) });
    if (!row) throw notFound("tenant", tenant_id, "tenant_id");
    return c.json(toTenant(row), 200);
  });
}
