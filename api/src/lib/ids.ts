// Identifiers: a prefix plus a time-ordered random body, so sorting by id sorts by creation (cursor pagination).
const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

function randomChars(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let out = "";
  for (const b of bytes) out += alphabet[b % 36];
  return out;
}

let lastMs = 0;
let seq = 0;

/** `prefix` + 9 base36 chars of milliseconds + a per-ms counter + 12 random chars. */
export function newId(prefix: string, nowMs = Date.now()): string {
  if (nowMs === lastMs) seq++;
  else {
    lastMs = nowMs;
    seq = 0;
  }
  return `${prefix}${nowMs.toString(36).padStart(9, "0")}${seq.toString(36).padStart(3, "0")}${randomChars(12)}`;
}

/** A secret with enough entropy for an API key or token (192 bits). */
export function newSecret(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
