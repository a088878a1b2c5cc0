// The base model's weights in a checkpoint's fingerprint: a LoRA adapter is a correction to one set of weights,
// so a run resumed on others (the model's files replaced since) would train half an adapter for each and fit
// neither. The digest decides; the revision (a runner's blob-store copy) only names the files in messages.
import { CheckpointMismatch } from "./spec.js";

type BaseWeights = { sha256: string; revision: string | null };

/** The fingerprint entry for the weights of a run: their digest (weightsDigest) and the API's revision, if known. */
export function baseWeightsIdentity(sha256: string, revision: string | null): string {
  return JSON.stringify({ sha256, revision } satisfies BaseWeights);
}

function parse(identity: string): BaseWeights | null {
  try {
    const v = JSON.parse(identity) as Partial<BaseWeights> | null;
    return v && typeof v.sha256 === "string" ? { sha256: v.sha256, revision: typeof v.revision === "string" ? v.revision : null } : null;
  } catch {
    return null;
  }
}

const described = (w: BaseWeights) => `${w.revision === null ? "a local folder" : `revision ${w.revision}`} (sha256 ${w.sha256.slice(0, 12)}…)`;

/**
 * Refuses a checkpoint trained on other base weights than this run's. A checkpoint written before the weights
 * joined the fingerprint (no entry) resumes as before; so does one of the same weights under another revision
 * (the same files uploaded again).
 */
export function checkBaseWeights(checkpoint: string, saved: string | number | boolean | null | undefined, current: string): void {
  if (saved === undefined || saved === null) return;
  const then = parse(String(saved));
  const now = parse(current);
  if (then && now && then.sha256 === now.sha256) return;
  const was = then ? described(then) : "unknown weights";
  const is = now ? described(now) : "unknown weights";
  throw new CheckpointMismatch(
    `${checkpoint}: checkpoint was trained on other base model weights: ${was}, and this run has ${is}; the base model's files were replaced since, and an adapter trained on both would fit neither. Start a new fine-tuning job to train on the current weights`,
  );
}
