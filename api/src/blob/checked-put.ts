// Streams an upload into the blob store through checks that run on each chunk as it passes: a failed check
// ends the stream with its error, so the store aborts the write instead of publishing it. Used by training
// files and adapter uploads alike, and (without the SHA-256) by checkpoint copies.
import { createSha256 } from "../files/sha256.js";
import type { BlobStore } from "./port.js";

export interface StreamChecks {
  /** Runs on each chunk before it is stored; throwing refuses the upload. */
  chunk(bytes: Uint8Array): void | Promise<void>;
  /** Runs once the source has ended, before the write completes; throwing refuses the upload. */
  end(): void | Promise<void>;
}

/**
 * Writes `source` to `key` through `checks`; resolves with the byte count and SHA-256 hex of what was stored, or
 * rejects with the first check's error, the source's, or the store's (the caller then removes `key`: a store
 * that resolved early may have written it).
 */
export async function putChecked(blobs: BlobStore, key: string, source: ReadableStream<Uint8Array>, contentType: string, checks: Partial<StreamChecks> = {}): Promise<{ bytes: number; sha256: string }> {
  const hash = createSha256();
  const { bytes } = await putStreamed(blobs, key, source, contentType, {
    async chunk(value) {
      await checks.chunk?.(value);
      hash.update(value);
    },
    end: checks.end,
  });
  return { bytes, sha256: hash.digestHex() };
}

/**
 * putChecked without the SHA-256, which costs ~8 s of CPU a GiB in plain TypeScript (a Worker's CPU budget): for
 * copies nothing needs the digest of. Resolves with the byte count read from `source` and the size the store says
 * it kept.
 */
export async function putStreamed(blobs: BlobStore, key: string, source: ReadableStream<Uint8Array>, contentType: string | undefined, checks: Partial<StreamChecks> = {}): Promise<{ bytes: number; stored: number }> {
  const reader = source.getReader();
  let bytes = 0;
  let failure: unknown = null;
  let complete = false;
  const fail = (e: unknown) => {
    failure ??= e;
    return failure;
  };
  const checked = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          await checks.end?.();
          complete = true;
          controller.close();
          return;
        }
        bytes += value.length;
        await checks.chunk?.(value);
        controller.enqueue(value);
      } catch (e) {
        controller.error(fail(e));
        reader.cancel().catch(() => {});
      }
    },
    cancel(reason) {
      fail(reason);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  // A write that ends early also closes the source: one read from the blob store (a job's hand-in) would
  // otherwise hold its file handle or connection until collected.
  const stop = (e: unknown) => {
    reader.cancel(e).catch(() => {});
    return e;
  };
  let stored: number;
  try {
    stored = (await blobs.put(key, checked, contentType ? { contentType } : {})).size;
  } catch (e) {
    throw stop(failure ?? e);
  }
  // A store that resolved without reading to the end (or swallowed our error) may have left a blob: the
  // caller, which removes `key` on any failure, must hear of it.
  if (failure || !complete) throw stop(failure ?? new Error(`blob store returned before reading all of ${key}`));
  return { bytes, stored };
}
