// The blob store of the Cloudflare Worker, on an R2 bucket binding. R2 bindings cannot presign, so presigned
// URLs are HMAC-signed links to the Worker's own /blobs/ route, exactly like the local store's.
import { ApiError } from "../errors.js";
import type { BlobBody, BlobInfo, BlobObject, BlobStore } from "./port.js";
import { signedBlobLink } from "./signed-links.js";

type HttpMetadata = { contentType?: string };

/** The part of the Workers `R2Bucket` binding this store uses; the real binding satisfies it as is. */
export interface R2BucketBinding {
  put(key: string, value: ReadableStream | ArrayBufferView | string, options?: { httpMetadata?: HttpMetadata }): Promise<{ size: number } | null>;
  get(key: string): Promise<{ body: ReadableStream; size: number; etag?: string; httpMetadata?: HttpMetadata } | null>;
  head(key: string): Promise<{ size: number } | null>;
  delete(keys: string | string[]): Promise<void>;
  list(options: { prefix?: string; cursor?: string; limit?: number }): Promise<{ objects: { key: string; size: number; etag?: string }[]; truncated: boolean; cursor?: string }>;
  createMultipartUpload(key: string, options?: { httpMetadata?: HttpMetadata }): Promise<R2Upload>;
}

interface R2Upload {
  uploadPart(partNumber: number, value: ArrayBufferView): Promise<{ partNumber: number; etag: string }>;
  complete(parts: { partNumber: number; etag: string }[]): Promise<unknown>;
  abort(): Promise<void>;
}

export interface R2BlobStoreOptions {
  bucket: R2BucketBinding;
  /** Base URL of the Worker that serves /blobs/ (for presigned links). */
  publicUrl: string;
  /** Signs /blobs/ links; without it presign answers 503 naming the setting. */
  signingSecret?: string;
  /**
   * Part size of multipart uploads. R2 wants every part but the last ≥ 5 MiB and all of one size, so
   * streams are re-chunked to exactly this size; one part is held in memory at a time.
   */
  partBytes?: number;
  /** Objects per list call (R2's maximum is 1000). */
  listPageSize?: number;
}

const MiB = 1024 * 1024;

export class R2BlobStore implements BlobStore {
  private readonly bucket: R2BucketBinding;
  private readonly partBytes: number;
  private readonly listPageSize: number;

  constructor(private readonly opts: R2BlobStoreOptions) {
    this.bucket = opts.bucket;
    this.partBytes = opts.partBytes ?? 8 * MiB;
    this.listPageSize = opts.listPageSize ?? 1000;
    if (!Number.isInteger(this.partBytes) || this.partBytes < 1) throw new Error(`R2BlobStore: partBytes=${opts.partBytes} must be a positive integer (R2 needs ≥ 5 MiB)`);
    if (!Number.isInteger(this.listPageSize) || this.listPageSize < 1 || this.listPageSize > 1000) {
      throw new Error(`R2BlobStore: listPageSize=${opts.listPageSize} must be an integer 1–1000`);
    }
  }

  async put(key: string, body: BlobBody, opts?: { contentType?: string }): Promise<{ size: number }> {
    checkKey(key);
    const httpMetadata = opts?.contentType ? { contentType: opts.contentType } : undefined;
    if (typeof body === "string" || body instanceof Uint8Array) {
      const obj = await this.bucket.put(key, body, { httpMetadata });
      return { size: obj?.size ?? 0 };
    }
    return this.putStream(key, body, httpMetadata);
  }

  /**
   * R2's put needs a stream of known length, which request bodies and piped uploads are not. The first part
   * is buffered: a stream that ends within it becomes one plain put; a longer one a multipart upload.
   */
  private async putStream(key: string, stream: ReadableStream<Uint8Array>, httpMetadata: HttpMetadata | undefined): Promise<{ size: number }> {
    const parts = fixedParts(stream, this.partBytes);
    const first = await parts.next();
    const second = first.done ? first : await parts.next();
    if (second.done) {
      const bytes = first.done ? new Uint8Array(0) : first.value;
      const obj = await this.bucket.put(key, bytes, { httpMetadata });
      return { size: obj?.size ?? bytes.byteLength };
    }
    const upload = await this.bucket.createMultipartUpload(key, { httpMetadata });
    try {
      const done: { partNumber: number; etag: string }[] = [];
      let size = 0;
      const send = async (bytes: Uint8Array) => {
        done.push(await upload.uploadPart(done.length + 1, bytes));
        size += bytes.byteLength;
      };
      await send(first.value as Uint8Array);
      await send(second.value);
      for (let p = await parts.next(); !p.done; p = await parts.next()) await send(p.value);
      await upload.complete(done);
      return { size };
    } catch (e) {
      await parts.return(undefined);
      await upload.abort().catch(() => undefined);
      throw e;
    }
  }

  async get(key: string): Promise<BlobObject | null> {
    checkKey(key);
    const obj = await this.bucket.get(key);
    if (!obj) return null;
    return { body: obj.body as ReadableStream<Uint8Array>, size: obj.size, contentType: obj.httpMetadata?.contentType, version: obj.etag };
  }

  async head(key: string): Promise<{ size: number } | null> {
    checkKey(key);
    const obj = await this.bucket.head(key);
    return obj ? { size: obj.size } : null;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.bucket.delete(key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    // List from the start each round instead of following a cursor past keys that were just deleted.
    let n = 0;
    for (;;) {
      const page = await this.bucket.list({ prefix, limit: this.listPageSize });
      if (page.objects.length === 0) return n;
      await this.bucket.delete(page.objects.map((o) => o.key));
      n += page.objects.length;
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix, cursor, limit: this.listPageSize });
      for (const o of page.objects) yield { key: o.key, size: o.size, version: o.etag };
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }

  async presign(key: string, method: "GET" | "PUT", expiresInSeconds: number): Promise<string> {
    checkKey(key);
    const secret = this.opts.signingSecret;
    if (!secret) {
      throw new ApiError("unavailable", "blob links need TUNESERVE_BLOB_SIGNING_SECRET; set it with `wrangler secret put TUNESERVE_BLOB_SIGNING_SECRET`");
    }
    return signedBlobLink({ publicUrl: this.opts.publicUrl, secret }, key, method, expiresInSeconds);
  }
}

function checkKey(key: string): void {
  if (!key || key.includes("\0") || new TextEncoder().encode(key).byteLength > 1024) {
    throw new Error(`invalid blob key '${key.slice(0, 80)}': keys must be 1–1024 bytes without NUL`);
  }
}

/** Re-chunks a byte stream into parts of exactly `size` bytes (the last may be shorter); cancels the source if stopped early. */
async function* fixedParts(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = stream.getReader();
  let finished = false;
  let buf = new Uint8Array(size);
  let filled = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let off = 0; off < value.byteLength; ) {
        const n = Math.min(size - filled, value.byteLength - off);
        buf.set(value.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === size) {
          yield buf;
          buf = new Uint8Array(size);
          filled = 0;
        }
      }
    }
    finished = true;
    if (filled > 0) yield buf.subarray(0, filled);
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
