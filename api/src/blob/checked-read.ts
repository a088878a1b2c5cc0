// Reads a stream through checks that run on each chunk as it passes, holding one chunk at a time: putChecked's
// checks without the write, for bytes the store copies itself (a job's hand-in, jobs/hand-in.ts).
import { createSha256 } from "../files/sha256.js";
import type { StreamChecks } from "./checked-put.js";

/**
 * Reads `source` to its end through `checks`; resolves with its byte count and SHA-256 hex, or rejects with the
 * first check's error or the source's, having cancelled the rest of the source.
 */
export async function readChecked(source: ReadableStream<Uint8Array>, checks: Partial<StreamChecks> = {}): Promise<{ bytes: number; sha256: string }> {
  const hash = createSha256();
  const reader = source.getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      bytes += value.length;
      await checks.chunk?.(value);
      hash.update(value);
    }
    await checks.end?.();
  } catch (e) {
    // Stopped at the first fault: the rest is not read (a file handle or an S3 connection is released).
    reader.cancel(e).catch(() => {});
    throw e;
  }
  return { bytes, sha256: hash.digestHex() };
}
