// Training-data files (OpenAI-compatible): multipart upload validated line by line while it streams to the blob
// store, list, get, download and delete. Deleting a file that a queued or running job names is allowed, as in
// OpenAI: a running job has already read its data; a queued one fails when its runner cannot fetch the file.
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, desc, eq, gt, lt } from "drizzle-orm";
import type { Router } from "../app.js";
import { runBatch } from "../db/batch.js";
import type { Db } from "../db/client.js";
import { files } from "../db/schema.js";
import { notFound, type ApiError } from "../errors.js";
import { fileFormats } from "../files/line-shapes.js";
import { fileObjectPurposes, filePurposes, receiveUpload } from "../files/upload.js";
import { idempotencyHeaders } from "../lib/idempotency-keys.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorSchema, json, keyedErrorResponses, replayed, tenantErrorResponses } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";
import { uploadOnce, type UploadKeyRecord } from "../lib/upload-once.js";
import { assertRoomForFile, fileQuotaOverrun } from "../quotas/limits.js";

export const fileSchema = z
  .object({
    id: z.string().openapi({ example: "file-0m1abcd2e000x7k2p9q4r5s6t" }),
    object: z.literal("file"),
    bytes: z.number().int(),
    created_at: z.number().int(),
    filename: z.string(),
    purpose: z.enum(fileObjectPurposes),
    status: z.literal("processed"),
    format: z.enum([...fileFormats, "csv"]).openapi({ description: "the JSONL shape every line has; csv for a job's results file" }),
    lines: z.number().int().openapi({ description: "records in the file (blank lines are not counted; a results file's rows)" }),
    sha256: z.string().openapi({ description: "SHA-256 of the stored bytes, hex" }),
  })
  .openapi("File");
const deletedSchema = z.object({ id: z.string(), object: z.literal("file"), deleted: z.literal(true) }).openapi("DeletedFile");
const uploadForm = z
  .object({
    purpose: z.enum(filePurposes),
    file: z.string().openapi({ type: "string", format: "binary", description: "JSONL: chat {messages}, {prompt, completion}, {text}, or DPO pairs {input, preferred_output, non_preferred_output} per line" }),
  })
  .openapi("FileUpload");

export type FileObject = z.infer<typeof fileSchema>;
export type FileRow = typeof files.$inferSelect;

const toFile = (f: FileRow): FileObject => ({
  id: f.id,
  object: "file",
  bytes: f.bytes,
  created_at: f.createdAt,
  filename: f.filename,
  purpose: f.purpose as FileObject["purpose"],
  status: "processed",
  format: f.format as FileObject["format"],
  lines: f.lines,
  sha256: f.sha256,
});

/** The tenant's file with that id, or null when it does not exist or belongs to another tenant. */
export async function getTenantFile(db: Db, tenantId: string, fileId: string): Promise<FileRow | null> {
  const row = await db.query.files.findFirst({ where: and(eq(files.id, fileId), eq(files.tenantId, tenantId)) });
  return row ?? null;
}

const fileId = z.object({ file_id: z.string().max(128) });

const listFiles = createRoute({
  method: "get",
  path: "/v1/files",
  security: bearerSecurity,
  request: {
    query: listQueryOf("file-").extend({
      purpose: z.enum(fileObjectPurposes).optional(),
      order: z.enum(["asc", "desc"]).default("desc").openapi({ description: "by creation: desc (newest first, the default) or asc; `after` pages on in that order" }),
    }),
  },
  responses: { 200: json(listEnvelope(fileSchema), "the tenant's files, newest first unless order=asc"), ...tenantErrorResponses },
});
const getFile = createRoute({
  method: "get",
  path: "/v1/files/{file_id}",
  security: bearerSecurity,
  request: { params: fileId },
  responses: { 200: json(fileSchema, "the file"), ...tenantErrorResponses },
});
const fileContent = createRoute({
  method: "get",
  path: "/v1/files/{file_id}/content",
  security: bearerSecurity,
  request: { params: fileId },
  responses: {
    200: { content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } }, description: "the stored bytes" },
    ...tenantErrorResponses,
  },
});
const deleteFile = createRoute({
  method: "delete",
  path: "/v1/files/{file_id}",
  security: bearerSecurity,
  request: { params: fileId },
  responses: { 200: json(deletedSchema, "the file and its content are gone"), ...tenantErrorResponses },
});

