// Completing a job: check the adapter the runner uploaded to the job's output folder (the same validation as a
// tenant upload, as it streams: hand-in.ts), store it as the tenant's adapter, mark the job succeeded and bill
// its trained tokens once.
import { eq, sql } from "drizzle-orm";
import type { AdapterRow } from "../adapters/models.js";
import { adapterRow } from "../adapters/store.js";
import { blobKeys, type BlobObject } from "../blob/port.js";
import { runBatch } from "../db/batch.js";
import { adapters, baseModels, files, jobEvents, jobs } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../errors.js";
import { modelSummarySchema } from "../lib/model-shapes.js";
import { newId } from "../lib/ids.js";
import { trainingUsageKey, usageInsertFrom } from "../usage/record.js";
import { discardEndedJobBlobs } from "./discard.js";
import { copyHandedInAdapter } from "./hand-in.js";
import { holds, leaseLost } from "./holder.js";
import { adapterFiles, type Holder } from "./protocol.js";
import { jobAdapter, jobAdapterId, type JobRow } from "./shape.js";
import { findJob, heldBy, insertWhereJob } from "./store.js";
import { writeResultsBlob } from "./results-file.js";

const WEIGHTS = "adapter_model.safetensors";

export interface Completion {
  job: JobRow;
  /** null on a retry after the tenant deleted the model. */
  adapter: AdapterRow | null;
}

/**
 * Validates the two output files of the completing attempt as it copies them to the adapter's folder. Where the
 * store has a copy of its own, the weights are first copied to a key of this call's (under the job's outputs, so
 * the job's end deletes it should this call not), which no link writes: measured, checked and published from
 * there (hand-in.ts), so that what the runner PUTs at its output keys meanwhile is neither checked nor published.
 */
async function storeOutputs(deps: Deps, job: JobRow, holder: Holder): Promise<AdapterRow> {
  const staged = deps.blobs.copy ? blobKeys.jobHandIn(job.tenantId, job.id, newId("handin-")) + WEIGHTS : null;
  try {
    return await checkOutputs(deps, job, holder, staged);
  } finally {
    if (staged) await deps.blobs.delete(staged).catch((err: unknown) => console.error(`deleting ${staged} failed:`, err));
  }
}

async function checkOutputs(deps: Deps, job: JobRow, holder: Holder, staged: string | null): Promise<AdapterRow> {
  const { blobs, db, config } = deps;
  const now = deps.now();
  const out = blobKeys.jobOutput(job.tenantId, job.id, job.attempt);
  const source = (name: string) => (name === WEIGHTS && staged ? staged : out + name);
  const notUploaded = (name: string) => new ApiError("invalid_request", `${name} was not uploaded; PUT it to the lease's urls.outputs["${name}"] before complete`, "outputs");
  // Deleted since it was measured: the job ended meanwhile (a cancel's clean-up), or the runner's files went.
  const gone = async (name: string) => {
    const latest = await findJob(db, job.id);
    return !latest || !holds(latest, holder) ? leaseLost(latest, job.id, holder) : notUploaded(name);
  };
  const sizes: Record<string, number> = {};
  for (const name of adapterFiles) {
    const head = await blobs.head(out + name);
    if (!head) throw notUploaded(name);
    sizes[name] = head.size;
  }
  const measure = async () => {
    const total = sizes[adapterFiles[0]] + sizes[adapterFiles[1]];
    if (total <= config.TUNESERVE_MAX_ADAPTER_BYTES) return;
    // An S3 or R2 link takes any size: what it let through is deleted now, not held until the job ends.
    await Promise.all(adapterFiles.map((name) => blobs.delete(out + name)));
    throw new ApiError("invalid_file", `the adapter is ${total} bytes, over TUNESERVE_MAX_ADAPTER_BYTES=${config.TUNESERVE_MAX_ADAPTER_BYTES}; its uploaded files were deleted`, "outputs");
  };
  await measure();
  if (staged) {
    // Measured again as copied (its size read back): the runner may have PUT it again since.
    const copied = await blobs.copy!(out + WEIGHTS, staged);
    if (!copied) throw await gone(WEIGHTS);
    sizes[WEIGHTS] = copied.size;
    await measure();
  }
  const model = await db.query.baseModels.findFirst({ where: eq(baseModels.id, job.model) });
  if (!model) throw new ApiError("conflict", `base model ${job.model} was removed while the job ran`, "model");
  const asked = jobAdapter(job);
  // The job's rank was within the limit when it was created; a limit lowered since does not waste the training.
  const check = { model: modelSummarySchema.parse(JSON.parse(model.config)), maxRank: Math.max(config.TUNESERVE_MAX_LORA_RANK, asked.r), rank: asked.r };
  const objects = await Promise.all(adapterFiles.map((name) => blobs.get(source(name))));
  const missing = adapterFiles.find((_, i) => !objects[i]);
  if (missing) {
    // The other file's stream is closed, not left holding a file handle (or an S3 connection) until collected.
    await Promise.all(objects.map((o) => o?.body.cancel()));
    throw await gone(missing);
  }
  const [configFile, weightsFile] = objects as BlobObject[];
  const id = jobAdapterId(job.id);
  const adapter = await copyHandedInAdapter(blobs, { config: configFile, weights: weightsFile }, blobKeys.adapter(job.tenantId, id), check, staged).catch(async (e: unknown) => {
    // The staged copy deleted before it was published: by the job's end (nothing else deletes it meanwhile).
    if (staged && !(e instanceof ApiError) && !(await blobs.head(staged))) throw await gone(WEIGHTS);
    throw e;
  });
  return adapterRow(id, { tenantId: job.tenantId, baseModel: job.model, suffix: job.suffix, jobId: job.id, ...adapter, now });
}

