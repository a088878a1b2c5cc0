// The Node database: a local SQLite file through libsql, migrated at open.
import { createClient } from "@libsql/client";
import { drizzle } from "drizzle-orm/libsql";
import type { Db } from "./client.js";
import { applyMigrations } from "./migrate.js";
import { schema } from "./schema.js";

/** Opens (creating if needed) the SQLite file and applies pending migrations. */
export async function openLibsql(path: string): Promise<{ db: Db; close(): void }> {
  const client = createClient({ url: `file:${path}` });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute("PRAGMA busy_timeout = 5000");
  // With WAL, NORMAL keeps the file consistent across process crashes and skips an fsync per commit
  // (~10 ms each here, measured on usage writes); only an OS crash can lose the newest commits.
  await client.execute("PRAGMA synchronous = NORMAL");
  await client.execute("PRAGMA foreign_keys = ON");
  await applyMigrations(client);
  const db = drizzle(client, { schema }) as unknown as Db;
  return { db, close: () => client.close() };
}
