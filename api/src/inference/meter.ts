// Inference metering: one usage event per request and kind (idempotency key `req:<request id>:<kind>`),
// billed to the model the caller named, so a replayed report never bills twice. Both kinds are written in
// one batch (one transaction, one commit) because this runs once per completion.
import type { Db } from "../db/client.js";
import { runBatch } from "../jobs/store.js";
import { usageInsert } from "../usage/record.js";
import type { GenerateUsage } from "./runner-protocol.js";

/** Records prompt and completion tokens of one request. */
export async function meterInference(db: Db, f: { tenantId: string; requestId: string; model: string; usage: GenerateUsage; now: number }): Promise<void> {
  await runBatch(
    db,
    (["prompt_tokens", "completion_tokens"] as const).map((kind) =>
      usageInsert(db, { idempotencyKey: `req:${f.requestId}:${kind}`, tenantId: f.tenantId, kind, model: f.model, quantity: f.usage[kind], ref: f.requestId, now: f.now }),
    ) as never,
  );
}
