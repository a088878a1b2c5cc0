// The inputs of one job attempt: the lease's files fetched into the attempt's folder (the base model, the
// training and validation data, the adapter a job continues, the checkpoint it resumes from), and the
// engine's TrainJobSpec that trains on them.
import { join } from "node:path";
import { AUTO_SEQ_LEN } from "../../../api/src/jobs/settings.js";
import { weightsDigest } from "../engine/model/weights-digest.js";
import type { TrainJobSpec } from "../engine/train/loop.js";
import type { LeaseAnswer } from "./api-client.js";
import { leaseFileName } from "./lease-file-name.js";
import type { BaseModelCopy, ModelCache } from "./model-cache.js";
import { stepSplit } from "./step-split.js";
import { downloadTo } from "./transfer.js";

/** A checkpoint file name as the protocol accepts it (plain names, no folders). */
export function plainFileName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw new Error(`file "${name}": the runner protocol takes plain file names only`);
  return name;
}

export type AttemptSettings = {
  models: ModelCache;
  checkpointEvery: number;
  /** false: training threads never spin (this runner also serves inference on the same cores); true: as TUNESERVE_ORT_SPIN says. */
  spinTraining: boolean;
};

/**
 * Fetches the attempt's inputs into `dir`; the spec writes its adapter and checkpoints there too. The base
 * model's copy is held for the attempt: release `baseModel` once training is over (on a failure here it is).
 */
export async function fetchAttemptInputs(lease: LeaseAnswer, dir: string, settings: AttemptSettings, signal: AbortSignal): Promise<{ spec: TrainJobSpec; trainingBytes: number; baseModel: BaseModelCopy }> {
  const baseModel = await settings.models.acquire(lease.urls.base_model, signal);
  try {
    return { ...(await fetchTheRest(lease, dir, baseModel, settings, signal)), baseModel };
  } catch (err) {
    baseModel.release();
    throw err;
  }
}

async function fetchTheRest(lease: LeaseAnswer, dir: string, baseModel: BaseModelCopy, settings: AttemptSettings, signal: AbortSignal): Promise<{ spec: TrainJobSpec; trainingBytes: number }> {
  const { job, urls } = lease;
  const dataPath = join(dir, "train.jsonl");
  const trainingBytes = await downloadTo(urls.training_file.url, dataPath, signal);
  let validationPath: string | undefined;
  if (urls.validation_file) {
    validationPath = join(dir, "validation.jsonl");
    await downloadTo(urls.validation_file.url, validationPath, signal);
  }
  let initAdapter: string | undefined;
  if (urls.initial_adapter) {
    initAdapter = join(dir, "initial-adapter");
    for (const [name, url] of Object.entries(urls.initial_adapter.files)) await downloadTo(url, join(initAdapter, plainFileName(name)), signal);
  }
  let resumeFrom: string | undefined;
  if (urls.checkpoint) {
    resumeFrom = join(dir, "resume", String(urls.checkpoint.step));
    for (const [name, url] of Object.entries(urls.checkpoint.files)) await downloadTo(url, join(resumeFrom, plainFileName(name)), signal);
  }
  const hp = job.hyperparameters;
  const dpo = job.method.type === "dpo" ? job.method.dpo.hyperparameters : null;
  const spec: TrainJobSpec = {
    modelDir: baseModel.dir,
    // The id, as the API knows the model: a cached copy's folder is named by the revision of its files.
    baseModelName: urls.base_model.id,
    // The weights' identity for the checkpoints (a resume on replaced weights is refused), digested here, where it
    // is remembered per copy, rather than by every attempt's training worker.
    ...(baseModel.revision ? { baseRevision: baseModel.revision } : {}),
    baseWeightsSha256: await weightsDigest(baseModel.dir, signal),
    dataPath,
    validationPath,
    // Messages become the job's events and error: they name what the job's user knows, the API's file ids and
    // names and seq_len, not the local copies above.
    dataName: leaseFileName(urls.training_file),
    validationName: urls.validation_file ? leaseFileName(urls.validation_file) : undefined,
    seqLenName: "seq_len",
    outDir: join(dir, "adapter"),
    checkpointDir: join(dir, "checkpoints"),
    method: "lora",
    // The API checked that the file holds pairs for DPO and none for supervised; the engine checks again.
    objective: dpo ? "dpo" : "sft",
    ...(dpo ? { beta: dpo.beta } : {}),
    rank: job.adapter.r,
    alpha: job.adapter.alpha,
    useRslora: job.adapter.use_rslora,
    dropout: job.adapter.dropout,
    targets: job.adapter.target_modules,
    epochs: hp.n_epochs,
    lr: hp.learning_rate,
    // (A job from before seq_len was stored trains at the default, as the API says.)
    ...stepSplit(hp.batch_size, hp.seq_len ?? AUTO_SEQ_LEN, dpo ? 2 : 1),
    seqLen: hp.seq_len,
    seed: job.seed,
    checkpointEvery: settings.checkpointEvery,
    initAdapter,
    resumeFrom,
    // undefined leaves it to the session's default (TUNESERVE_ORT_SPIN), read where the session is made.
    spin: settings.spinTraining ? undefined : false,
  };
  return { spec, trainingBytes };
}
