// Creating a fine-tuning job: check the model, files and adapter options, resolve every "auto", then write the
// job and its first events in one batch (validating_files → queued) so it waits for a runner's lease.
import { z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { runBatch } from "../db/batch.js";
import { jobs } from "../db/schema.js";
import type { Deps, TenantAuth } from "../deps.js";
import { ApiError } from "../errors.js";
import { newId } from "../lib/ids.js";
import { seqLenLimit } from "../lib/model-shapes.js";
import { currentSummary } from "../lib/model-files.js";
import { assertCanTrainOn } from "../lib/model-text.js";
import { assertCanStartJob, jobQuotaOverrun } from "../quotas/limits.js";
import { requireTrainingFile, type FileRow } from "./files.js";
import { adapterInput, adapterWithDefaults, AUTO_BETA, hyperparametersInput, methodHyperparameters, methodInput, resolveAdapter, resolveHyperparameters, type DpoHyperparametersInput, type HyperparametersInput, type JobAdapter, type JobMethod } from "./settings.js";
import { continuedAdapter, type JobParent } from "./parent.js";
import { findCallableModel, modelNotFound, peftFilesOf } from "./checkpoint-models.js";
import { jobIdPrefix, type JobRow } from "./shape.js";
import { assertTransition } from "./state.js";
import { cancelJob, eventInsert } from "./store.js";
import { liveRunnerServes, liveSince } from "../inference/runners.js";

/** OpenAI's job metadata: up to 16 pairs, keys up to 64 characters, values up to 512. */
export const jobMetadata = z
  .record(z.string().min(1).max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, "at most 16 key-value pairs");

export const createJobBody = z
  .object({
    model: z.string().min(1).openapi({ description: "a registered base model, or one of the tenant's fine-tuned models to continue training", example: "micro-llama" }),
    training_file: z.string().min(1).openapi({ description: "id of a file uploaded with purpose=fine-tune" }),
    validation_file: z.string().min(1).nullish(),
    suffix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/, "use 1–40 letters, digits, '_', '.' or '-' (no ':')")
      .nullish()
      .openapi({ description: "goes into the model name: ft:<base>:<tenant>:<suffix>:<id>" }),
    seed: z.number().int().min(0).max(2_147_483_647).nullish().openapi({ description: "random when omitted" }),
    // null means "not set" for these three, as for the fields above (OpenAI clients send null for unset options).
    method: methodInput.nullish(),
    hyperparameters: hyperparametersInput.nullish().openapi({ deprecated: true, description: "deprecated in OpenAI's API in favour of method.supervised.hyperparameters; honoured when method is not given (supervised fine-tuning)" }),
    adapter: adapterInput.nullish().openapi({ description: "LoRA settings of a new adapter; a job continuing a fine-tuned model keeps that model's (only dropout may change)" }),
    metadata: jobMetadata.nullish().openapi({ description: "up to 16 key-value pairs (keys ≤ 64 characters, values ≤ 512), returned with the job and filterable in the list" }),
  })
  // An unknown field is a 400 naming it, rather than an option silently not applied (a typo, or an OpenAI
  // option such as `integrations` that tuneserve does not have).
  .strict()
  .openapi("CreateFineTuningJob");
export type CreateJobBody = z.infer<typeof createJobBody>;

/** Statements an Idempotency-Key adds: its record of the job, in the batch that writes it, and its undoing when the job is withdrawn. */
export interface JobKeyRecord {
  record(jobId: string): BatchItem<"sqlite">[];
  withdraw(jobId: string): BatchItem<"sqlite">[];
}

const noKey: JobKeyRecord = { record: () => [], withdraw: () => [] };

/**
 * Validates and stores a new job; throws ApiError naming the offending parameter. `key` adds statements to
 * the batch that writes the job (an Idempotency-Key's record of it, so that the two cannot part), and to the
 * withdrawal of a job a race took past the quota (so that the key does not keep a job it never got).
 */
