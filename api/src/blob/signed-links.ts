// HMAC-signed links to the API's own /blobs/ route (blob/route.ts): the presigned URLs of stores that cannot
// presign themselves (the local folder on Node, R2 bindings in the Worker). Web Crypto only, so both runtimes share it.
import { hmacHex } from "../lib/hash.js";

/** The signature /blobs/ checks: one method, one key, one expiry (unix seconds). */
export function signBlobUrl(secret: string, method: string, key: string, expires: number): Promise<string> {
  return hmacHex(secret, `${method}\n${key}\n${expires}`);
}

/** Builds `<publicUrl>/blobs/<key>?method=&expires=&signature=`, valid until now + expiresInSeconds. */
export async function signedBlobLink(
  opts: { publicUrl: string; secret: string; nowSeconds?: number },
  key: string,
  method: "GET" | "PUT",
  expiresInSeconds: number,
): Promise<string> {
  const expires = (opts.nowSeconds ?? Math.floor(Date.now() / 1000)) + expiresInSeconds;
  const signature = await signBlobUrl(opts.secret, method, key, expires);
  const url = new URL(`/blobs/${key.split("/").map(encodeURIComponent).join("/")}`, opts.publicUrl);
  url.searchParams.set("method", method);
  url.searchParams.set("expires", String(expires));
  url.searchParams.set("signature", signature);
  return url.toString();
}
