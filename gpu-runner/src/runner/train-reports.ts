// What a training attempt reports to the API besides progress: validation results as job events, checkpoints
// uploaded to the blob store and recorded, and the metrics the API accepts.
import { join } from "node:path";
import type { TrainEvent } from "../engine/train/loop.js";
import type { Holder, JobEventInput, RunnerApiClient } from "./api-client.js";
import { plainFileName } from "./attempt-inputs.js";
import { uploadFrom } from "./transfer.js";

/** Metrics the API accepts: finite numbers only. */
export const finite = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === "number" && Number.isFinite(v)));

/** The job event of a validation pass: DPO's loss and reward accuracy, or SFT's loss and token accuracy. */
export function validationEvent(e: Extract<TrainEvent, { type: "validation" }>): JobEventInput {
  if (e.rewardAccuracy !== undefined) {
    const data = { step: e.step, valid_loss: e.loss, valid_reward_accuracy: e.rewardAccuracy };
    return { message: `Step ${e.step}: validation DPO loss=${e.loss.toFixed(4)}, reward accuracy=${e.rewardAccuracy.toFixed(4)}`, data };
  }
  const data = { step: e.step, valid_loss: e.loss, valid_mean_token_accuracy: e.tokenAccuracy };
  return { message: `Step ${e.step}: validation loss=${e.loss.toFixed(4)}, token accuracy=${(e.tokenAccuracy ?? NaN).toFixed(4)}`, data };
}

/** Uploads a checkpoint's files to the PUT URLs the API hands out, then records it; returns the files' names. */
export async function uploadCheckpoint(client: RunnerApiClient, jobId: string, holder: Holder, e: Extract<TrainEvent, { type: "checkpoint" }>, signal: AbortSignal): Promise<string[]> {
  const names = e.files.map(plainFileName);
  const { urls } = await client.checkpointUploads(jobId, holder, e.step, names);
  for (const name of names) await uploadFrom(join(e.dir, name), urls[name], signal);
  // The answer may take minutes (the API copies the files first): a lost lease, or a shutdown past its wait, stops it.
  await client.recordCheckpoint(jobId, holder, e.step, finite(e.metrics), e.version, signal);
  return names;
}
