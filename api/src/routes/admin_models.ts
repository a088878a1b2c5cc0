// Admin: register base models (a blob prefix or a local Hugging Face folder) and list them.
import { createRoute, z } from "@hono/zod-openapi";
import { asc, eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { blobPrefixOf, readAll } from "../blob/port.js";
import { baseModels } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError, notFound } from "../errors.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { modelSummarySchema, summarizeConfig } from "../lib/model-shapes.js";
import { readModelText, type ModelFiles } from "../lib/model-text.js";

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

/** The files of a model source (a blob prefix or a local folder), by name. */
function modelFiles(deps: Deps, source: string): ModelFiles {
  const prefix = blobPrefixOf(source);
  if (prefix !== null) {
    return {
      read: async (name) => {
        const obj = await deps.blobs.get(prefix + name);
        return obj ? readAll(obj) : null;
      },
      exists: async (name) => (await deps.blobs.head(prefix + name)) !== null,
    };
  }
  if (!source.startsWith("/")) throw new ApiError("invalid_request", "source must be 'blob:<prefix>/' or an absolute folder path", "source");
  const local = deps.localFiles;
  if (!local) throw new ApiError("invalid_request", "local folders are not available on this deployment; upload the model to the blob store and use 'blob:<prefix>/'", "source");
  const path = (name: string) => `${source.replace(/\/$/, "")}/${name}`;
  return { read: (name) => local.read(path(name)), exists: (name) => local.exists(path(name)) };
}

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
    const files = modelFiles(deps, source);
    const bytes = await files.read("config.json");
    if (!bytes) throw new ApiError("invalid_request", `no config.json found at ${source}`, "source");
    let summary;
    try {
      summary = summarizeConfig(JSON.parse(new TextDecoder().decode(bytes)));
    } catch (e) {
      throw new ApiError("invalid_request", e instanceof Error ? e.message : String(e), "source");
    }
    summary = { ...summary, ...(await readModelText(files)) };
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
