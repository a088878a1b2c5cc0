// SHA-256 and HMAC helpers on WebCrypto, so the same code runs on Workers and Node.
const encoder = new TextEncoder();

export function toHex(buf: ArrayBuffer | Uint8Array): string {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

export async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

/** The key secretsEqual MACs both sides with: random, made on first use (Workers allow no random values at global scope). */
let compareKey: CryptoKey | undefined;

/**
 * Whether two secrets (bearer tokens, link signatures) are equal, in time that depends on neither where they
 * differ nor how long they are: both sides are HMAC'd under a random per-process key into 32 bytes, and all 32
 * are compared. A length check up front would tell a caller how long the token is; the random key means a
 * caller cannot choose inputs whose MACs share a prefix with the secret's.
 */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  compareKey ??= await crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const key = compareKey;
  const [x, y] = await Promise.all([a, b].map(async (s) => new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(s)))));
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}
