// Serves presigned links of the local blob store: GET downloads, PUT uploads (at most TUNESERVE_MAX_BLOB_BYTES),
// each checked against its signature.
import type { Hono } from "hono";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { capBytes } from "../lib/byte-cap.js";
import { secretsEqual } from "../lib/hash.js";
import { ifMatchAllows, quotedEtag } from "./etag.js";
import { signBlobUrl } from "./signed-links.js";

export function registerBlobRoute(app: Hono<AppEnv>): void {
  app.on(["GET", "PUT"], "/blobs/*", async (c) => {
    const { blobs, blobSigningSecret, config, now } = c.var.deps;
    if (!blobSigningSecret) throw new ApiError("not_found", "blob links are served only when the API signs them itself (local or R2 blob store)");
    const url = new URL(c.req.url);
    let key: string;
    try {
      key = url.pathname.slice("/blobs/".length).split("/").map(decodeURIComponent).join("/");
    } catch {
      // The API encodes every link it signs: this one was cut or altered.
      throw new ApiError("invalid_request", "the blob link's path is not valid percent-encoding; use the link exactly as the API gave it");
    }
    const method = url.searchParams.get("method") ?? "";
    const expires = Number(url.searchParams.get("expires"));
    const signature = url.searchParams.get("signature") ?? "";
    const expected = await signBlobUrl(blobSigningSecret, method, key, expires);
    if (method !== c.req.method || !(await secretsEqual(signature, expected))) {
      throw new ApiError("forbidden", "the blob link's signature does not match this method and key");
    }
    if (!Number.isFinite(expires) || expires < now()) throw new ApiError("forbidden", "the blob link has expired; request a new one");
    if (c.req.method === "PUT") {
      if (!c.req.raw.body) throw new ApiError("invalid_request", "PUT needs a body");
      const max = config.TUNESERVE_MAX_BLOB_BYTES;
      const tooLarge = () => new ApiError("payload_too_large", `the upload is larger than ${max} bytes, the most a /blobs/ link takes (TUNESERVE_MAX_BLOB_BYTES); raise it on the API`);
      if (Number(c.req.header("Content-Length")) > max) throw tooLarge();
      // The declared length may be absent or false: the body is also cut once it passes the limit, and the
      // store, its stream failing, publishes nothing (fs: its temporary file is removed; R2: the upload aborted).
      const capped = capBytes(c.req.raw.body, max, tooLarge);
      try {
        const { size } = await blobs.put(key, capped.stream);
        return c.json({ key, size }, 200);
      } catch (e) {
        throw capped.cut() ?? e;
      }
    }
    const obj = await blobs.get(key);
    if (!obj) throw new ApiError("not_found", `object '${key}' not found`);
    // If-Match, as S3 and R2 answer it: a runner downloading a base model asks for the version the API listed, so
    // that a file replaced since is refused rather than mixed into a copy of the older files.
    const ifMatch = c.req.header("if-match");
    if (ifMatch !== undefined && !ifMatchAllows(ifMatch, obj.version)) {
      await obj.body.cancel();
      throw new ApiError("precondition_failed", `object '${key}' was replaced since it was listed (If-Match ${ifMatch}, now ${quotedEtag(obj.version!)}); list it again for its current version`);
    }
    const headers: Record<string, string> = { "Content-Length": String(obj.size), "Content-Type": obj.contentType ?? "application/octet-stream" };
    if (obj.version !== undefined) headers.ETag = quotedEtag(obj.version);
    return new Response(obj.body, { headers });
  });
}
