// The S3 blob store: AWS S3, Cloudflare R2 and MinIO (endpoint + path-style) behind the BlobStore port.
// Runs on Node and in Workers (no node: imports; the SDK's browser build uses fetch, and lib-storage bundles the
// npm "buffer"/"stream-browserify" polyfills, so nodejs_compat is optional). Two Worker needs, checked with
// wrangler 4.86 + workerd against s3rver: give credentials explicitly (no default credential chain there), and
// alias "@aws-sdk/xml-builder" in wrangler.toml to a shim re-exporting its dist-es XmlNode, XmlText and the
// pure-JS dist-es/xml-parser.js: the browser build parses XML with DOMParser, which workerd lacks
// (aws/aws-sdk-js-v3#7375), so every list, multipart and error response would throw.
import { AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { z } from "zod";
import type { BlobBody, BlobInfo, BlobObject, BlobStore } from "./port.js";
import { issueLine } from "../lib/zod-issue.js";

export interface S3BlobStoreConfig {
  bucket: string;
  region: string;
  /** Custom endpoint (R2: https://<account>.r2.cloudflarestorage.com, MinIO: http://host:9000); unset for AWS. */
  endpoint?: string;
  forcePathStyle: boolean;
  /** Unset: the SDK's default credential chain (environment, profile, instance role; Node only). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Key prefix inside the bucket ("" or ending in "/"), so several deployments can share one bucket. */
  prefix: string;
  /** Multipart part size in bytes (S3 requires ≥ 5 MiB for all parts but the last). */
  partSize?: number;
  /** Parts uploaded at once per stream. */
  queueSize?: number;
  /** Keys per ListObjectsV2 page and per DeleteObjects batch (S3 caps both at 1000). */
  listPageSize?: number;
  /** Unix milliseconds used to date presigned URLs; injected so tests can age links without sleeping. */
  now?: () => number;
}

const MIB = 1024 * 1024;
/** SigV4 presigned URLs live at most 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

const envSchema = z
  .object({
    TUNESERVE_S3_BUCKET: z.string().min(3, "TUNESERVE_S3_BUCKET must name a bucket (at least 3 characters)"),
    TUNESERVE_S3_REGION: z.string().min(1).optional(),
    TUNESERVE_S3_ENDPOINT: z.url("TUNESERVE_S3_ENDPOINT must be a URL like https://<account>.r2.cloudflarestorage.com").optional(),
    TUNESERVE_S3_FORCE_PATH_STYLE: z.enum(["true", "false"], "TUNESERVE_S3_FORCE_PATH_STYLE must be 'true' or 'false'").optional(),
    TUNESERVE_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
    TUNESERVE_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    TUNESERVE_S3_PREFIX: z.string().optional(),
  })
  .refine((e) => !e.TUNESERVE_S3_ACCESS_KEY_ID === !e.TUNESERVE_S3_SECRET_ACCESS_KEY, {
    message: "set both TUNESERVE_S3_ACCESS_KEY_ID and TUNESERVE_S3_SECRET_ACCESS_KEY, or neither to use the SDK's default credentials",
    path: ["TUNESERVE_S3_ACCESS_KEY_ID"],
  });

/** Reads the S3 settings from the environment (Worker bindings or process.env), naming the offending variable. */
export function s3ConfigFromEnv(env: Record<string, string | undefined>): S3BlobStoreConfig {
  // Empty strings count as unset (a blank line in a .env file should not break startup).
  const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith("TUNESERVE_S3_") && v !== undefined && v !== ""));
  const r = envSchema.safeParse(present);
  if (!r.success) {
    throw new Error(`invalid setting ${issueLine(r.error.issues[0], "configuration")}`);
  }
  const e = r.data;
  const isR2 = e.TUNESERVE_S3_ENDPOINT ? new URL(e.TUNESERVE_S3_ENDPOINT).hostname.endsWith(".r2.cloudflarestorage.com") : false;
  return {
    bucket: e.TUNESERVE_S3_BUCKET,
    region: e.TUNESERVE_S3_REGION ?? (isR2 ? "auto" : "us-east-1"),
    endpoint: e.TUNESERVE_S3_ENDPOINT,
    // Custom endpoints (MinIO, s3rver, R2) are addressed path-style unless told otherwise.
    forcePathStyle: e.TUNESERVE_S3_FORCE_PATH_STYLE ? e.TUNESERVE_S3_FORCE_PATH_STYLE === "true" : e.TUNESERVE_S3_ENDPOINT !== undefined,
    credentials: e.TUNESERVE_S3_ACCESS_KEY_ID ? { accessKeyId: e.TUNESERVE_S3_ACCESS_KEY_ID, secretAccessKey: e.TUNESERVE_S3_SECRET_ACCESS_KEY! } : undefined,
    prefix: normalizePrefix(e.TUNESERVE_S3_PREFIX ?? ""),
  };
}

function normalizePrefix(p: string): string {
  const trimmed = p.replace(/^\/+|\/+$/g, "");
  return trimmed ? `${trimmed}/` : "";
}

/**
 * Refuses keys a URL parser would rewrite: "." and ".." segments are normalized away by fetch (WHATWG URL),
 * so "a/../../x" would address an object outside the prefix (or another bucket, path-style).
 */
function checkKey(key: string): void {
  // eslint-disable-next-line no-control-regex
  if (!key || key.startsWith("/") || /[\u0000-\u001f\u007f]/.test(key) || key.split("/").some((s) => s === "." || s === "..")) {
    throw new Error(`invalid blob key '${key}': use a relative key without '.'/'..' segments, a leading '/' or control characters`);
  }
}