export function registerFiles(app: Router): void {
  // The upload is a plain handler documented by hand: a zod-validated form would buffer the whole body first.
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/files",
    security: bearerSecurity,
    request: { headers: idempotencyHeaders, body: { content: { "multipart/form-data": { schema: uploadForm } }, required: true } },
    responses: {
      201: replayed(json(fileSchema, "the stored, validated file")),
      ...tenantErrorResponses,
      409: keyedErrorResponses[409],
      429: keyedErrorResponses[429],
      413: { content: { "application/json": { schema: errorSchema } }, description: "larger than TUNESERVE_MAX_FILE_BYTES" },
      415: { content: { "application/json": { schema: errorSchema } }, description: "not multipart/form-data" },
    },
  });
  app.post("/v1/files", async (c) => {
    const { db, blobs, config, now } = c.var.deps;
    const tenantId = c.var.tenant.tenantId;
    const upload = async (key: UploadKeyRecord) => {
      const room = await assertRoomForFile(c.var.deps, c.var.tenant);
      const up = await receiveUpload({
        body: c.req.raw.body,
        contentType: c.req.header("Content-Type"),
        contentLength: c.req.header("Content-Length"),
        tenantId,
        fileId: newId("file-"),
        blobs,
        limits: { maxFileBytes: config.TUNESERVE_MAX_FILE_BYTES, maxLineBytes: config.TUNESERVE_MAX_LINE_BYTES, room },
      });
      const row: FileRow = { ...up, tenantId, createdAt: now() };
      let dropped: unknown[];
      try {
        // With the key's answer, or neither: a retry must not find the key free beside this row. Nor is it kept
        // when a retry took the key over while this upload stalled: the retry's file is the one.
        const dropIfTakenOver = db.delete(files).where(and(eq(files.id, row.id), key.takenOver)).returning({ id: files.id });
        const written = await runBatch(db, [db.insert(files).values(row), ...key.record(row.id), dropIfTakenOver]);
        dropped = written.at(-1) as unknown[];
      } catch (e) {
        await blobs.delete(up.blobKey).catch(() => {});
        throw e;
      }
      if (dropped.length > 0) {
        await blobs.delete(up.blobKey).catch(() => {});
        throw key.takenOverError();
      }
      // The row goes before its blob, so that a file is never listed without its content.
      const withdraw = async () => {
        await runBatch(db, [db.delete(files).where(eq(files.id, row.id)), ...key.withdraw()]);
        await blobs.delete(up.blobKey);
      };
      // Uploads racing each other all passed the check above: the ones past the limit withdraw. A re-check that
      // fails withdraws too: the client's retry with its Idempotency-Key runs again and must not find this file
      // kept (listed, counted against its quotas) beside the one it stores. A withdrawal that fails leaves the row
      // and the key's answer together, so that retry replays this file.
      let over: ApiError | null;
      try {
        over = await fileQuotaOverrun(c.var.deps, c.var.tenant, row.id);
      } catch (e) {
        await withdraw().catch(() => {});
        throw e;
      }
      if (over) {
        await withdraw();
        throw over;
      }
      return row;
    };
    const { value, replayed } = await uploadOnce(c, "file", () => ({}), upload, (id) => getTenantFile(db, tenantId, id));
    return c.json(toFile(value), 201, replayed ? { "Idempotent-Replayed": "true" } : {});
  });

  app.openapi(listFiles, async (c) => {
    const { limit, after, purpose, order } = c.req.valid("query");
    // Ids sort by creation, so `after` pages on in either order.
    const [past, by] = order === "asc" ? [gt, asc] : [lt, desc];
    const rows = await c.var.deps.db
      .select()
      .from(files)
      .where(and(eq(files.tenantId, c.var.tenant.tenantId), after ? past(files.id, after) : undefined, purpose ? eq(files.purpose, purpose) : undefined))
      .orderBy(by(files.id))
      .limit(limit + 1);
    return c.json(page(rows.map(toFile), limit), 200);
  });

  app.openapi(getFile, async (c) => {
    const { file_id } = c.req.valid("param");
    const row = await getTenantFile(c.var.deps.db, c.var.tenant.tenantId, file_id);
    if (!row) throw notFound("file", file_id, "file_id");
    return c.json(toFile(row), 200);
  });

  app.openapi(fileContent, async (c) => {
    const { file_id } = c.req.valid("param");
    const row = await getTenantFile(c.var.deps.db, c.var.tenant.tenantId, file_id);
    if (!row) throw notFound("file", file_id, "file_id");
    const obj = await c.var.deps.blobs.get(row.blobKey);
    if (!obj) throw notFound("content of file", file_id, "file_id");
    const disposition = `attachment; filename*=UTF-8''${encodeURIComponent(row.filename)}`;
    return new Response(obj.body, {
      status: 200,
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(obj.size), "Content-Disposition": disposition },
    }) as never;
  });

  app.openapi(deleteFile, async (c) => {
    const { file_id } = c.req.valid("param");
    const { db, blobs } = c.var.deps;
    // One atomic statement (D1 has no interactive transactions): whoever deletes the row owns the blob cleanup.
    const [row] = await db
      .delete(files)
      .where(and(eq(files.id, file_id), eq(files.tenantId, c.var.tenant.tenantId)))
      .returning();
    if (!row) throw notFound("file", file_id, "file_id");
    await blobs.delete(row.blobKey);
    return c.json({ id: row.id, object: "file" as const, deleted: true as const }, 200);
  });
}