/**
 * Completes a job for the runner holding it, in one atomic batch: the job moves to succeeded (only for the
 * holder), and its adapter row, results file row, usage event and success event are inserted only where
 * that update won. A retry by the same runner after success returns the same answer, without the adapter
 * if the tenant has deleted it since; any other runner gets lease_lost.
 */
export async function completeJob(deps: Deps, opts: { jobId: string; holder: Holder; trainedTokens: number; metrics?: Record<string, number> }): Promise<Completion> {
  const { db } = deps;
  const job = await findJob(db, opts.jobId);
  if (job && holds(job, opts.holder, "succeeded")) {
    const adapter = await db.query.adapters.findFirst({ where: eq(adapters.id, jobAdapterId(job.id)) });
    return { job, adapter: adapter ?? null };
  }
  if (!job || !holds(job, opts.holder)) throw leaseLost(job, opts.jobId, opts.holder);

  const adapter = await storeOutputs(deps, job, opts.holder);
  const now = deps.now();
  const results = await writeResultsBlob(deps, job, now);
  // True after this batch's update, and only this one's: a concurrent complete by the same lease that lost
  // the update (the job already succeeded) made another results file id.
  const won = sql`${heldBy(job.id, opts.holder, "succeeded")} and ${jobs.resultFile} = ${results.id}`;
  const usage = { idempotencyKey: trainingUsageKey(job.id), tenantId: job.tenantId, kind: "training_tokens" as const, model: job.model, quantity: opts.trainedTokens, ref: job.id, now };
  const metrics = opts.metrics && Object.keys(opts.metrics).length > 0 ? ` (${Object.entries(opts.metrics).map(([k, v]) => `${k}=${v}`).join(", ")})` : "";
  const event = { jobId: job.id, level: "info", type: "message", message: `The job has successfully completed${metrics}; new model: ${adapter.modelId}`, data: opts.metrics ? JSON.stringify(opts.metrics) : null, createdAt: now };
  const [updated] = await runBatch(db, [
    db
      .update(jobs)
      .set({ status: "succeeded", fineTunedModel: adapter.modelId, resultFile: results.id, trainedTokens: opts.trainedTokens, finishedAt: now, leaseExpiresAt: null })
      .where(heldBy(job.id, opts.holder))
      .returning(),
    insertWhereJob(db, adapters, adapter, won).onConflictDoNothing(),
    insertWhereJob(db, files, results, won),
    usageInsertFrom(db, usage, jobs, won),
    insertWhereJob(db, jobEvents, { id: newId("ftevent-"), ...event }, won),
  ]);
  if ((updated as JobRow[]).length === 0) {
    // Cancelled or taken over meanwhile; a concurrent complete by this same lease counts as success.
    // (This attempt's results blob stays unreferenced.)
    const latest = await findJob(db, job.id);
    if (!(latest && holds(latest, opts.holder, "succeeded"))) {
      // The end's own clean-up may have run before this complete copied the adapter and wrote its results: they
      // would stay stored, for a job that has no model, with nothing left to delete them.
      if (latest) await discardEndedJobBlobs(deps.blobs, [latest]);
      throw leaseLost(latest, job.id, opts.holder);
    }
    return completeJob(deps, opts);
  }
  // The output folder stays until the model is deleted: a retried or concurrent complete may still read it.
  const stored = await db.query.adapters.findFirst({ where: eq(adapters.id, adapter.id) });
  return { job: (updated as JobRow[])[0], adapter: stored ?? adapter };
}
