// A database that fails every read once a row went into a given table: for the failure paths that run after an
// insert (a quota re-check that cannot be made), which must not leave the row behind.
import type { Db } from "../../api/src/db/client.js";

export function failReadsAfterInsert(db: Db, table: unknown): { db: Db; inserted: () => boolean } {
  let inserted = false;
  const failing = new Proxy(db, {
    get(target, prop) {
      if (prop === "select" && inserted) {
        return () => {
          throw new Error("the database went away");
        };
      }
      if (prop === "insert") {
        return (t: unknown) => {
          inserted ||= t === table;
          return db.insert(t as Parameters<Db["insert"]>[0]);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { db: failing, inserted: () => inserted };
}
