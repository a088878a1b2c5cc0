// Tenant adapters: upload an existing PEFT LoRA adapter (validated against its base model), list, get,
// download its files (streamed or as presigned URLs) and delete.
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import type { Router } from "../app.js";
import { adapterSchema, findTenantAdapter, findTenantModel, toAdapterObject } from "../adapters/models.js";
import { adapterFiles, adapterFileTypes, adapterRow, deleteAdapter, insertUploadedAdapter, withdrawAdapter } from "../adapters/store.js";
import { adapterTextFields, receiveAdapterUpload } from "../adapters/upload.js";
import { uploadFields } from "../adapters/validate.js";
import { blobKeys } from "../blob/port.js";
import { adapters } from "../db/schema.js";
import type { Db } from "../db/client.js";
import { ApiError, notFound } from "../errors.js";
import { idempotencyHeaders } from "../lib/idempotency-keys.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorSchema, json, keyedErrorResponses, replayed, tenantErrorResponses } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";
import { mayReplay, uploadOnce, type UploadKeyRecord } from "../lib/upload-once.js";
import { adapterQuotaOverrun, assertRoomForAdapter } from "../quotas/limits.js";

/** A file part of the form, for the OpenAPI document (the upload is read as a stream: adapters/upload.ts). */
const fileField = (description: string) => z.string().openapi({ type: "string", format: "binary", description });

const uploadBody = adapterTextFields.extend({
  [uploadFields.config]: fileField("adapter_config.json as PEFT's save_pretrained wrote it"),
  [uploadFields.weights]: fileField("adapter_model.safetensors, sent after base_model: it is checked and stored as it streams in"),
});

const adapterId = z.object({ adapter_id: z.string().max(128) });
const fileParams = adapterId.extend({ name: z.enum(adapterFiles) });
const fileLinkSchema = z.object({ name: z.enum(adapterFiles), bytes: z.number().int(), url: z.string(), expires_at: z.number().int() }).openapi("AdapterFileLink");

const list = createRoute({
  method: "get",
  path: "/v1/adapters",
  security: bearerSecurity,
  request: { query: listQueryOf("adp_") },
  responses: { 200: json(listEnvelope(adapterSchema), "the tenant's adapters, newest first"), ...tenantErrorResponses },
});
const get = createRoute({
  method: "get",
  path: "/v1/adapters/{adapter_id}",
  security: bearerSecurity,
  request: { params: adapterId },
  responses: { 200: json(adapterSchema, "the adapter"), ...tenantErrorResponses },
});
const links = createRoute({
  method: "get",
  path: "/v1/adapters/{adapter_id}/files",
  security: bearerSecurity,
  request: { params: adapterId },
  responses: { 200: json(z.object({ object: z.literal("list"), data: z.array(fileLinkSchema) }), "presigned GET URLs of both files"), ...tenantErrorResponses },
});
const download = createRoute({
  method: "get",
  path: "/v1/adapters/{adapter_id}/files/{name}",
  security: bearerSecurity,
  request: { params: fileParams },
  responses: { 200: { content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } }, description: "the file's bytes" }, ...tenantErrorResponses },
});
const remove = createRoute({
  method: "delete",
  path: "/v1/adapters/{adapter_id}",
  security: bearerSecurity,
  request: { params: adapterId },
  responses: { 200: json(z.object({ id: z.string(), object: z.literal("adapter"), deleted: z.literal(true) }), "the adapter and its files are gone"), ...tenantErrorResponses },
});

/**
 * The error for an adapter whose file is not in the blob store: a delete that ran since the row was read (404,
 * as if the request had come after it), or, with the row still there, a store that lost the file (500).
 */
async function missingFile(db: Db, tenantId: string, adapterId: string, name: string): Promise<ApiError> {
  if (!(await findTenantAdapter(db, tenantId, adapterId))) return notFound("adapter", adapterId, "adapter_id");
  return new ApiError("internal_error", `adapter ${adapterId} is missing its file ${name}`);
}

