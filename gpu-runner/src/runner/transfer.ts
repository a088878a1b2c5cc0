// Moves files through presigned URLs (local blob store or S3): streamed GETs to disk, PUTs from disk, both
// retried on network errors and 5xx like the protocol calls, since a URL stays valid until it expires.
// Refusals a fresh URL may get past are marked retryable for the caller, who asks the API for new URLs.
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { bareEtag, quotedEtag } from "../../../api/src/blob/etag.js";
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

/** An object as the API listed it: what a download of it must get (null version: the store named none). */
export type ListedObject = { size: number; version: string | null };

/**
 * The object at a URL is no longer the one the API listed: it was written again since (a base model's files
 * replaced while a runner downloads them). Retryable: a fresh listing names the new version.
 */
export class ObjectReplaced extends ApiCallError {
  constructor(listed: ListedObject, now: string) {
    super(`replaced in the blob store since the API listed it (listed ${listed.version === null ? "" : `version ${quotedEtag(listed.version)}, `}${listed.size} bytes; now ${now})`, 412, "precondition_failed", true);
    this.name = "ObjectReplaced";
  }
}

/**
 * GETs `url` into `path` (written to a temporary name, then renamed, so a partial file never looks complete).
 * With `listed`, the download must be that object: it asks for its version (If-Match, which S3, R2 and the API's
 * own store honour), checks the answer's ETag where a store ignores If-Match, and the size it got, and throws
 * ObjectReplaced, leaving nothing at `path`, when any says the object was written again.
 */
export async function downloadTo(url: string, path: string, signal?: AbortSignal, listed?: ListedObject): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.part`;
  let bytes = 0;
  const headers: Record<string, string> = listed?.version ? { "if-match": quotedEtag(listed.version) } : {};
  const res = await withRetries(`GET ${redact(url)}`, () => fetch(url, { signal, headers }), undefined, signal);
  if (listed && res.status === 412) {
    await res.body?.cancel();
    throw new ObjectReplaced(listed, "another version: the store answered 412 to If-Match");
  }
  const etag = res.headers.get("etag");
  if (listed?.version && res.ok && etag !== null && bareEtag(etag) !== bareEtag(listed.version)) {
    await res.body?.cancel();
    throw new ObjectReplaced(listed, `version ${quotedEtag(etag)}`);
  }
  if (!res.ok || !res.body) throw await refused(`GET ${redact(url)}`, res);
  try {
    const counted = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
    counted.on("data", (c: Buffer) => (bytes += c.length));
    await pipeline(counted, createWriteStream(tmp));
  } catch (err) {
    await rm(tmp, { force: true });
    throw new ApiCallError(`GET ${redact(url)}: download broke off after ${bytes} bytes: ${(err as Error).message}`, null, null, true);
  }
  if (listed && bytes !== listed.size) {
    await rm(tmp, { force: true });
    throw new ObjectReplaced(listed, `${bytes} bytes`);
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
