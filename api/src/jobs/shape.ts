// Rows → the OpenAI-shaped objects tenants see: fine_tuning.job, fine_tuning.job.event and
// fine_tuning.job.checkpoint, plus tuneserve's extras (adapter, progress, estimated_finish).
import { z } from "@hono/zod-openapi";
import { fineTunedModelId } from "../adapters/models.js";
import type { checkpoints, jobEvents, jobs } from "../db/schema.js";
import { progressSchema, type Progress } from "./protocol.js";
import type { JobParent } from "./parent.js";
import { adapterSchema, dpoHyperparametersSchema, hyperparametersSchema, methodHyperparameters, methodSchema, type JobAdapter, type JobMethod } from "./settings.js";
import { jobStatuses, type JobStatus } from "./state.js";

export type JobRow = typeof jobs.$inferSelect;

export const jobSchema = z
  .object({
    id: z.string(),
    object: z.literal("fine_tuning.job"),
    model: z.string().openapi({ description: "the base model, or the fine-tuned model the job continues" }),
    created_at: z.number().int(),
    finished_at: z.number().int().nullable(),
    fine_tuned_model: z.string().nullable().openapi({ description: "set once the job succeeds" }),
    organization_id: z.string().openapi({ description: "the tenant id" }),
    status: z.enum(jobStatuses),
    error: z.object({ code: z.string(), message: z.string(), param: z.string().nullable() }).nullable(),
    hyperparameters: z.union([dpoHyperparametersSchema, hyperparametersSchema]).openapi({ description: "the method's hyperparameters (deprecated in OpenAI's API in favour of method)" }),
    method: methodSchema,
    training_file: z.string(),
    validation_file: z.string().nullable(),
    result_files: z.array(z.string()).openapi({ description: "a succeeded job's results file (step metrics CSV, purpose fine-tune-results)" }),
    seed: z.number().int(),
    trained_tokens: z.number().int().nullable(),
    user_provided_suffix: z.string().nullable(),
    estimated_finish: z.number().int().nullable().openapi({ description: "unix seconds, from the runner's last ETA" }),
    adapter: adapterSchema,
    progress: progressSchema.nullable(),
    metadata: z.record(z.string(), z.string()).nullable().openapi({ description: "the key-value pairs given at creation" }),
  })
  .openapi("FineTuningJob");
export type Job = z.infer<typeof jobSchema>;

export const eventSchema = z
  .object({
    object: z.literal("fine_tuning.job.event"),
    id: z.string(),
    created_at: z.number().int(),
    level: z.enum(["info", "warn", "error"]),
    message: z.string(),
    data: z.record(z.string(), z.unknown()).nullable(),
    type: z.enum(["message", "metrics"]),
  })
  .openapi("FineTuningJobEvent");
export type JobEvent = z.infer<typeof eventSchema>;

export const checkpointSchema = z
  .object({
    object: z.literal("fine_tuning.job.checkpoint"),
    id: z.string(),
    created_at: z.number().int(),
    fine_tuned_model_checkpoint: z.string(),
    fine_tuning_job_id: z.string(),
    step_number: z.number().int(),
    metrics: z.record(z.string(), z.number()),
  })
  .openapi("FineTuningJobCheckpoint");
export type JobCheckpoint = z.infer<typeof checkpointSchema>;

export function jobMethod(row: JobRow): JobMethod {
  return JSON.parse(row.method);
}

/** The fine-tuned model the job continues, or null for a job that starts from the base model. */
export function jobParent(row: JobRow): JobParent | null {
  return row.parent ? JSON.parse(row.parent) : null;
}

export function jobAdapter(row: JobRow): JobAdapter {
  // Jobs created before rsLoRA was an option are plain LoRA.
  return { use_rslora: false, ...JSON.parse(row.adapter) };
}

export function jobProgress(row: JobRow): Progress | null {
  return row.progress ? JSON.parse(row.progress) : null;
}

/** Job ids start with this; the adapter a job produces reuses the job id's body, so retried completes agree. */
export const jobIdPrefix = "ftjob-";
export const jobAdapterId = (jobId: string) => `adp_${jobId.slice(jobIdPrefix.length)}`;

/** The model name the job's adapter gets (known from creation; shown once the job succeeds). */
export const jobModelName = (row: JobRow) => fineTunedModelId(row.model, row.tenantId, row.suffix, jobAdapterId(row.id));

export function toJob(row: JobRow): Job {
  const method = jobMethod(row);
  const reported = jobProgress(row);
  // The last report comes before the final validation pass; a finished job's count is the one it was billed for.
  const progress = reported && row.trainedTokens !== null ? { ...reported, trained_tokens: row.trainedTokens } : reported;
  const err = row.error ? (JSON.parse(row.error) as { code: string; message: string }) : null;
  return {
    id: row.id,
    object: "fine_tuning.job",
    // As OpenAI's: the model the job fine-tunes, a fine-tuned one when it continues one.
    model: jobParent(row)?.model ?? row.model,
    created_at: row.createdAt,
    finished_at: row.finishedAt,
    fine_tuned_model: row.fineTunedModel,
    organization_id: row.tenantId,
    status: row.status as JobStatus,
    error: err ? { code: err.code, message: err.message, param: null } : null,
    hyperparameters: methodHyperparameters(method),
    method,
    training_file: row.trainingFile,
    validation_file: row.validationFile,
    result_files: row.resultFile ? [row.resultFile] : [],
    seed: row.seed,
    trained_tokens: row.trainedTokens,
    user_provided_suffix: row.suffix,
    estimated_finish: row.status === "running" && progress?.eta_s !== undefined ? Math.round(progress.updated_at + progress.eta_s) : null,
    adapter: jobAdapter(row),
    progress,
    metadata: row.metadata ? JSON.parse(row.metadata) : null,
  };
}

export function toEvent(row: typeof jobEvents.$inferSelect): JobEvent {
  return {
    object: "fine_tuning.job.event",
    id: row.id,
    created_at: row.createdAt,
    level: row.level as JobEvent["level"],
    message: row.message,
    data: row.data ? JSON.parse(row.data) : null,
    type: row.type === "metrics" ? "metrics" : "message",
  };
}

export function toCheckpoint(row: typeof checkpoints.$inferSelect, job: JobRow): JobCheckpoint {
  return {
    object: "fine_tuning.job.checkpoint",
    id: row.id,
    created_at: row.createdAt,
    fine_tuned_model_checkpoint: `${jobModelName(job)}:ckpt-step-${row.step}`,
    fine_tuning_job_id: row.jobId,
    step_number: row.step,
    metrics: { step: row.step, ...JSON.parse(row.metrics) },
  };
}
