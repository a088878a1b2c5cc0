// Wires the Cloudflare deployment from the Worker's env: D1 through drizzle, blobs in the R2 binding (or S3),
// settings parsed with zod. Only Web APIs here: this module runs inside workerd.
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import type { BlobStore } from "./blob/port.js";
import { R2BlobStore, type R2BucketBinding } from "./blob/r2.js";
import { parseApiConfig } from "./config.js";
import type { Db } from "./db/client.js";
import { schema } from "./db/schema.js";
import type { Deps } from "./deps.js";
import { issueLine } from "./lib/zod-issue.js";

const hasMethods =
  (...names: string[]) =>
  (v: unknown) =>
    typeof v === "object" && v !== null && names.every((n) => typeof (v as Record<string, unknown>)[n] === "function");

/** The bindings and variables of wrangler.toml that the Worker reads besides the ApiConfig settings. */
export const workerEnvSchema = z.object({
  DB: z.custom<object>(hasMethods("prepare", "batch"), 'DB must be a D1 binding: add [[d1_databases]] binding = "DB" to wrangler.toml'),
  BLOBS: z.custom<R2BucketBinding>(hasMethods("put", "get", "list", "createMultipartUpload"), 'BLOBS must be an R2 bucket binding ([[r2_buckets]] binding = "BLOBS")').optional(),
  /** Origin that presigned /blobs/ links point at; unset: the origin of the request being served. */
  TUNESERVE_PUBLIC_URL: z.url("TUNESERVE_PUBLIC_URL must be an absolute URL like https://api.example.com").optional(),
  TUNESERVE_BLOB_SIGNING_SECRET: z.string().min(32, "TUNESERVE_BLOB_SIGNING_SECRET must be at least 32 characters").optional(),
  TUNESERVE_S3_BUCKET: z.string().optional(),
});

export type WorkerEnv = z.infer<typeof workerEnvSchema>;

/** Parses the Worker env, naming the offending binding or variable and the fix. */
export function parseWorkerEnv(env: Record<string, unknown>): WorkerEnv {
  const r = workerEnvSchema.safeParse(env);
  if (!r.success) {
    throw new Error(`invalid binding ${issueLine(r.error.issues[0], "configuration")}`);
  }
  return r.data;
}

/** Builds the Deps of one isolate; `origin` is the request's origin, used when TUNESERVE_PUBLIC_URL is unset. */
export async function createWorkerDeps(env: Record<string, unknown>, origin: string): Promise<Deps> {
  const w = parseWorkerEnv(env);
  const config = parseApiConfig(env);
  const db = drizzle(w.DB as never, { schema }) as unknown as Db;
  const publicUrl = w.TUNESERVE_PUBLIC_URL ?? origin;
  let blobs: BlobStore;
  let blobSigningSecret: string | undefined;
  if (w.BLOBS) {
    blobs = new R2BlobStore({ bucket: w.BLOBS, publicUrl, signingSecret: w.TUNESERVE_BLOB_SIGNING_SECRET });
    blobSigningSecret = w.TUNESERVE_BLOB_SIGNING_SECRET;
  } else if (w.TUNESERVE_S3_BUCKET) {
    // Loaded only when configured: the AWS SDK is the largest part of the bundle and needs nodejs_compat.
    const { S3BlobStore, s3ConfigFromEnv } = await import("./blob/s3.js");
    blobs = new S3BlobStore(s3ConfigFromEnv(stringVars(env)));
  } else {
    throw new Error('no blob store: bind an R2 bucket as BLOBS ([[r2_buckets]] in wrangler.toml) or set TUNESERVE_S3_BUCKET and its TUNESERVE_S3_* settings');
  }
  return { db, blobs, config, now: () => Math.floor(Date.now() / 1000), blobSigningSecret };
}

/** The string-valued entries of env (vars and secrets; bindings are objects). */
function stringVars(env: Record<string, unknown>): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === "string")) as Record<string, string>;
}
