// The Node database driver (api/src/db/libsql.ts): drizzle over libsql's native binding with kept
// statements. Reads, misses, RETURNING, get() after all() of one query, booleans, all-or-nothing
// batches, migrations recorded once, and more distinct statements than it keeps.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLibsql } from "../../../../api/src/db/libsql.js";
import { applyMigrations } from "../../../../api/src/db/migrate.js";
import { tenants, usageEvents } from "../../../../api/src/db/schema.js";
import { runBatch } from "../../../../api/src/db/batch.js";
import Database from "libsql";

let dir: string;
let opened: Awaited<ReturnType<typeof openLibsql>>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-libsql-"));
  opened = await openLibsql(join(dir, "t.sqlite"));
});
afterAll(async () => {
  opened.close();
  await rm(dir, { recursive: true, force: true });
});

/** A tenants row as stored: no quotas of its own. */
const tenant = (id: string, name: string, createdAt: number) => ({ id, name, createdAt, maxActiveJobs: null, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null, stripeCustomerId: null, suspendedAt: null });

describe("Node database driver", () => {
  it("reads rows, answers a miss with undefined, and returns RETURNING rows", async () => {
    const { db } = opened;
    const inserted = await db.insert(tenants).values({ id: "ten_a", name: "a", createdAt: 7 }).returning();
    expect(inserted).toEqual([tenant("ten_a", "a", 7)]);
    expect(await db.select().from(tenants).where(eq(tenants.id, "ten_a")).get()).toEqual(tenant("ten_a", "a", 7));
    expect(await db.select().from(tenants).where(eq(tenants.id, "nobody")).get()).toBeUndefined();
    const byId = db.select({ name: tenants.name }).from(tenants).where(eq(tenants.id, sql.placeholder("id"))).prepare();
    expect(await byId.all({ id: "ten_a" })).toEqual([{ name: "a" }]);
    expect(await byId.all({ id: "nobody" })).toEqual([]);
  });

  it("answers get() with its own parameters after an all() of the same query", async () => {
    const { db } = opened;
    await db.insert(tenants).values({ id: "ten_b", name: "b", createdAt: 8 });
    const byId = db.select().from(tenants).where(eq(tenants.id, sql.placeholder("id"))).prepare();
    expect(await byId.all({ id: "ten_a" })).toEqual([tenant("ten_a", "a", 7)]);
    expect(await byId.get({ id: "ten_b" })).toEqual(tenant("ten_b", "b", 8));
    expect(await byId.all({ id: "ten_b" })).toHaveLength(1);
    expect(await byId.get({ id: "nobody" })).toBeUndefined();
  });

  it("stores a boolean parameter as 1/0 instead of failing", async () => {
    const { db } = opened;
    expect(await db.all(sql`SELECT ${true} AS t, ${false} AS f`)).toEqual([[1, 0]]);
  });

  it("runs a batch all or nothing", async () => {
    const { db } = opened;
    const row = (id: string, key: string) => ({ id, idempotencyKey: key, tenantId: "ten_a", kind: "prompt_tokens", model: "m", quantity: 1, ref: "r", createdAt: 1 });
    await runBatch(db, [db.insert(usageEvents).values(row("use_1", "k1")), db.insert(usageEvents).values(row("use_2", "k2"))] as never);
    // The second insert breaks the unique key: the first must not stay either.
    await expect(runBatch(db, [db.insert(usageEvents).values(row("use_3", "k3")), db.insert(usageEvents).values(row("use_4", "k1"))] as never)).rejects.toThrow(/UNIQUE/);
    expect((await db.select({ id: usageEvents.id }).from(usageEvents)).map((r) => r.id).sort()).toEqual(["use_1", "use_2"]);
  });

  it("keeps working past the number of statements it keeps", async () => {
    const { db } = opened;
    // 600 distinct SQL texts; raw queries answer arrays of column values (see libsql.ts).
    for (let i = 0; i < 600; i++) expect(await db.all(sql.raw(`SELECT ${i} AS v`))).toEqual([[i]]);
    expect(await db.select().from(tenants).where(eq(tenants.id, "ten_a")).get()).toMatchObject({ name: "a" });
  });

  it("applies each migration once", async () => {
    const native = new Database(join(dir, "t.sqlite"));
    try {
      expect(await applyMigrations(native)).toEqual([]);
      const names = native.prepare("SELECT name FROM d1_migrations ORDER BY id").all() as { name: string }[];
      expect(names.length).toBeGreaterThan(0);
      expect(new Set(names.map((n) => n.name)).size).toBe(names.length);
    } finally {
      native.close();
    }
  });
});
