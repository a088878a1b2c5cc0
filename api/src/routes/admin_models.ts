// Admin: register base models (a blob prefix or a local Hugging Face folder) and list them.
import { createRoute, z } from "@hono/zod-openapi";
import { asc, eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { baseModels } from "../db/schema.js";
import { ApiError, notFound } from "../errors.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { describeModel } from "../lib/model-files.js";
import { modelSummarySchema } from "../lib/model-shapes.js";

export const baseModelSchema = z
  .object({
    id: z.string(),
    object: z.literal("base_model"),
    source: z.string(),
    config: modelSummarySchema,
    created_at: z.number().int(),
  })
  .openapi("BaseModel");
const registerBody = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "use 1–64 lowercase letters, digits, '.', '_' or '-'")
    .openapi({ example: "tuneserve-micro" }),
  source: z.string().min(1).openapi({ description: "'blob:<prefix>/' in the blob store, or an absolute local folder (Node only)" }),
});

export type BaseModel = z.infer<typeof baseModelSchema>;

export const toBaseModel = (m: typeof baseModels.$inferSelect): BaseModel => ({
  id: m.id,
  object: "base_model",
  source: m.source,
  config: JSON.parse(m.config),
  created_at: m.createdAt,
});

const register = createRoute({
  method: "post",
  path: "/admin/v1/models",
  security: bearerSecurity,
  request: jsonBody(registerBody),
  responses: { 201: json(baseModelSchema, "the registered model"), 409: json(z.any(), "the id is taken"), ...errorResponses },
});
const list = createRoute({
  method: "get",
  path: "/admin/v1/models",
  security: bearerSecurity,
  responses: { 200: json(z.object({ object: z.literal("list"), data: z.array(baseModelSchema) }), "all base models"), ...errorResponses },
});
const get = createRoute({
  method: "get",
  path: "/admin/v1/models/{model_id}",
  security: bearerSecurity,
  request: { params: z.object({ model_id: z.string().max(64) }) },
  responses: { 200: json(baseModelSchema, "the model"), ...errorResponses },
});

export function registerAdminModels(app: Router): void {
  app.openapi(register, async (c) => {
    const deps = c.var.deps;
    const { id, source } = c.req.valid("json");
    if (await deps.db.query.baseModels.findFirst({ where: eq(baseModels.id, id) })) {
      throw new ApiError("conflict", `base model '${id}' is already registered`, "id");
    }
    const summary = await describeModel(deps, source);
    const row = { id, source, config: JSON.stringify(summary), createdAt: deps.now() };
    // The check above is only the early answer: a registration of the same id that raced it past that check
    // (reading config.json takes a while) loses here, with the same 409 instead of a primary-key error.
    const inserted = await deps.db.insert(baseModels).values(row).onConflictDoNothing().returning({ id: baseModels.id });
    if (inserted.length === 0) throw new ApiError("conflict", `base model '${id}' is already registered`, "id");
    return c.json(toBaseModel(row), 201);
  });
  app.openapi(list, async (c) => {
    const rows = await c.var.deps.db.select().from(baseModels).orderBy(asc(baseModels.id));
    return c.json({ object: "list" as const, data: rows.map(toBaseModel) }, 200);
  });
  app.openapi(get, async (c) => {
    const { model_id } = c.req.valid("param");
    const row = await c.var.deps.db.query.baseModels.findFirst({ where: eq(baseModels.id, model_id) });
    if (!row) throw notFound("base model", model_id, "model_id");
    return c.json(toBaseModel(row), 200);
  });
}
