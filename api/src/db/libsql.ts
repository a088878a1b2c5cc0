// The Node database: a local SQLite file through libsql's native binding, migrated at open. drizzle talks
// to it through its sqlite-proxy driver with one prepared statement kept per SQL text: @libsql/client
// prepares every statement again at each execute, which was the largest single item on the API's event
// loop under load (~10 % of its busy time in a CPU profile of `bench serve --mode e2e`).
// One difference from the libsql and D1 drivers: a raw sql`` query through db.all/db.get answers rows as
// arrays of column values, not objects (the proxy driver hands them through). The API uses the query
// builder, whose results are the same on every driver.
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

  const statements = new Map<string, { stmt: Statement; reader: boolean }>();
  const prepared = (sql: string) => {
    let s = statements.get(sql);
    if (!s) {
      const stmt = native.prepare(sql);
      // Rows as arrays, the shape drizzle's proxy driver maps by column order.
      if (stmt.reader) stmt.raw(true);
      s = { stmt, reader: stmt.reader };
      if (statements.size >= MAX_STATEMENTS) statements.delete(statements.keys().next().value as string);
      statements.set(sql, s);
    }
    return s;
  };
  const execute = (sql: string, params: unknown[], method: Method): { rows: unknown[] } => {
    const { stmt, reader } = prepared(sql);
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
    // db.batch: all or nothing, in one transaction.
    async (queries) => {
      native.exec("BEGIN");
      try {
        const out = queries.map((q) => execute(q.sql, q.params, q.method));
        native.exec("COMMIT");
        return out;
      } catch (err) {
        native.exec("ROLLBACK");
        throw err;
      }
    },
    { schema },
  ) as unknown as Db;
  return { db, close: () => native.close() };
}
