// The per-completion queries are prepared statements (api/src/db/prepared.ts): they must run on D1 as
// they do on libsql — the tenant's model lookup (a join, another tenant's adapter is not found) and the
// two-row metering insert that a replay does not repeat.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { findTenantModel } from "../../api/src/adapters/models.js";
import { meterInference } from "../../api/src/inference/meter.js";
import { adapters, baseModels, usageEvents } from "../../api/src/db/schema.js";
import { createWorkerDeps } from "../../api/src/worker-deps.js";
import { tenant } from "./helpers.js";

const summary = { architecture: "LlamaForCausalLM", hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 256 };

describe("prepared per-completion queries on D1", () => {
  it("find the caller's adapter with its base model, and meter a request once", async () => {
    const { db } = await createWorkerDeps(env as unknown as Record<string, unknown>, "https://x.test");
    const owner = await tenant("owner");
    const other = await tenant("other");
    await db.insert(baseModels).values({ id: "micro-d1", source: "models/micro-d1/", config: JSON.stringify(summary), createdAt: 1 });
    const modelId = `ft:micro-d1:${owner.id}:s:abc`;
    await db.insert(adapters).values({ id: "ad_d1", tenantId: owner.id, modelId, baseModel: "micro-d1", method: "lora", rank: 8, alpha: 16, targetModules: "[]", sizeBytes: 1, sha256: "0", blobPrefix: "adapters/ad_d1/", createdAt: 1 });

    const found = await findTenantModel(db, owner.id, modelId);
    expect(found).toMatchObject({ kind: "adapter", adapter: { id: "ad_d1" }, base: { id: "micro-d1" }, summary: { hidden_size: 64 } });
    expect(await findTenantModel(db, other.id, modelId)).toBeNull();
    expect(await findTenantModel(db, owner.id, "micro-d1")).toMatchObject({ kind: "base", base: { id: "micro-d1" } });

    const usage = { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 };
    await meterInference(db, { tenantId: owner.id, requestId: "req_d1", model: modelId, usage, now: 5 });
    await meterInference(db, { tenantId: owner.id, requestId: "req_d1", model: modelId, usage: { ...usage, completion_tokens: 99 }, now: 6 });
    const rows = await db.select().from(usageEvents).where(eq(usageEvents.ref, "req_d1"));
    expect(rows.map((r) => [r.kind, r.quantity, r.idempotencyKey]).sort()).toEqual([
      ["completion_tokens", 5, "req:req_d1:completion_tokens"],
      ["prompt_tokens", 7, "req:req_d1:prompt_tokens"],
    ]);
  });
});
