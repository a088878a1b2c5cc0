// The database type shared by D1 (Workers) and libsql (Node): drizzle's async SQLite flavour.
import type { BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import type { schema } from "./schema.js";

export type Db = BaseSQLiteDatabase<"async", unknown, typeof schema>;
