// Runner protocol, inference side: presigned GET URLs for one base model's files outside any lease, so a runner
// can serve a blob-prefix model it holds no training job for (docs/runner-protocol.md). Guarded by the runner token.
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { baseModels } from "../db/schema.js";
import { ApiError, notFound } from "../errors.js";
import { baseModelUrls, baseModelUrlsSchema } from "../jobs/urls.js";
import { bearerSecurity, errorResponses, json } from "../lib/openapi.js";

export const baseModelFilesAnswerSchema = baseModelUrlsSchema
  .extend({ expires_at: z.number().int().openapi({ description: "when the URLs stop working; ask again for fresh ones" }) })
  .openapi("RunnerBaseModelFiles");
export type BaseModelFilesAnswer = z.infer<typeof baseModelFilesAnswerSchema>;

const files = createRoute({
  method: "get",
  path: "/internal/v1/models/{model_id}/files",
  security: bearerSecurity,
  request: { params: z.object({ model_id: z.string().min(1).max(64) }) },
  responses: { 200: json(baseModelFilesAnswerSchema, "presigned GET URLs of the base model's files (the lease's urls.base_model)"), ...errorResponses },
});

export function registerInternalModels(app: Router): void {
  app.openapi(files, async (c) => {
    const deps = c.var.deps;
    const { model_id } = c.req.valid("param");
    const row = await deps.db.query.baseModels.findFirst({ where: eq(baseModels.id, model_id) });
    if (!row) throw notFound("base model", model_id, "model_id");
    // Taken before signing, so no URL expires before the time the answer promises.
    const expiresAt = deps.now() + deps.config.TUNESERVE_PRESIGN_SECONDS;
    const urls = await baseModelUrls(deps, row.id, row.source);
    if (urls.files && Object.keys(urls.files).length === 0) {
      throw new ApiError("not_found", `base model '${model_id}' has no files under ${row.source}; upload config.json, the weights and the tokenizer there`, "model_id");
    }
    return c.json({ ...urls, expires_at: expiresAt }, 200);
  });
}
