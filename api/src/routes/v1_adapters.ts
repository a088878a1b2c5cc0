// Tenant adapters: upload an existing PEFT LoRA adapter (validated against its base model), list, get,
// download its files (streamed or as presigned URLs) and delete.
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Router } from "../app.js";
import { adapterSchema, findTenantAdapter, findTenantModel, toAdapterObject } from "../adapters/models.js";
import { adapterFiles, adapterFileTypes, deleteAdapter, saveAdapter, withdrawAdapter } from "../adapters/store.js";
import { uploadFields, validateAdapter } from "../adapters/validate.js";
import { adapters } from "../db/schema.js";
import type { Db } from "../db/client.js";
import type { AppEnv } from "../deps.js";
import { ApiError, notFound } from "../errors.js";
import { sha256Hex } from "../lib/hash.js";
import { idempotencyHeaders } from "../lib/idempotency-keys.js";
import { bearerSecurity, errorSchema, json, keyedErrorResponses, replayed, tenantErrorResponses } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";
import { uploadOnce } from "../lib/upload-once.js";
import { adapterQuotaOverrun, assertRoomForAdapter } from "../quotas/limits.js";
import { takeAdapterUploadSlot } from "../quotas/upload-slots.js";

/** adapter_config.json is a few hundred bytes; anything near this is not a PEFT config. */
const maxConfigBytes = 64 * 1024;
/** Room for the multipart boundaries, part headers and the text fields. */
const multipartOverhead = 64 * 1024;

/** A file part of the form; missing or sent as text (curl's -F without '@'), the error shows how to send it. */
const fileField = (field: string, fileName: string, description: string) =>
  z
    .custom<File>((v) => typeof v === "object" && v !== null && "arrayBuffer" in v, { error: `send ${fileName} as a file part (curl -F ${field}=@${fileName})` })
    .openapi({ type: "string", format: "binary", description });

const uploadBody = z.object({
  base_model: z.string().min(1).openapi({ description: "the registered base model the adapter was trained on", example: "micro-llama" }),
  suffix: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/, "use 1–40 letters, digits, '_', '.' or '-' (no ':')")
    .optional()
    .openapi({ description: "goes into the model name: ft:<base>:<tenant>:<suffix>:<id>" }),
  [uploadFields.config]: fileField(uploadFields.config, "adapter_config.json", "adapter_config.json as PEFT's save_pretrained wrote it"),
  [uploadFields.weights]: fileField(uploadFields.weights, "adapter_model.safetensors", "adapter_model.safetensors"),
});

const adapterId = z.object({ adapter_id: z.string().max(128) });
const fileParams = adapterId.extend({ name: z.enum(adapterFiles) });
const fileLinkSchema = z.object({ name: z.enum(adapterFiles), bytes: z.number().int(), url: z.string(), expires_at: z.number().int() }).openapi("AdapterFileLink");

/** Refuses non-multipart bodies and oversized uploads before the form is buffered, and waits for an upload slot (quotas/upload-slots.ts). */
function uploadGuard(): MiddlewareHandler<AppEnv> {
  return async function uploadGuard(c, next) {
    const type = c.req.header("Content-Type") ?? "";
    if (!type.toLowerCase().startsWith("multipart/form-data")) {
      throw new ApiError("unsupported_media_type", `send multipart/form-data with fields base_model, ${uploadFields.config} and ${uploadFields.weights}; got '${type || "no Content-Type"}'`);
    }
    const max = c.var.deps.config.TUNESERVE_MAX_ADAPTER_BYTES;
    const limit = bodyLimit({
      maxSize: max + maxConfigBytes + multipartOverhead,
      onError: () => {
        throw new ApiError("payload_too_large", `adapter upload exceeds ${max} bytes (TUNESERVE_MAX_ADAPTER_BYTES)`);
      },
    });
    // Held until the answer: the body is buffered whole from here on (by the limit without a Content-Length,
    // by the form parser in any case).
    const release = await takeAdapterUploadSlot(c.var.deps);
    try {
      return await limit(c, next);
    } finally {
      release();
    }
  };
}

const upload = createRoute({
  method: "post",
  path: "/v1/adapters",
  security: bearerSecurity,
  middleware: [uploadGuard()] as const,
  request: { headers: idempotencyHeaders, body: { content: { "multipart/form-data": { schema: uploadBody } }, required: true } },
  responses: {
    201: replayed(json(adapterSchema, "the stored adapter; call it by its `model`")),
    413: json(errorSchema, "the upload is larger than TUNESERVE_MAX_ADAPTER_BYTES"),
    ...tenantErrorResponses,
    ...keyedErrorResponses,
  },
});
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
  app.openapi(upload, async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const tenantId = c.var.tenant.tenantId;
    const form = c.req.valid("form");
    const cfg = form[uploadFields.config];
    const weights = form[uploadFields.weights];
    if (cfg.size > maxConfigBytes) throw new ApiError("invalid_file", `adapter_config.json is ${cfg.size} bytes; a PEFT config is under ${maxConfigBytes}`, uploadFields.config);
    if (cfg.size + weights.size > config.TUNESERVE_MAX_ADAPTER_BYTES) {
      throw new ApiError("payload_too_large", `adapter files total ${cfg.size + weights.size} bytes, over the ${config.TUNESERVE_MAX_ADAPTER_BYTES}-byte limit (TUNESERVE_MAX_ADAPTER_BYTES)`);
    }
    const base = await findTenantModel(db, tenantId, form.base_model);
    if (!base || base.kind !== "base") throw new ApiError("not_found", `base_model '${form.base_model}' is not a registered base model; GET /v1/models lists them`, "base_model");
    const configBytes = new Uint8Array(await cfg.arrayBuffer());
    const weightsBytes = new Uint8Array(await weights.arrayBuffer());
    const weightsSha256 = await sha256Hex(weightsBytes);
    const fingerprint = async () => ({ base_model: form.base_model, suffix: form.suffix ?? null, config: await sha256Hex(configBytes), weights: weightsSha256 });
    const store = async () => {
      const facts = validateAdapter(configBytes, weightsBytes, base.summary, config.TUNESERVE_MAX_LORA_RANK);
      await assertRoomForAdapter(c.var.deps, c.var.tenant);
      const row = await saveAdapter(db, blobs, { tenantId, baseModel: base.base.id, suffix: form.suffix, facts, configBytes, weightsBytes, weightsSha256, now: now() });
      // Uploads racing each other all passed the check above: the ones past the limit withdraw.
      const over = await adapterQuotaOverrun(c.var.deps, c.var.tenant, row.id);
      if (over) {
        await withdrawAdapter(db, blobs, row);
        throw over;
      }
      return { id: row.id, value: row };
    };
    const { value, replayed } = await uploadOnce(c, "adapter", fingerprint, store, (id) => findTenantAdapter(db, tenantId, id));
    return c.json(toAdapterObject(value), 201, replayed ? { "Idempotent-Replayed": "true" } : {});
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