export function registerAdapters(app: Router): void {
  // The upload is a plain handler documented by hand: a zod-validated form would buffer the whole body first.
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/adapters",
    security: bearerSecurity,
    request: { headers: idempotencyHeaders, body: { content: { "multipart/form-data": { schema: uploadBody } }, required: true } },
    responses: {
      201: replayed(json(adapterSchema, "the stored adapter; call it by its `model`")),
      413: json(errorSchema, "the upload is larger than TUNESERVE_MAX_ADAPTER_BYTES"),
      415: json(errorSchema, "not multipart/form-data"),
      ...tenantErrorResponses,
      ...keyedErrorResponses,
    },
  });
  app.post("/v1/adapters", async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const tenantId = c.var.tenant.tenantId;
    const type = c.req.header("Content-Type") ?? "";
    if (!type.toLowerCase().startsWith("multipart/form-data")) {
      throw new ApiError("unsupported_media_type", `send multipart/form-data with fields base_model, ${uploadFields.config} and ${uploadFields.weights}; got '${type || "no Content-Type"}'`);
    }
    // A tenant at its max_adapters is refused before any of the upload is stored (up to
    // TUNESERVE_MAX_ADAPTER_BYTES), unless its key may replay an upload that took the last slot.
    if (!(await mayReplay(c))) await assertRoomForAdapter(c.var.deps, c.var.tenant);
    const id = newId("adp_");
    const prefix = blobKeys.adapter(tenantId, id);
    const up = await receiveAdapterUpload({
      body: c.req.raw.body,
      contentType: type,
      contentLength: c.req.header("Content-Length"),
      blobs,
      prefix,
      maxBytes: config.TUNESERVE_MAX_ADAPTER_BYTES,
      maxRank: config.TUNESERVE_MAX_LORA_RANK,
      findBase: async (name) => {
        const m = await findTenantModel(db, tenantId, name);
        return m?.kind === "base" ? { id: m.base.id, summary: m.summary } : null;
      },
    });
    // The files are stored before the Idempotency-Key can be judged (its fingerprint hashes them as they
    // stream): unless this attempt keeps them as a new adapter, they go (a replay answers with the first's).
    let kept = false;
    try {
      const fingerprint = () => ({ base_model: up.baseModel, suffix: up.suffix ?? null, config: up.configSha256, weights: up.weightsSha256 });
      const store = async (key: UploadKeyRecord) => {
        // Checked again now the key is claimed: a replay skipped the early check, a new upload may have raced in.
        await assertRoomForAdapter(c.var.deps, c.var.tenant);
        const row = adapterRow(id, { tenantId, baseModel: up.base.id, suffix: up.suffix, facts: up.facts, sizeBytes: up.sizeBytes, weightsSha256: up.weightsSha256, now: now() });
        // Not kept when a retry took the key over while this attempt stalled: the files go (below), the retry's stay.
        if (!(await insertUploadedAdapter(db, blobs, row, key))) throw key.takenOverError();
        // The row owns its files from here: they go only with it (withdrawAdapter), so that a failure below never
        // leaves a row listed and counted without them.
        kept = true;
        try {
          // Uploads racing each other all passed the check above: the ones past the limit withdraw.
          const over = await adapterQuotaOverrun(c.var.deps, c.var.tenant, row.id);
          if (over) throw over;
        } catch (e) {
          // Failing, it leaves the row and the key's answer together: the retry replays this adapter.
          await withdrawAdapter(db, blobs, row, key.withdraw()).catch(() => {});
          throw e;
        }
        return row;
      };
      const { value, replayed } = await uploadOnce(c, "adapter", fingerprint, store, (found) => findTenantAdapter(db, tenantId, found));
      return c.json(toAdapterObject(value), 201, replayed ? { "Idempotent-Replayed": "true" } : {});
    } finally {
      if (!kept) await blobs.deletePrefix(prefix).catch(() => {});
    }
  });

  app.openapi(list, async (c) => {
    const { limit, after } = c.req.valid("query");
    const rows = await c.var.deps.db
      .select()
      .from(adapters)
      .where(and(eq(adapters.tenantId, c.var.tenant.tenantId), after ? lt(adapters.id, after) : undefined))
      .orderBy(desc(adapters.id))
      .limit(limit + 1);
    return c.json(page(rows.map(toAdapterObject), limit), 200);
  });

  app.openapi(get, async (c) => {
    const { adapter_id } = c.req.valid("param");
    const row = await findTenantAdapter(c.var.deps.db, c.var.tenant.tenantId, adapter_id);
    if (!row) throw notFound("adapter", adapter_id, "adapter_id");
    return c.json(toAdapterObject(row), 200);
  });

  app.openapi(links, async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const { adapter_id } = c.req.valid("param");
    const row = await findTenantAdapter(db, c.var.tenant.tenantId, adapter_id);
    if (!row) throw notFound("adapter", adapter_id, "adapter_id");
    const ttl = config.TUNESERVE_PRESIGN_SECONDS;
    const data = await Promise.all(
      adapterFiles.map(async (name) => {
        const key = row.blobPrefix + name;
        const head = await blobs.head(key);
        if (!head) throw await missingFile(db, c.var.tenant.tenantId, adapter_id, name);
        return { name, bytes: head.size, url: await blobs.presign(key, "GET", ttl), expires_at: now() + ttl };
      }),
    );
    return c.json({ object: "list" as const, data }, 200);
  });

  app.openapi(download, async (c) => {
    const { db, blobs } = c.var.deps;
    const { adapter_id, name } = c.req.valid("param");
    const row = await findTenantAdapter(db, c.var.tenant.tenantId, adapter_id);
    if (!row) throw notFound("adapter", adapter_id, "adapter_id");
    const obj = await blobs.get(row.blobPrefix + name);
    if (!obj) throw await missingFile(db, c.var.tenant.tenantId, adapter_id, name);
    return new Response(obj.body, {
      status: 200,
      headers: { "Content-Type": adapterFileTypes[name], "Content-Length": String(obj.size), "Content-Disposition": `attachment; filename="${name}"` },
    }) as never;
  });

  app.openapi(remove, async (c) => {
    const { db, blobs } = c.var.deps;
    const { adapter_id } = c.req.valid("param");
    if (!(await deleteAdapter(db, blobs, c.var.tenant.tenantId, adapter_id, c.var.deps.now()))) throw notFound("adapter", adapter_id, "adapter_id");
    return c.json({ id: adapter_id, object: "adapter" as const, deleted: true as const }, 200);
  });
}
