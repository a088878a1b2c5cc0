// Applies migrations/*.sql on Node the way `wrangler d1 migrations apply` does on D1: same files, same order,
// same bookkeeping table (d1_migrations), so one database could move between the two.
import type Database from "libsql";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export const migrationsDir = new URL("../../../migrations/", import.meta.url).pathname;

/** Applies every migration not yet recorded, each in its own transaction; returns the names applied now. */
export async function applyMigrations(db: Database.Database, dir = migrationsDir): Promise<string[]> {
  db.exec("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)");
  const done = new Set((db.prepare("SELECT name FROM d1_migrations").all() as { name: string }[]).map((r) => r.name));
  const names = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const applied: string[] = [];
  for (const name of names) {
    if (done.has(name)) continue;
    const sql = await readFile(join(dir, name), "utf8");
    const statements = sql.split("--> statement-breakpoint").map((s) => s.trim()).filter(Boolean);
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const s of statements) db.exec(s);
      db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").run(name);
      db.exec("COMMIT");
    } catch (err) {
      if (db.inTransaction) db.exec("ROLLBACK"); // SQLite may have rolled back already
      throw new Error(`migration ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    applied.push(name);
  }
  return applied;
}
