// A job's hand-in: the adapter its runner put in the output folder is checked as it is copied into the adapter's
// folder. adapter_config.json is read whole (it is bounded); adapter_model.safetensors is read a chunk at a time
// while its header is checked from its first bytes and its data counted and hashed (the checks of a tenant upload,
// adapters/upload.ts), so a hand-in holds its config and header, never its 256 MiB. Where the store has a copy of
// its own, the weights are read from a copy of the hand-in's (complete-job.ts stages it) and that copy, once
// checked, is copied into the adapter's folder: the API writes none of their bytes. Else they stream through the
// checks into the adapter's folder.
import { adapterFileTypes } from "../adapters/store.js";
import { adapterFacts, AdapterWeightsCheck, configTooLarge, maxAdapterConfigBytes, parseAdapterConfig, type AdapterFacts } from "../adapters/validate.js";
import { putChecked, type StreamChecks } from "../blob/checked-put.js";
import { readChecked } from "../blob/checked-read.js";
import { readAll, type BlobObject, type BlobStore } from "../blob/port.js";
import { ApiError } from "../errors.js";
import type { ModelSummary } from "../lib/model-shapes.js";

const CONFIG = "adapter_config.json";
const WEIGHTS = "adapter_model.safetensors";

export interface HandedInAdapter {
  facts: AdapterFacts;
  /** Bytes of both files together. */
  sizeBytes: number;
  weightsSha256: string;
}

export interface HandInCheck {
  model: ModelSummary;
  maxRank: number;
  /** The job's rank: the adapter's must be the same. */
  rank: number;
}

/**
 * Publishes the weights at `key`: read from `staged` (a copy no one else writes) through `checks`, then copied
 * there by the store, so that what is published is what was checked; or, with no staged copy, streamed through
 * `checks` into `key`. Nothing is published when a check fails.
 */
async function publishWeights(blobs: BlobStore, weights: BlobObject, staged: string | null, key: string, checks: Partial<StreamChecks>): Promise<{ bytes: number; sha256: string }> {
  if (!staged || !blobs.copy) return putChecked(blobs, key, weights.body, adapterFileTypes[WEIGHTS], checks);
  const read = await readChecked(weights.body, checks);
  const copied = await blobs.copy(staged, key);
  if (copied?.size !== read.bytes) throw new Error(`publishing ${key}: the store copied ${copied ? `${copied.size} bytes` : "nothing"} of the ${read.bytes} checked`);
  return read;
}

/**
 * Checks the two output files (as validateAdapter would, and that r is the job's) while copying them under
 * `prefix`; throws ApiError invalid_file at the first fault, having stopped reading and cancelled both bodies.
 * `files.weights` is read from `staged` where complete staged a copy of them (see above). A refused copy is not
 * published (putChecked errors the stream, so the store aborts the write; a staged copy is copied only once
 * checked); the prefix is not cleared here, as a concurrent complete of the same job may have written it (the
 * job's end clears it).
 */
export async function copyHandedInAdapter(blobs: BlobStore, files: { config: BlobObject; weights: BlobObject }, prefix: string, check: HandInCheck, staged: string | null = null): Promise<HandedInAdapter> {
  try {
    // A store's size is that of the body it streams: a config too large to be one is refused unread.
    if (files.config.size > maxAdapterConfigBytes) throw configTooLarge(files.config.size);
    const configBytes = await readAll(files.config);
    const { config, targets } = parseAdapterConfig(configBytes, check.maxRank);
    if (config.r !== check.rank) throw new ApiError("invalid_file", `${CONFIG}: r=${config.r} but the job asked for r=${check.rank}`, "outputs");
    const weights = new AdapterWeightsCheck(check.model);
    let facts: AdapterFacts | undefined;
    const stored = await publishWeights(blobs, files.weights, staged, prefix + WEIGHTS, {
      chunk(bytes) {
        const header = weights.push(bytes);
        // The tensors are checked as soon as the header is in, before any of their data is stored.
        if (header) facts = adapterFacts(header, config, targets, check.model);
      },
      end() {
        weights.end();
      },
    });
    facts ??= adapterFacts(weights.end(), config, targets, check.model);
    await blobs.put(prefix + CONFIG, configBytes, { contentType: adapterFileTypes[CONFIG] });
    return { facts, sizeBytes: configBytes.length + stored.bytes, weightsSha256: stored.sha256 };
  } finally {
    // A body never read (refused before its turn) is closed, not left holding a file handle or an S3 connection.
    await Promise.all([files.config.body, files.weights.body].map((b) => (b.locked ? undefined : b.cancel().catch(() => {}))));
  }
}