export async function createJob(deps: Deps, tenant: TenantAuth, body: CreateJobBody, key: JobKeyRecord = noKey): Promise<JobRow> {
  const { db, config } = deps;
  const tenantId = tenant.tenantId;
  const target = await findCallableModel(db, tenantId, body.model);
  if (!target) throw modelNotFound(body.model, `model '${body.model}' is neither a base model of this deployment nor one of your fine-tuned models; list them with GET /v1/models`);
  const model = target.base;
  const training = await requireTrainingFile(db, tenantId, body.training_file, "training_file");
  const validation = body.validation_file ? await requireTrainingFile(db, tenantId, body.validation_file, "validation_file") : null;
  const parent: JobParent | null = target.kind === "base" ? null : { model: peftFilesOf(target).modelId, adapter_id: target.kind === "adapter" ? target.adapter.id : null };
  let adapter: JobAdapter;
  if (target.kind !== "base") adapter = await continuedAdapter(deps, peftFilesOf(target), body.adapter ?? {});
  else {
    const resolved = resolveAdapter(adapterWithDefaults(body.adapter ?? {}), target.summary, config.TUNESERVE_MAX_LORA_RANK);
    if (!resolved.ok) throw new ApiError("invalid_request", resolved.message, resolved.param);
    adapter = resolved.adapter;
  }

  const method = resolveMethod(requestedMethod(body), training.lines);
  checkFileKind(method, training, "training_file");
  if (validation) checkFileKind(method, validation, "validation_file");
  const summary = await currentSummary(deps, model, target.summary);
  assertCanTrainOn(model.id, summary, training.format, "training_file");
  if (validation) assertCanTrainOn(model.id, summary, validation.format, "validation_file");
  const limit = seqLenLimit(summary);
  const seqLen = methodHyperparameters(method).seq_len ?? 0;
  if (limit && seqLen > limit.max) {
    const param = body.method ? `method.${method.type}.hyperparameters.seq_len` : "hyperparameters.seq_len";
    throw new ApiError("invalid_request", `seq_len=${seqLen} exceeds the model's ${limit.field} (${limit.max}); use seq_len ≤ ${limit.max}`, param);
  }
  // A valid request past a quota gets 429, after any 400 or 404 that it also deserves.
  await assertCanStartJob(deps, tenant);
  const now = deps.now();
  const id = newId(jobIdPrefix);
  const row: JobRow = {
    id,
    tenantId,
    model: model.id,
    trainingFile: training.id,
    validationFile: validation?.id ?? null,
    suffix: body.suffix ?? null,
    seed: body.seed ?? crypto.getRandomValues(new Uint32Array(1))[0] % 2_147_483_648,
    method: JSON.stringify(method),
    adapter: JSON.stringify(adapter),
    parent: parent ? JSON.stringify(parent) : null,
    resultFile: null,
    status: "validating_files",
    fineTunedModel: null,
    error: null,
    attempt: 0,
    maxAttempts: config.TUNESERVE_MAX_ATTEMPTS,
    leaseOwner: null,
    leaseExpiresAt: null,
    leaseKey: null,
    cancelRequested: 0,
    progress: null,
    trainedTokens: null,
    metadata: body.metadata ? JSON.stringify(body.metadata) : null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
  };
  // The files were checked line by line at upload, so validation here is their ownership and purpose only.
  assertTransition("validating_files", "queued");
  const validated = [training, validation].filter((f) => f !== null).map((f) => f.id).join(", ");
  await runBatch(db, [
    db.insert(jobs).values(row),
    eventInsert(db, id, now, { level: "info", message: `Created fine-tuning job: ${id}` }),
    eventInsert(db, id, now, { level: "info", message: `Validating training file: ${training.id}${validation ? ` and validation file: ${validation.id}` : ""}` }),
    db.update(jobs).set({ status: "queued" }).where(eq(jobs.id, id)),
    eventInsert(db, id, now, { level: "info", message: `Files validated (${validated}), moving job to queued state` }),
    ...key.record(id),
  ]);
  // Creations racing each other all passed the check above: the ones past the limit withdraw their job.
  const over = await jobQuotaOverrun(deps, tenant, id);
  if (over) {
    await cancelJob(db, { jobId: id, tenantId, now: deps.now() });
    await runBatch(db, key.withdraw(id));
    await eventInsert(db, id, deps.now(), { level: "warn", message: `Withdrawn: a concurrent request took the last of the tenant's quota (${over.message})` });
    throw over;
  }
  // Not an error (an autoscaled deployment starts runners for the queue), but say why the job may wait.
  if (!(await liveRunnerServes(db, row.model, liveSince(now, deps.config.TUNESERVE_LEASE_SECONDS)))) {
    await eventInsert(db, id, deps.now(), { level: "info", message: `No runner serving base model ${row.model} is online now; the job waits in the queue until one is` });
  }
  return { ...row, status: "queued" };
}

/** The method asked for: `method`, or supervised with the top-level hyperparameters as older OpenAI clients send them (not both). */
export type RequestedMethod = { type: "supervised"; hyperparameters: HyperparametersInput } | { type: "dpo"; hyperparameters: DpoHyperparametersInput };

export function requestedMethod(body: CreateJobBody): RequestedMethod {
  if (body.method && body.hyperparameters) {
    throw new ApiError("invalid_request", `give hyperparameters in method.${body.method.type}.hyperparameters, or at the top level (deprecated) without method; not both`, "hyperparameters");
  }
  if (body.method?.type === "dpo") return { type: "dpo", hyperparameters: body.method.dpo.hyperparameters };
  return { type: "supervised", hyperparameters: body.method?.supervised.hyperparameters ?? body.hyperparameters ?? hyperparametersInput.parse({}) };
}

/** Every "auto" resolved; DPO's batch size counts pairs, as its file's lines are. */
function resolveMethod(m: RequestedMethod, examples: number): JobMethod {
  const hyperparameters = resolveHyperparameters(m.hyperparameters, examples);
  if (m.type === "supervised") return { type: "supervised", supervised: { hyperparameters } };
  const beta = m.hyperparameters.beta === "auto" ? AUTO_BETA : m.hyperparameters.beta;
  return { type: "dpo", dpo: { hyperparameters: { ...hyperparameters, beta } } };
}

/** DPO trains on preference pairs and supervised fine-tuning on the other formats: a file of the wrong kind is a 400. */
function checkFileKind(method: JobMethod, f: FileRow, param: "training_file" | "validation_file"): void {
  const pairs = f.format === "preference";
  if (method.type === "dpo" && !pairs) {
    throw new ApiError("invalid_request", `${param}: file ${f.id} holds ${f.format} records; method.type "dpo" trains on preference pairs ({"input","preferred_output","non_preferred_output"} lines)`, param);
  }
  if (method.type === "supervised" && pairs) {
    throw new ApiError("invalid_request", `${param}: file ${f.id} holds preference pairs; train on them with method: {"type": "dpo"}`, param);
  }
}
