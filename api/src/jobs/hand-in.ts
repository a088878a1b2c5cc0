// A job's hand-in: the adapter its runner put in the output folder is checked as it streams into the adapter's
// folder. adapter_config.json is read whole (it is bounded); adapter_model.safetensors passes to the blob store a
// chunk at a time while its header is checked from its first bytes and its data counted and hashed (the checks
// of a tenant upload, adapters/upload.ts), so a hand-in holds its config and header, never its 256 MiB.
import { adapterFileTypes } from "../adapters/store.js";
import { adapterFacts, AdapterWeightsCheck, configTooLarge, maxAdapterConfigBytes, parseAdapterConfig, type AdapterFacts } from "../adapters/validate.js";
import { putChecked } from "../blob/checked-put.js";
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
 * Checks the two output files (as validateAdapter would, and that r is the job's) while copying them under
 * `prefix`; throws ApiError invalid_file at the first fault, having stopped reading and cancelled both bodies.
 * A refused copy is not published (putChecked errors the stream, so the store aborts the write); the prefix is
 * not cleared here, as a concurrent complete of the same job may have written it (the job's end clears it).
 */
export async function copyHandedInAdapter(blobs: BlobStore, files: { config: BlobObject; weights: BlobObject }, prefix: string, check: HandInCheck): Promise<HandedInAdapter> {
  try {
    // A store's size is that of the body it streams: a config too large to be one is refused unread.
    if (files.config.size > maxAdapterConfigBytes) throw configTooLarge(files.config.size);
    const configBytes = await readAll(files.config);
    const { config, targets } = parseAdapterConfig(configBytes, check.maxRank);
    if (config.r !== check.rank) throw new ApiError("invalid_file", `${CONFIG}: r=${config.r} but the job asked for r=${check.rank}`, "outputs");
    const weights = new AdapterWeightsCheck(check.model);
    let facts: AdapterFacts | undefined;
    const stored = await putChecked(blobs, prefix + WEIGHTS, files.weights.body, adapterFileTypes[WEIGHTS], {
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
