// Moves files through presigned URLs (local blob store or S3): streamed GETs to disk, PUTs from disk, both
// retried on network errors and 5xx like the protocol calls, since a URL stays valid until it expires.
// Refusals a fresh URL may get past are marked retryable for the caller, who asks the API for new URLs.
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ApiCallError, withRetries } from "./api-client.js";

/** Strips the query (the signature) so URLs can appear in logs and errors. */
export const redact = (url: string) => url.replace(/\?.*$/, "?…");

/**
 * Whether a blob store's 4xx to a transfer may pass on another try with a fresh URL: 403 (the link expired:
 * S3's AccessDenied "Request has expired", R2's and the API's own store's 403; a bad signature cannot be told
 * apart from it by status, and a fresh URL is signed anew anyway), and S3's 400 RequestTimeout (the body came
 * too slowly) and ExpiredToken (the signing credentials rotated). Other 4xx (413 too large, a malformed
 * request) are definite. 5xx, 408, 429 and network errors are retried by withRetries already.
 */
export function retryableBlobAnswer(status: number, body: string): boolean {
  return status === 403 || (status === 400 && /<Code>(RequestTimeout|ExpiredToken)<\/Code>/.test(body));
}

/** The error of a transfer the blob store refused, retryable when retryableBlobAnswer says so. */
async function refused(what: string, res: Response): Promise<ApiCallError> {
  const body = await res.text();
  return new ApiCallError(`${what}: ${res.status} ${body.slice(0, 300)}`, res.status, null, retryableBlobAnswer(res.status, body));
}

/** GETs `url` into `path` (written to a temporary name, then renamed, so a partial file never looks complete). */
export async function downloadTo(url: string, path: string, signal?: AbortSignal): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.part`;
  let bytes = 0;
  const res = await withRetries(`GET ${redact(url)}`, () => fetch(url, { signal }), undefined, signal);
  if (!res.ok || !res.body) throw await refused(`GET ${redact(url)}`, res);
  try {
    const counted = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
    counted.on("data", (c: Buffer) => (bytes += c.length));
    await pipeline(counted, createWriteStream(tmp));
  } catch (err) {
    await rm(tmp, { force: true });
    throw new ApiCallError(`GET ${redact(url)}: download broke off after ${bytes} bytes: ${(err as Error).message}`, null, null, true);
  }
  await rename(tmp, path);
  return bytes;
}

/** PUTs the file at `path` to a presigned URL. */
export async function uploadFrom(path: string, url: string, signal?: AbortSignal): Promise<number> {
  // A copy typed Uint8Array<ArrayBuffer>, which fetch's BodyInit takes (a Buffer's pooled backing store is not).
  const data = new Uint8Array(await readFile(path));
  const res = await withRetries(`PUT ${redact(url)}`, () => fetch(url, { method: "PUT", body: data, signal, headers: { "content-type": "application/octet-stream" } }), undefined, signal);
  if (!res.ok) throw await refused(`PUT ${redact(url)}`, res);
  await res.body?.cancel();
  return data.length;
}
