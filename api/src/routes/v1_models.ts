// OpenAI-style models: every base model plus the tenant's fine-tuned ones; get one; delete a fine-tuned one.
import { createRoute, z } from "@hono/zod-openapi";
import { asc, desc, eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { modelSchema, toModelObject } from "../adapters/models.js";
import { checkpointModelObject, findCallableModel, looksLikeCheckpoint, modelNotFound } from "../jobs/checkpoint-models.js";
import { deleteAdapter } from "../adapters/store.js";
import { adapters, baseModels } from "../db/schema.js";
import { ApiError, notFound } from "../errors.js";
import { bearerSecurity, json, tenantErrorResponses } from "../lib/openapi.js";

// Fine-tuned names contain ':' (ft:<base>:<tenant>:<suffix>:<id>); the router hands them over decoded.
const modelParam = z.object({ model: z.string().min(1).max(256).openapi({ example: "ft:micro-llama:ten_0abc::k3j5h2g8d9s1" }) });

const list = createRoute({
  method: "get",
  path: "/v1/models",
  security: bearerSecurity,
  responses: { 200: json(z.object({ object: z.literal("list"), data: z.array(modelSchema) }), "base models, then the tenant's fine-tuned models newest first"), ...tenantErrorResponses },
});
const get = createRoute({
  method: "get",
  path: "/v1/models/{model}",
  security: bearerSecurity,
  request: { params: modelParam },
  responses: { 200: json(modelSchema, "the model"), ...tenantErrorResponses },
});
const remove = createRoute({
  method: "delete",
  path: "/v1/models/{model}",
  security: bearerSecurity,
  request: { params: modelParam },
  responses: { 200: json(z.object({ id: z.string(), object: z.literal("model"), deleted: z.literal(true) }), "the fine-tuned model and its adapter files are gone"), ...tenantErrorResponses },
});

export function registerModels(app: Router): void {
  app.openapi(list, async (c) => {
    const db = c.var.deps.db;
    const bases = await db.select().from(baseModels).orderBy(asc(baseModels.id));
    const own = await db.select().from(adapters).where(eq(adapters.tenantId, c.var.tenant.tenantId)).orderBy(desc(adapters.id));
    const data = [...bases.map((base) => toModelObject({ kind: "base", base })), ...own.map((adapter) => toModelObject({ kind: "adapter", adapter }))];
    return c.json({ object: "list" as const, data }, 200);
  });

  app.openapi(get, async (c) => {
    const { model } = c.req.valid("param");
    const found = await findCallableModel(c.var.deps.db, c.var.tenant.tenantId, model);
    if (!found) throw looksLikeCheckpoint(model) ? modelNotFound(model, "") : notFound("model", model, "model");
    return c.json(found.kind === "checkpoint" ? checkpointModelObject(found.checkpoint) : toModelObject(found), 200);
  });

  app.openapi(remove, async (c) => {
    const { db, blobs } = c.var.deps;
    const { model } = c.req.valid("param");
    const found = await findCallableModel(db, c.var.tenant.tenantId, model);
    if (!found) throw looksLikeCheckpoint(model) ? modelNotFound(model, "") : notFound("model", model, "model");
    if (found.kind === "base") {
      throw new ApiError("invalid_request", `'${model}' is a base model and cannot be deleted by a tenant; only fine-tuned models (ft:…) can be deleted`, "model");
    }
    if (found.kind === "checkpoint") {
      throw new ApiError("invalid_request", `'${model}' is a checkpoint of job ${found.checkpoint.jobId}; checkpoints are kept with their job and cannot be deleted on their own`, "model");
    }
    // A concurrent delete may have won between the lookup and here: then it is gone for this caller too.
    if (!(await deleteAdapter(db, blobs, c.var.tenant.tenantId, found.adapter.id, c.var.deps.now()))) throw notFound("model", model, "model");
    return c.json({ id: model, object: "model" as const, deleted: true as const }, 200);
  });
}
