// Admin: prices per usage kind, for one base model or as the kind's default (usage/prices.ts). Tenants see
// their usage priced with them in GET /v1/usage.
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { baseModels, prices } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { usageKinds } from "../usage/record.js";
import { baseOf, type PriceRow } from "../usage/prices.js";

const priceSchema = z
  .object({
    object: z.literal("price"),
    kind: z.enum(usageKinds),
    model: z.string().nullable().openapi({ description: "the base model it prices (its fine-tuned models too); null: every model without its own price" }),
    usd_per_million: z.number().openapi({ description: "US dollars per million units: tokens, or byte-hours for storage_byte_hours" }),
    updated_at: z.number().int(),
  })
  .openapi("Price");
const setPriceBody = z
  .object({
    kind: z.enum(usageKinds),
    model: z.string().max(256).nullish().openapi({ description: "a base model id; omit or null for the kind's default" }),
    usd_per_million: z.number().min(0).max(1e9),
  })
  .strict();
const priceKey = z.object({
  kind: z.enum(usageKinds),
  model: z.string().max(256).optional().openapi({ description: "omit for the kind's default" }),
});

const list = createRoute({
  method: "get",
  path: "/admin/v1/prices",
  security: bearerSecurity,
  responses: { 200: json(z.object({ object: z.literal("list"), data: z.array(priceSchema) }), "every price, by kind and model"), ...errorResponses },
});
const set = createRoute({
  method: "put",
  path: "/admin/v1/prices",
  security: bearerSecurity,
  request: jsonBody(setPriceBody),
  responses: { 200: json(priceSchema, "the price as stored (it replaces the one for the same kind and model)"), ...errorResponses },
});
const remove = createRoute({
  method: "delete",
  path: "/admin/v1/prices",
  security: bearerSecurity,
  request: { query: priceKey },
  responses: { 200: json(priceSchema.extend({ deleted: z.literal(true) }), "the price removed"), ...errorResponses },
});

const toPrice = (p: PriceRow) => ({ object: "price" as const, kind: p.kind as (typeof usageKinds)[number], model: p.model || null, usd_per_million: p.usdPerMillion, updated_at: p.updatedAt });

export function registerAdminPrices(app: Router): void {
  app.openapi(list, async (c) => {
    const rows = await c.var.deps.db.select().from(prices).orderBy(asc(prices.kind), asc(prices.model));
    return c.json({ object: "list" as const, data: rows.map(toPrice) }, 200);
  });
  app.openapi(set, async (c) => {
    const { db, now } = c.var.deps;
    const body = c.req.valid("json");
    const model = body.model ?? "";
    if (model.startsWith("ft:")) throw new ApiError("invalid_request", `'${model}' is a fine-tuned model; fine-tuned models are priced as their base model ('${baseOf(model)}')`, "model");
    if (model && (await db.select({ id: baseModels.id }).from(baseModels).where(eq(baseModels.id, model))).length === 0) {
      throw new ApiError("invalid_request", `model '${model}' is not a registered base model (GET /admin/v1/models); fine-tuned models are priced as their base model`, "model");
    }
    const row = { kind: body.kind, model, usdPerMillion: body.usd_per_million, updatedAt: now() };
    await db.insert(prices).values(row).onConflictDoUpdate({ target: [prices.kind, prices.model], set: { usdPerMillion: row.usdPerMillion, updatedAt: row.updatedAt } });
    return c.json(toPrice(row), 200);
  });
  app.openapi(remove, async (c) => {
    const { kind, model = "" } = c.req.valid("query");
    const [gone] = await c.var.deps.db.delete(prices).where(and(eq(prices.kind, kind), eq(prices.model, model))).returning();
    if (!gone) throw new ApiError("not_found", `no price for ${kind}${model ? ` on '${model}'` : " by default"}`);
    return c.json({ ...toPrice(gone), deleted: true as const }, 200);
  });
}
