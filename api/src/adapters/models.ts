// What a tenant can call by name: the registered base models plus its own adapters. Shared by /v1/models,
// /v1/adapters and the inference routes, which resolve a request's `model` with findTenantModel.
import { z } from "@hono/zod-openapi";
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { prepared } from "../db/prepared.js";
import { adapters, baseModels } from "../db/schema.js";
import { modelSummarySchema, type ModelSummary } from "../lib/model-shapes.js";

export type BaseModelRow = typeof baseModels.$inferSelect;
export type AdapterRow = typeof adapters.$inferSelect;

export const modelSchema = z
  .object({
    id: z.string().openapi({ example: "ft:micro-llama:ten_0abc:support:k3j5h2g8d9s1" }),
    object: z.literal("model"),
    created: z.number().int().openapi({ description: "unix seconds" }),
    owned_by: z.string().openapi({ description: "'tuneserve' for base models, the tenant id for fine-tuned ones" }),
    base_model: z.string().nullable().openapi({ description: "the base model a fine-tuned model applies to; null for base models" }),
    adapter_id: z.string().nullable().openapi({ description: "the adapter behind a fine-tuned model; null for base models" }),
  })
  .openapi("Model");

export const adapterSchema = z
  .object({
    id: z.string(),
    object: z.literal("adapter"),
    model: z.string().openapi({ description: "the model name to call it by" }),
    base_model: z.string(),
    method: z.string().openapi({ example: "lora" }),
    rank: z.number().int(),
    alpha: z.number(),
    target_modules: z.array(z.string()),
    size_bytes: z.number().int(),
    sha256: z.string().openapi({ description: "SHA-256 hex of adapter_model.safetensors" }),
    created_at: z.number().int(),
    job_id: z.string().nullable(),
  })
  .openapi("Adapter");

export type ModelObject = z.infer<typeof modelSchema>;
export type AdapterObject = z.infer<typeof adapterSchema>;

/** The OpenAI model object of a base model or of a tenant's adapter. */
export function toModelObject(row: { kind: "base"; base: BaseModelRow } | { kind: "adapter"; adapter: AdapterRow }): ModelObject {
  if (row.kind === "base") {
    return { id: row.base.id, object: "model", created: row.base.createdAt, owned_by: "tuneserve", base_model: null, adapter_id: null };
  }
  const a = row.adapter;
  return { id: a.modelId, object: "model", created: a.createdAt, owned_by: a.tenantId, base_model: a.baseModel, adapter_id: a.id };
}

export function toAdapterObject(a: AdapterRow): AdapterObject {
  return {
    id: a.id,
    object: "adapter",
    model: a.modelId,
    base_model: a.baseModel,
    method: a.method,
    rank: a.rank,
    alpha: a.alpha,
    target_modules: JSON.parse(a.targetModules),
    size_bytes: a.sizeBytes,
    sha256: a.sha256,
    created_at: a.createdAt,
    job_id: a.jobId,
  };
}

/** The name callers use for a fine-tuned model, OpenAI style: ft:<base>:<tenant>:<suffix>:<short id>. */
export function fineTunedModelId(baseModel: string, tenantId: string, suffix: string | null | undefined, adapterId: string): string {
  // The id's last 12 characters are its random part: unique enough and short.
  return `ft:${baseModel}:${tenantId}:${suffix ?? ""}:${adapterId.slice(-12)}`;
}

export type TenantModel =
  | { kind: "base"; base: BaseModelRow; summary: ModelSummary }
  | { kind: "adapter"; adapter: AdapterRow; base: BaseModelRow; summary: ModelSummary };

/** Resolves a model name for a tenant: a base model, or one of its own adapters; null otherwise (another tenant's too). */
export async function findTenantModel(db: Db, tenantId: string, modelId: string): Promise<TenantModel | null> {
  // Every completion resolves its model here: prepared statements (db/prepared.ts), one join for an adapter.
  if (!modelId.startsWith("ft:")) {
    const base = await prepared(db, "baseModelById", (d) => d.select().from(baseModels).where(eq(baseModels.id, sql.placeholder("id"))).limit(1).prepare()).get({ id: modelId });
    return base ? { kind: "base", base, summary: modelSummarySchema.parse(JSON.parse(base.config)) } : null;
  }
  const row = await prepared(db, "tenantAdapterWithBase", (d) =>
    d
      .select({ adapter: adapters, base: baseModels })
      .from(adapters)
      .innerJoin(baseModels, eq(baseModels.id, adapters.baseModel))
      .where(and(eq(adapters.modelId, sql.placeholder("model")), eq(adapters.tenantId, sql.placeholder("tenant"))))
      .limit(1)
      .prepare(),
  ).get({ model: modelId, tenant: tenantId });
  if (!row) return null;
  return { kind: "adapter", adapter: row.adapter, base: row.base, summary: modelSummarySchema.parse(JSON.parse(row.base.config)) };
}

/** One of the tenant's adapters by its id; null when absent or another tenant's. */
export async function findTenantAdapter(db: Db, tenantId: string, adapterId: string): Promise<AdapterRow | null> {
  return (await db.query.adapters.findFirst({ where: and(eq(adapters.id, adapterId), eq(adapters.tenantId, tenantId)) })) ?? null;
}
