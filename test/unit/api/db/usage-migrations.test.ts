// Migrations over existing usage: 0003 rebuilds usage_events with an explicit commit-order key (events keep
// their ids, data and order; later inserts continue the sequence), and 0005 fills the monthly totals and
// keeps them from then on (tokens only, since 0006).
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "libsql";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applyMigrations, migrationsDir } from "../../../../api/src/db/migrate.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-usage-seq-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it("keeps earlier usage events in the order they were recorded", async () => {
  const all = (await readdir(migrationsDir)).filter((f) => f.endsWith(".sql")).sort();
  const seqMigration = all.find((f) => f.startsWith("0003_"))!;
  const before = join(dir, "migrations");
  await mkdir(before);
  for (const f of all.filter((f) => f < seqMigration)) await copyFile(join(migrationsDir, f), join(before, f));

  const db = new Database(join(dir, "t.sqlite"));
  await applyMigrations(db, before);
  db.exec("INSERT INTO tenants (id, name, created_at) VALUES ('ten_a', 'a', 1)");
  // Ids out of their recording order, as ids from two processes can be.
  const ids = ["use_c", "use_a", "use_b"];
  ids.forEach((id, i) => db.prepare("INSERT INTO usage_events (id, idempotency_key, tenant_id, kind, model, quantity, ref, created_at) VALUES (?, ?, 'ten_a', 'prompt_tokens', 'm', ?, 'r', ?)").run(id, `k${i}`, i + 1, 100 - i));

  for (const f of all.filter((f) => f >= seqMigration)) await copyFile(join(migrationsDir, f), join(before, f));
  expect(await applyMigrations(db, before)).toContain(seqMigration);
  const rows = db.prepare("SELECT seq, id, idempotency_key, quantity, created_at FROM usage_events ORDER BY seq").all() as { seq: number; id: string; quantity: number }[];
  expect(rows.map((r) => r.id)).toEqual(ids);
  expect(rows.map((r) => r.quantity)).toEqual([1, 2, 3]);
  db.prepare("INSERT INTO usage_events (id, idempotency_key, tenant_id, kind, model, quantity, ref, created_at) VALUES ('use_0', 'k9', 'ten_a', 'prompt_tokens', 'm', 9, 'r', 1)").run();
  expect((db.prepare("SELECT seq FROM usage_events WHERE id = 'use_0'").get() as { seq: number }).seq).toBeGreaterThan(rows[2].seq);
  // The trigger survives every later migration (a drizzle table rebuild would drop it without a word).
  expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()).toEqual([{ name: "usage_monthly_add" }]);
  // 1 + 2 + 3 filled in, then 9 added by the trigger; a duplicate key inserts nothing and adds nothing.
  db.prepare("INSERT INTO usage_events (id, idempotency_key, tenant_id, kind, model, quantity, ref, created_at) VALUES ('use_1', 'k9', 'ten_a', 'prompt_tokens', 'm', 9, 'r', 1) ON CONFLICT (idempotency_key) DO NOTHING").run();
  db.prepare("INSERT INTO usage_events (id, idempotency_key, tenant_id, kind, model, quantity, ref, created_at) VALUES ('use_2', 'k10', 'ten_a', 'prompt_tokens', 'm', 4, 'r', 2678400)").run();
  // Storage byte-hours are not tokens (0006): they leave the monthly token total alone.
  db.prepare("INSERT INTO usage_events (id, idempotency_key, tenant_id, kind, model, quantity, ref, created_at) VALUES ('use_3', 'k11', 'ten_a', 'storage_byte_hours', 'm', 500, 'r', 2)").run();
  expect(db.prepare("SELECT month, quantity FROM usage_monthly ORDER BY month").all()).toEqual([{ month: "1970-01", quantity: 15 }, { month: "1970-02", quantity: 4 }]);
  db.close();
});

it("bills adapters kept before storage billing from the day it arrives, not from their creation", async () => {
  const all = (await readdir(migrationsDir)).filter((f) => f.endsWith(".sql")).sort();
  const storage = all.find((f) => f.startsWith("0006_"))!;
  const before = join(dir, "migrations-storage");
  await mkdir(before);
  for (const f of all.filter((f) => f < storage)) await copyFile(join(migrationsDir, f), join(before, f));
  const db = new Database(join(dir, "s.sqlite"));
  await applyMigrations(db, before);
  db.exec("INSERT INTO tenants (id, name, created_at) VALUES ('ten_a', 'a', 1)");
  db.exec("INSERT INTO base_models (id, source, config, created_at) VALUES ('m', 'blob:m/', '{}', 1)");
  const now = Math.floor(Date.now() / 1000);
  const adapter = (id: string, createdAt: number) =>
    db.prepare("INSERT INTO adapters (id, tenant_id, model_id, base_model, method, rank, alpha, target_modules, size_bytes, sha256, blob_prefix, created_at) VALUES (?, 'ten_a', ?, 'm', 'lora', 8, 16, '[]', 100, 'x', 'p/', ?)").run(id, `ft:m:ten_a::${id}`, createdAt);
  adapter("old", 1000);
  adapter("new", now + 60); // created "later today" (clock skew aside): billed from its creation
  for (const f of all.filter((f) => f >= storage)) await copyFile(join(migrationsDir, f), join(before, f));
  await applyMigrations(db, before);
  const rows = db.prepare("SELECT id, storage_billed_until AS until FROM adapters ORDER BY id").all() as { id: string; until: number }[];
  const today = now - (now % 86_400);
  expect(rows).toEqual([{ id: "new", until: now + 60 }, { id: "old", until: today }]);
  db.close();
});
