// Runner protocol, inference side: a runner that misses an adapter in its cache asks for presigned GET
// URLs of exactly that adapter's two PEFT files (docs/inference.md), a fine-tuned model's or a job
// checkpoint's (ft:…:ckpt-step-N). Guarded by the runner token.
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { adapterFiles } from "../adapters/store.js";
import { adapters } from "../db/schema.js";
import { notFound } from "../errors.js";
import { findCheckpointModel } from "../jobs/checkpoint-models.js";
import { bearerSecurity, errorResponses, json } from "../lib/openapi.js";

export const adapterFilesAnswerSchema = z
  .object({
    model: z.string(),
    base_model: z.string(),
    expires_at: z.number().int(),
    files: z.array(z.object({ name: z.enum(adapterFiles), bytes: z.number().int(), url: z.string() })),
  })
  .openapi("RunnerAdapterFiles");

const files = createRoute({
  method: "get",
  path: "/internal/v1/adapters/{model_id}/files",
  security: bearerSecurity,
  request: { params: z.object({ model_id: z.string().min(1).max(256) }) },
  responses: { 200: json(adapterFilesAnswerSchema, "presigned GET URLs of the adapter's files"), ...errorResponses },
});

export function registerInternalAdapters(app: Router): void {
  app.openapi(files, async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const { model_id } = c.req.valid("param");
    const row = (await db.query.adapters.findFirst({ where: eq(adapters.modelId, model_id) })) ?? (await findCheckpointModel(db, model_id));
    if (!row) throw notFound("adapter", model_id, "model_id");
    const ttl = config.TUNESERVE_PRESIGN_SECONDS;
    const out = await Promise.all(
      adapterFiles.map(async (name) => {
        const key = row.blobPrefix + name;
        const head = await blobs.head(key);
        if (!head) throw notFound("adapter file", `${model_id}/${name}`, "model_id");
        return { name, bytes: head.size, url: await blobs.presign(key, "GET", ttl) };
      }),
    );
    return c.json({ model: row.modelId, base_model: row.baseModel, expires_at: now() + ttl, files: out }, 200);
  });
}
