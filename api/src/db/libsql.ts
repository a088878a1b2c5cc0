// The Node database: a local SQLite file through libsql's native binding, migrated at open. drizzle talks
// to it through its sqlite-proxy driver with one prepared statement kept per SQL text: @libsql/client
// prepares every statement again at each execute, which was the largest single item on the API's event
// loop under load (~10 % of its busy time in a CPU profile of `bench serve --mode e2e`).
// One difference from the libsql and D1 drivers: a raw sql`` query through db.all/db.get answers rows as
// arrays of column values, not objects (the proxy driver hands them through). The API uses the query
// builder, whose results are the same on every driver. Use db.batch for atomic writes, never
// db.transaction: this driver would send its BEGIN/COMMIT through the one shared connection, and other
// requests' queries would run inside it.
import Database from "libsql";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import type { Db } from "./client.js";
import { applyMigrations } from "./migrate.js";
import { schema } from "./schema.js";

type Method = "run" | "all" | "values" | "get";

/** Statements kept at most; the oldest goes first (SQL texts vary only with list lengths, so few are in use). */
const MAX_STATEMENTS = 512;
type Statement = ReturnType<Database.Database["prepare"]>;

/** Opens (creating if needed) the SQLite file and applies pending migrations. */
export async function openLibsql(path: string): Promise<{ db: Db; close(): void }> {
  const native = new Database(path);
  native.exec("PRAGMA journal_mode = WAL");
  native.exec("PRAGMA busy_timeout = 5000");
  // With WAL, NORMAL keeps the file consistent across process crashes and skips an fsync per commit
  // (~10 ms each here, measured on usage writes); only an OS crash can lose the newest commits.
  native.exec("PRAGMA synchronous = NORMAL");
  native.exec("PRAGMA foreign_keys = ON");
  await applyMigrations(native);

  // Kept per method and SQL text: libsql 0.5.29's first get() after an all() on the same statement
  // answers the all()'s first row, whatever the parameters (tested in test/unit/api/db/libsql.test.ts).
  const statements = new Map<string, { stmt: Statement; reader: boolean }>();
  const prepared = (sql: string, method: Method) => {
    const key = `${method}\0${sql}`;
    let s = statements.get(key);
    if (!s) {
      const stmt = native.prepare(sql);
      // Rows as arrays, the shape drizzle's proxy driver maps by column order.
      if (stmt.reader) stmt.raw(true);
      s = { stmt, reader: stmt.reader };
      if (statements.size >= MAX_STATEMENTS) statements.delete(statements.keys().next().value as string);
      statements.set(key, s);
    }
    return s;
  };
  const execute = (sql: string, params: unknown[], method: Method): { rows: unknown[] } => {
    const { stmt, reader } = prepared(sql, method);
    // The native binding aborts the process on a boolean parameter; SQLite stores them as 1/0 anyway.
    if (params.some((p) => typeof p === "boolean")) params = params.map((p) => (typeof p === "boolean" ? Number(p) : p));
    if (!reader) {
      stmt.run(params);
      return { rows: [] };
    }
    // One row, or undefined when there is none (drizzle's proxy driver expects both in `rows`).
    if (method === "get") return { rows: stmt.get(params) as unknown[] };
    if (method === "run") {
      stmt.all(params); // a RETURNING statement run for its effect
      return { rows: [] };
    }
    return { rows: stmt.all(params) };
  };
  const db = drizzle(
    async (sql, params, method) => execute(sql, params, method),
    // db.batch: all or nothing, in one write transaction (run synchronously: nothing else interleaves).
    async (queries) => {
      native.exec("BEGIN IMMEDIATE");
      try {
        const out = queries.map((q) => execute(q.sql, q.params, q.method));
        native.exec("COMMIT");
        return out;
      } catch (err) {
        // SQLite may have rolled back already (disk full, I/O error); keep the original error.
        if (native.inTransaction) native.exec("ROLLBACK");
        throw err;
      }
    },
    { schema },
  ) as unknown as Db;
  return { db, close: () => native.close() };
}
