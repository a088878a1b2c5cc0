// The blob store port: datasets, adapters, checkpoints and base models live behind it (S3/R2/MinIO or a local folder).
import { readPartBytes } from "../files/multipart.js";

export type BlobBody = ReadableStream<Uint8Array> | Uint8Array | string;

export interface BlobObject {
  body: ReadableStream<Uint8Array>;
  size: number;
  contentType?: string;
  /** The version (as BlobInfo's) of the bytes `body` streams, so that a reader can tell them from a newer write. */
  version?: string;
}

export interface BlobInfo {
  key: string;
  size: number;
  /**
   * Changes whenever the object is written again under its key (S3's and R2's ETag, the file's inode and
   * modification time locally), so that a copy made from it can tell it is stale; absent when a store cannot say.
   */
  version?: string;
}

export interface BlobStore {
  /** Writes an object; streams are uploaded without buffering the whole body (multipart on S3). */
  put(key: string, body: BlobBody, opts?: { contentType?: string }): Promise<{ size: number }>;
  get(key: string): Promise<BlobObject | null>;
  head(key: string): Promise<{ size: number } | null>;
  delete(key: string): Promise<void>;
  /** Deletes every object under a prefix; returns how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** A URL that lets its holder GET or PUT exactly this key until it expires. */
  presign(key: string, method: "GET" | "PUT", expiresInSeconds: number): Promise<string>;
  /**
   * Copies an object to another key without its bytes passing through the API (S3's CopyObject, a file copy);
   * answers the size of the copy as stored, read back once written, or null when `from` does not exist. Absent
   * where the store has none (the R2 binding): blob/copy.ts streams the object through the API instead.
   */
  copy?(from: string, to: string): Promise<{ size: number } | null>;
}

/** Object key layout (ARCHITECTURE.md §6): one place builds every key. */
export const blobKeys = {
  file: (tenant: string, file: string) => `tenants/${tenant}/files/${file}`,
  adapter: (tenant: string, adapter: string) => `tenants/${tenant}/adapters/${adapter}/`,
  /**
   * Where a runner PUTs a checkpoint's files (its presigned links point here): read once, when the step is recorded.
   * One folder per attempt, as the outputs: a runner that lost its lease cannot write into what the holder records.
   */
  checkpointUpload: (tenant: string, job: string, attempt: number, step: number) => `tenants/${tenant}/jobs/${job}/checkpoints/attempt-${attempt}/${step}/`,
  /** The upload keys of older APIs, shared by every attempt: links signed then may still write there (checkpoint-uploads.ts). */
  legacyCheckpointUpload: (tenant: string, job: string, step: number) => `tenants/${tenant}/jobs/${job}/checkpoints/${step}/`,
  /**
   * A recorded checkpoint's own copy, named by its id: no presigned PUT link points here, so what a lease resumes
   * from and a model call loads is what was checked when it was recorded. Under jobCheckpoints, as the uploads are.
   */
  checkpoint: (tenant: string, job: string, checkpointId: string) => `tenants/${tenant}/jobs/${job}/checkpoints/recorded/${checkpointId}/`,
  jobCheckpoints: (tenant: string, job: string) => `tenants/${tenant}/jobs/${job}/checkpoints/`,
  /** Every attempt's results files. */
  jobAllResults: (tenant: string, job: string) => `tenants/${tenant}/jobs/${job}/results/`,
  /** A completing attempt's results file (one per attempt, so a late attempt cannot overwrite the winner's). */
  jobResults: (tenant: string, job: string, attempt: number, name: string) => `tenants/${tenant}/jobs/${job}/results/attempt-${attempt}/${name}`,
  /** One folder per attempt, so a runner that lost its lease cannot overwrite the files of the one that holds it. */
  jobOutput: (tenant: string, job: string, attempt: number) => `tenants/${tenant}/jobs/${job}/output/attempt-${attempt}/`,
  /** Where a complete has the store copy the weights it checks and publishes (jobs/complete-job.ts): under jobOutputs. */
  jobHandIn: (tenant: string, job: string, id: string) => `tenants/${tenant}/jobs/${job}/output/hand-in/${id}/`,
  /** Every attempt's outputs. */
  jobOutputs: (tenant: string, job: string) => `tenants/${tenant}/jobs/${job}/output/`,
  model: (model: string) => `models/${model}/`,
};

/** The blob prefix of a base model's source `blob:<prefix>/` (its trailing slash ensured), or null for a local folder. */
export function blobPrefixOf(source: string): string | null {
  return source.startsWith("blob:") ? source.slice("blob:".length).replace(/\/?$/, "/") : null;
}

/**
 * Reads a whole small object, refusing one over `maxBytes` with `tooLarge(n)`: by the size the store reports,
 * unread, or, should its body run past that size, as soon as it passes the bound.
 */
export async function readAllUpTo(obj: BlobObject, maxBytes: number, tooLarge: (bytes: number) => Error): Promise<Uint8Array> {
  if (obj.size > maxBytes) {
    await obj.body.cancel().catch(() => {});
    throw tooLarge(obj.size);
  }
  return readPartBytes(obj, maxBytes, tooLarge);
}

/** Reads a whole (small) object into memory. */
export async function readAll(obj: BlobObject): Promise<Uint8Array> {
  const buf = new Uint8Array(await new Response(obj.body).arrayBuffer());
  return buf;
}
