// Applies migrations/*.sql on Node the way `wrangler d1 migrations apply` does on D1: same files, same order,
// same bookkeeping table (d1_migrations), so one database could move between the two.
import type { Client } from "@libsql/client";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export const migrationsDir = new URL("../../../migrations/", import.meta.url).pathname;

/** Applies every migration not yet recorded; returns the names applied now. */
export async function applyMigrations(client: Client, dir = migrationsDir): Promise<string[]> {
  await client.execute(
    "CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
  );
  const done = new Set((await client.execute("SELECT name FROM d1_migrations")).rows.map((r) => String(r.name)));
  const names = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const applied: string[] = [];
  for (const name of names) {
    if (done.has(name)) continue;
    const sql = await readFile(join(dir, name), "utf8");
    const statements = sql.split("--> statement-breakpoint").map((s) => s.trim()).filter(Boolean);
    await client.batch([...statements, { sql: "INSERT INTO d1_migrations (name) VALUES (?)", args: [name] }], "write");
    applied.push(name);
  }
  return applied;
}