/** A missing object (not a missing bucket: that is a configuration error and must surface). */
function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (err?.name === "NoSuchBucket") return false;
  return err?.$metadata?.httpStatusCode === 404 || err?.name === "NotFound" || err?.name === "NoSuchKey";
}

/** Passes a stream through while counting its bytes (Upload does not report the object size). */
function counted(stream: ReadableStream<Uint8Array>): { body: ReadableStream<Uint8Array>; size: () => number } {
  let n = 0;
  const t = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      n += chunk.byteLength;
      ctl.enqueue(chunk);
    },
  });
  return { body: stream.pipeThrough(t), size: () => n };
}

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly pageSize: number;
  private readonly now: () => number;

  constructor(private readonly config: S3BlobStoreConfig) {
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.credentials,
      // Since SDK 3.729 the default (WHEN_SUPPORTED) adds CRC32 checksums to every upload and even puts the CRC32
      // of an empty body into presigned PUT URLs (x-amz-checksum-crc32=AAAAAA==), so S3 would refuse any real
      // upload through them; S3-compatible servers (R2, older MinIO) also differ in which checksum headers they
      // accept. Checksums are therefore sent only where the API requires them (DeleteObjects).
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    this.prefix = normalizePrefix(config.prefix);
    this.partSize = config.partSize ?? 8 * MIB;
    if (this.partSize < 5 * MIB) throw new Error(`S3BlobStore: partSize ${this.partSize} must be ≥ 5 MiB (S3's smallest multipart part)`);
    this.queueSize = config.queueSize ?? 2;
    this.pageSize = Math.min(config.listPageSize ?? 1000, 1000);
    if (!(this.pageSize >= 1)) throw new Error(`S3BlobStore: listPageSize ${config.listPageSize} must be 1–1000`);
    this.now = config.now ?? Date.now;
  }

  private fullKey(key: string): string {
    checkKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: BlobBody, opts: { contentType?: string } = {}): Promise<{ size: number }> {
    const Key = this.fullKey(key);
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const source = bytes instanceof Uint8Array ? { body: bytes, size: () => bytes.byteLength } : counted(bytes);
    // Upload sends one PutObject for bodies under one part and a multipart upload otherwise, buffering at most
    // queueSize parts. A failed multipart upload is aborted here rather than by lib-storage, whose own abort
    // replaces the upload's error with the abort's when the abort fails (s3rver has no AbortMultipartUpload).
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.config.bucket, Key, Body: source.body, ContentType: opts.contentType },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (e) {
      if (upload.uploadId) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.config.bucket, Key, UploadId: upload.uploadId })).catch((abortError: unknown) => {
          // Orphaned parts stay billed until a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them.
          if (e instanceof Error && e.cause === undefined) e.cause = abortError;
        });
      }
      throw e;
    }
    return { size: source.size() };
  }

  async get(key: string): Promise<BlobObject | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key) }));
      if (!r.Body) throw new Error(`S3 GetObject '${key}' returned no body`);
      return { body: r.Body.transformToWebStream() as ReadableStream<Uint8Array>, size: r.ContentLength ?? 0, contentType: r.ContentType, version: r.ETag };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key) }));
      return { size: r.ContentLength ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async copy(from: string, to: string): Promise<{ size: number } | null> {
    // x-amz-copy-source is the URL-encoded "bucket/key"; the copy keeps the source's content type.
    const source = `${this.config.bucket}/${this.fullKey(from).split("/").map(encodeURIComponent).join("/")}`;
    try {
      await this.client.send(new CopyObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(to), CopySource: source }));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
    // CopyObject answers no size: the copy's is read back, so what is measured is what was stored.
    const stored = await this.head(to);
    if (!stored) throw new Error(`S3 CopyObject '${from}' → '${to}': the copy is not there`);
    return stored;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key) }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    // Each listed page (≤ 1000 keys) becomes one DeleteObjects batch. Continuation tokens point past the last
    // listed key, so deleting a page before fetching the next one does not skip objects.
    for await (const page of this.pages(prefix)) {
      if (page.length === 0) continue;
      const r = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.config.bucket, Delete: { Objects: page.map((o) => ({ Key: this.prefix + o.key })), Quiet: true } }),
      );
      if (r.Errors?.length) {
        const e = r.Errors[0];
        throw new Error(`S3 DeleteObjects failed for ${r.Errors.length} of ${page.length} keys under '${prefix}', first '${e.Key}': ${e.Code} ${e.Message}`);
      }
      n += page.length;
    }
    return n;
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    for await (const page of this.pages(prefix)) yield* page;
  }

  /** ListObjectsV2 pages under a prefix, keys relative to the store prefix. */
  private async *pages(prefix: string): AsyncIterable<BlobInfo[]> {
    if (prefix) checkKey(prefix);
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: this.prefix + prefix, MaxKeys: this.pageSize, ContinuationToken: token }),
      );
      yield (r.Contents ?? []).filter((o) => o.Key !== undefined).map((o) => ({ key: o.Key!.slice(this.prefix.length), size: o.Size ?? 0, version: o.ETag }));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async presign(key: string, method: "GET" | "PUT", expiresInSeconds: number): Promise<string> {
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
      throw new Error(`presign '${key}': expiresInSeconds=${expiresInSeconds} must be an integer 1–${MAX_PRESIGN_SECONDS} (SigV4 allows at most 7 days)`);
    }
    const input = { Bucket: this.config.bucket, Key: this.fullKey(key) };
    const command = method === "GET" ? new GetObjectCommand(input) : new PutObjectCommand(input);
    return getSignedUrl(this.client, command, { expiresIn: expiresInSeconds, signingDate: new Date(this.now()) });
  }
}
