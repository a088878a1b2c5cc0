// The presigned URLs a lease hands to a runner: GET for exactly this job's inputs (training and validation
// files, base model, latest checkpoint) and PUT for exactly its outputs. No tenant-wide keys leave the API.
import { z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { blobKeys, blobPrefixOf, type BlobInfo } from "../blob/port.js";
import { checkpoints } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { sha256Hex } from "../lib/hash.js";
import { OLDEST_CHECKPOINT_FORMAT } from "./checkpoint-formats.js";
import type { FileRow } from "./files.js";
import { adapterFiles } from "./protocol.js";
import type { JobRow } from "./shape.js";

const fileUrls = z.record(z.string(), z.string()).openapi({ description: "file name → presigned URL" });

/** A base model's files as a runner fetches them: in a lease, and from GET /internal/v1/models/{id}/files for serving. */
export const baseModelUrlsSchema = z
  .object({
    id: z.string(),
    source: z.string(),
    files: fileUrls.nullable().openapi({ description: "null when the source is a local folder the runner reads itself (embedded default)" }),
    revision: z
      .string()
      .nullable()
      .optional()
      .openapi({ description: "the identity of the files listed (a hash of each one's name, size and ETag): a new one means the files were replaced, and a runner's copy is stale; null for a local folder; absent from older APIs" }),
    objects: z
      .record(z.string(), z.object({ size: z.number().int(), version: z.string().nullable() }))
      .optional()
      .openapi({
        description:
          "each file's size and store version (its ETag) as listed, the revision's parts: a runner downloads each file with If-Match of its version and checks the answer's ETag and size, so that a file replaced while it downloads is refused rather than mixed into a copy of the revision; absent for a local folder and from older APIs",
      }),
  })
  .openapi("BaseModelUrls");
export type BaseModelUrls = z.infer<typeof baseModelUrlsSchema>;

/** A training or validation file of a lease: its API id and name, what the runner's messages about it name. */
const leaseFileSchema = z.object({
  id: z.string(),
  filename: z
    .string()
    .optional()
    .openapi({ description: "the file's name as uploaded (the files table's): always sent by this API; absent from older ones, so a runner names the file by its id alone" }),
  bytes: z.number().int(),
  lines: z.number().int(),
  format: z.string(),
  url: z.string(),
});

export const leaseUrlsSchema = z
  .object({
    expires_at: z.number().int().openapi({ description: "when these URLs stop working; lease again (or ask for checkpoint uploads) for fresh ones" }),
    training_file: leaseFileSchema,
    validation_file: leaseFileSchema.nullable(),
    base_model: baseModelUrlsSchema,
    checkpoint: z
      .object({
        step: z.number().int(),
        format: z.number().int().optional().openapi({ description: "its format version, one the runner declared it can resume (older APIs leave it out)" }),
        files: fileUrls,
      })
      .nullable()
      .openapi({ description: "the latest checkpoint to resume from" }),
    initial_adapter: z
      .object({ model: z.string(), files: fileUrls })
      .nullable()
      .optional()
      .openapi({ description: "the PEFT adapter of the fine-tuned model the job continues: the LoRA starts from it (null: from zero)" }),
    outputs: z.object({ "adapter_config.json": z.string(), "adapter_model.safetensors": z.string() }).openapi({ description: "PUT the final PEFT adapter here before complete" }),
  })
  .openapi("LeaseUrls");
export type LeaseUrls = z.infer<typeof leaseUrlsSchema>;

/** GET URLs for the named objects under a prefix, keyed by name. */
async function presignFiles(deps: Deps, prefix: string, names: readonly string[]): Promise<Record<string, string>> {
  const ttl = deps.config.TUNESERVE_PRESIGN_SECONDS;
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await deps.blobs.presign(prefix + n, "GET", ttl)] as const)));
}

/** GET URLs for every object under a prefix, keyed by the name relative to it, with the listing they were made from. */
async function presignPrefix(deps: Deps, prefix: string): Promise<{ urls: Record<string, string>; listed: BlobInfo[] }> {
  const urls: Record<string, string> = {};
  const listed: BlobInfo[] = [];
  for await (const o of deps.blobs.list(prefix)) {
    urls[o.key.slice(prefix.length)] = await deps.blobs.presign(o.key, "GET", deps.config.TUNESERVE_PRESIGN_SECONDS);
    listed.push(o);
  }
  return { urls, listed };
}

/**
 * The identity of a set of listed objects: it changes when any is added, removed or written again (its version,
 * the store's ETag), so that a runner holding a copy of a base model re-registered under the same file names
 * knows to fetch it again. Computed from the listing the URLs come from: no extra store calls.
 */
export async function filesRevision(listed: readonly BlobInfo[]): Promise<string> {
  const lines = listed.map((o) => JSON.stringify([o.key, o.size, o.version ?? null])).sort();
  return (await sha256Hex(lines.join("\n"))).slice(0, 32);
}

/** GET URLs of every file of a base model stored under a blob prefix; `files: null` for a local-folder source. */
export async function baseModelUrls(deps: Deps, id: string, source: string): Promise<BaseModelUrls> {
  const prefix = blobPrefixOf(source);
  if (prefix === null) return { id, source, files: null, revision: null };
  const { urls, listed } = await presignPrefix(deps, prefix);
  const objects = Object.fromEntries(listed.map((o) => [o.key.slice(prefix.length), { size: o.size, version: o.version ?? null }]));
  return { id, source, files: urls, revision: await filesRevision(listed), objects };
}

const fileLink = async (deps: Deps, f: FileRow) => ({
  id: f.id,
  filename: f.filename,
  bytes: f.bytes,
  lines: f.lines,
  format: f.format,
  url: await deps.blobs.presign(f.blobKey, "GET", deps.config.TUNESERVE_PRESIGN_SECONDS),
});

/** Fresh PUT URLs for the final adapter files of the job's current attempt (a long job outlives the lease answer's URLs). */
export async function outputUploadUrls(deps: Deps, job: JobRow): Promise<LeaseUrls["outputs"]> {
  const out = blobKeys.jobOutput(job.tenantId, job.id, job.attempt);
  const [configUrl, weightsUrl] = await Promise.all(adapterFiles.map((name) => deps.blobs.presign(out + name, "PUT", deps.config.TUNESERVE_PRESIGN_SECONDS)));
  return { "adapter_config.json": configUrl, "adapter_model.safetensors": weightsUrl };
}

/** Builds the lease answer's URLs for one job. */
export async function leaseUrls(deps: Deps, job: JobRow, files: { training: FileRow; validation: FileRow | null; parent: { modelId: string; blobPrefix: string } | null }, modelSource: string): Promise<LeaseUrls> {
  const ttl = deps.config.TUNESERVE_PRESIGN_SECONDS;
  const latest = await deps.db.query.checkpoints.findFirst({ where: eq(checkpoints.jobId, job.id), orderBy: desc(checkpoints.step) });
  return {
    expires_at: deps.now() + ttl,
    training_file: await fileLink(deps, files.training),
    validation_file: files.validation ? await fileLink(deps, files.validation) : null,
    base_model: await baseModelUrls(deps, job.model, modelSource),
    checkpoint: latest ? { step: latest.step, format: latest.format ?? OLDEST_CHECKPOINT_FORMAT, files: (await presignPrefix(deps, latest.blobPrefix)).urls } : null,
    // Only the PEFT files: a checkpoint's folder also holds its optimizer state.
    initial_adapter: files.parent ? { model: files.parent.modelId, files: await presignFiles(deps, files.parent.blobPrefix, adapterFiles) } : null,
    outputs: await outputUploadUrls(deps, job),
  };
}
