// Checkpoints as callable models (OpenAI's `fine_tuned_model_checkpoint`): every checkpoint a job records
// holds a whole PEFT adapter (adapter_config.json and adapter_model.safetensors beside the optimizer
// state), so `ft:…:ckpt-step-N` answers completions like a fine-tuned model and can be continued. As in
// OpenAI's API, only a succeeded job's checkpoints are models, and only while its fine-tuned model exists:
// they go with it (deleting the model deletes their files), count against no quota of their own, and are
// listed with the job's checkpoints rather than in /v1/models.
import { and, eq, like } from "drizzle-orm";
import { findTenantModel, type ModelObject, type TenantModel } from "../adapters/models.js";
import type { Db } from "../db/client.js";
import { ApiError } from "../errors.js";
import { adapters, baseModels, checkpoints, jobs } from "../db/schema.js";
import { modelSummarySchema, type ModelSummary } from "../lib/model-shapes.js";
import { jobAdapterId, jobModelName } from "./shape.js";

/** `<the job's model name>:ckpt-step-<step>`; the name is ft:<base>:<tenant>:<suffix>:<short id>. */
// One spelling per checkpoint (no leading zeros in the step): a name is a cache key and a usage row's model.
const CHECKPOINT_NAME = /^(ft:([^:]+):([^:]+):[^:]*:([a-z0-9]+)):ckpt-step-(0|[1-9]\d{0,9})$/;

export type CheckpointModel = { modelId: string; tenantId: string; baseModel: string; blobPrefix: string; jobId: string; step: number; createdAt: number };

export const isCheckpointName = (modelId: string) => CHECKPOINT_NAME.test(modelId);

/** Any `…:ckpt-step-<digits>` name, however spelled. */
export const looksLikeCheckpoint = (modelId: string) => /^ft:.*:ckpt-step-\d+$/.test(modelId);

/** The 404 for a model name that resolves to nothing: a checkpoint's says when checkpoints are models. */
export function modelNotFound(modelId: string, otherwise: string): ApiError {
  const why = looksLikeCheckpoint(modelId)
    ? `model '${modelId}' names no checkpoint you can call: a checkpoint is a model once its job has succeeded, and for as long as the job's fine-tuned model exists; use a name exactly as GET /v1/fine_tuning/jobs/{id}/checkpoints gives it`
    : otherwise;
  return new ApiError("not_found", why, "model");
}

/** The checkpoint a model name names, if its job recorded it; only the given tenant's when one is given. */
export async function findCheckpointModel(db: Db, modelId: string, tenantId?: string): Promise<CheckpointModel | null> {
  const m = CHECKPOINT_NAME.exec(modelId);
  if (!m) return null;
  const [, name, base, tenant, short, step] = m;
  if (tenantId !== undefined && tenant !== tenantId) return null;
  // The short id is the job id's random tail; the whole name must match (suffix, base, tenant).
  const candidates = await db.select().from(jobs).where(and(eq(jobs.tenantId, tenant), eq(jobs.model, base), like(jobs.id, `%${short}`)));
  const job = candidates.find((j) => jobModelName(j) === name && j.status === "succeeded");
  if (!job) return null;
  // The job's fine-tuned model still exists (deleting it takes the checkpoints' files too).
  if (!(await db.query.adapters.findFirst({ where: eq(adapters.id, jobAdapterId(job.id)) }))) return null;
  const ck = await db.query.checkpoints.findFirst({ where: and(eq(checkpoints.jobId, job.id), eq(checkpoints.step, Number(step))) });
  if (!ck) return null;
  return { modelId, tenantId: tenant, baseModel: job.model, blobPrefix: ck.blobPrefix, jobId: job.id, step: ck.step, createdAt: ck.createdAt };
}

export type CallableModel = TenantModel | { kind: "checkpoint"; checkpoint: CheckpointModel; base: typeof baseModels.$inferSelect; summary: ModelSummary };

/** What a tenant may call or continue by name: a base model, one of its fine-tuned models, or one of its jobs' checkpoints. */
export async function findCallableModel(db: Db, tenantId: string, modelId: string): Promise<CallableModel | null> {
  if (!isCheckpointName(modelId)) return findTenantModel(db, tenantId, modelId);
  const checkpoint = await findCheckpointModel(db, modelId, tenantId);
  if (!checkpoint) return null;
  const base = await db.query.baseModels.findFirst({ where: eq(baseModels.id, checkpoint.baseModel) });
  return base ? { kind: "checkpoint", checkpoint, base, summary: modelSummarySchema.parse(JSON.parse(base.config)) } : null;
}

/** The name and blob folder of a fine-tuned model's or checkpoint's PEFT files. */
export function peftFilesOf(m: Exclude<CallableModel, { kind: "base" }>): { modelId: string; blobPrefix: string } {
  return m.kind === "adapter" ? { modelId: m.adapter.modelId, blobPrefix: m.adapter.blobPrefix } : { modelId: m.checkpoint.modelId, blobPrefix: m.checkpoint.blobPrefix };
}

/** The OpenAI model object of a checkpoint (no adapter object of its own: adapter_id is null). */
export function checkpointModelObject(c: CheckpointModel): ModelObject {
  return { id: c.modelId, object: "model", created: c.createdAt, owned_by: c.tenantId, base_model: c.baseModel, adapter_id: null };
}
