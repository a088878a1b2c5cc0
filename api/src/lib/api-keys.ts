// Issuing API keys: the secret is returned once and only its SHA-256 is stored.
import { apiKeys } from "../db/schema.js";
import type { Db } from "../db/client.js";
import { sha256Hex } from "./hash.js";
import { newId, newSecret } from "./ids.js";

export const keyPrefixLength = 12;

export async function issueApiKey(db: Db, tenantId: string, name: string, now: number) {
  const secret = newSecret("ts_");
  const row = {
    id: newId("key_"),
    tenantId,
    name,
    prefix: secret.slice(0, keyPrefixLength),
    hash: await sha256Hex(secret),
    createdAt: now,
  };
  await db.insert(apiKeys).values(row);
  return { row, secret };
}
