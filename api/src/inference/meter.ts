// Inference metering: one usage event per request and kind (idempotency key `req:<request id>:<kind>`),
// billed to the model the caller named, so a replayed report never bills twice. Both kinds go in one
// INSERT of two rows (atomic on its own, no transaction), prepared once (db/prepared.ts) because this
// runs once per completion.
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { prepared } from "../db/prepared.js";
import { usageEvents } from "../db/schema.js";
import { newId } from "../lib/ids.js";
import type { GenerateUsage } from "./runner-protocol.js";

const p = (name: string) => sql.placeholder(name);

const insertBoth = (db: Db) =>
  prepared(db, "meterInference", (d) =>
    d
      .insert(usageEvents)
      .values(
        (["prompt_tokens", "completion_tokens"] as const).map((kind) => ({
          id: p(`${kind}.id`),
          idempotencyKey: p(`${kind}.key`),
          tenantId: p("tenant"),
          kind,
          model: p("model"),
          quantity: p(`${kind}.quantity`),
          ref: p("ref"),
          createdAt: p("now"),
        })),
      )
      .onConflictDoNothing({ target: usageEvents.idempotencyKey })
      .prepare(),
  );

/** Records prompt and completion tokens of one request. */
export async function meterInference(db: Db, f: { tenantId: string; requestId: string; model: string; usage: GenerateUsage; now: number }): Promise<void> {
  const values: Record<string, string | number> = { tenant: f.tenantId, model: f.model, ref: f.requestId, now: f.now };
  for (const kind of ["prompt_tokens", "completion_tokens"] as const) {
    values[`${kind}.id`] = newId("use_");
    values[`${kind}.key`] = `req:${f.requestId}:${kind}`;
    values[`${kind}.quantity`] = f.usage[kind];
  }
  await insertBoth(db).run(values);
}
