// Bounds on what a runner stores through presigned PUT links, checked when it reports the upload. The API's own
// /blobs/ links stop a PUT at TUNESERVE_MAX_BLOB_BYTES, but an S3 or R2 presigned PUT cannot be bounded when it is
// signed: so a checkpoint's files are measured as the store lists them before the checkpoint is recorded.
import type { BlobInfo } from "../blob/port.js";
import type { ApiConfig } from "../config.js";
import { adapterFiles } from "./protocol.js";

export type UploadLimits = Pick<ApiConfig, "TUNESERVE_MAX_BLOB_BYTES" | "TUNESERVE_MAX_ADAPTER_BYTES">;

/**
 * Why the objects listed under `prefix` are out of bounds, or null: each must be within TUNESERVE_MAX_BLOB_BYTES,
 * and the PEFT adapter among them (a checkpoint is a callable model: runners load it as they load any adapter)
 * within TUNESERVE_MAX_ADAPTER_BYTES, as an adapter a tenant uploads.
 */
export function outOfUploadBounds(listed: readonly BlobInfo[], prefix: string, limits: UploadLimits): string | null {
  const name = (o: BlobInfo) => o.key.slice(prefix.length);
  const large = listed.find((o) => o.size > limits.TUNESERVE_MAX_BLOB_BYTES);
  if (large) return `${name(large)} is ${large.size} bytes, over TUNESERVE_MAX_BLOB_BYTES=${limits.TUNESERVE_MAX_BLOB_BYTES}`;
  const adapter = listed.filter((o) => (adapterFiles as readonly string[]).includes(name(o)));
  const total = adapter.reduce((n, o) => n + o.size, 0);
  if (total <= limits.TUNESERVE_MAX_ADAPTER_BYTES) return null;
  return `its adapter (${adapter.map(name).sort().join(", ")}) is ${total} bytes, over TUNESERVE_MAX_ADAPTER_BYTES=${limits.TUNESERVE_MAX_ADAPTER_BYTES}`;
}
