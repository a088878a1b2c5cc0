// Identifiers: a prefix plus a time-ordered random body, so sorting by id sorts by creation (cursor pagination).
const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

// Ids need uniqueness, not secrecy: their random bytes come from a pool refilled 4 KiB at a time, as one
// crypto.getRandomValues call per id cost more than the rest of newId (secrets below draw their own).
let pool = new Uint8Array(0);
let used = 0;

function randomChars(n: number): string {
  if (used + n > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(4096));
    used = 0;
  }
  let out = "";
  for (let i = used; i < used + n; i++) out += alphabet[pool[i] % 36];
  used += n;
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
