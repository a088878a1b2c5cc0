// Copying an object inside the blob store: by the store itself where it can (S3's CopyObject, a file copy), its
// bytes never passing through the API; else (the R2 binding) streamed through, bounded as it streams. Either way
// the answer is the size of what was stored, for the caller to measure against its bounds.
import { putStreamed } from "./checked-put.js";
import type { BlobStore } from "./port.js";

/**
 * Copies `from` to `to`; answers the size stored, or null when `from` does not exist. A store without a copy of
 * its own streams the object: one over `maxBytes` by its stored size is not copied (its size is answered, for
 * the caller to refuse), and one whose body runs past `maxBytes` is cut there and throws `tooLarge()`, the write
 * aborted. Nothing needs the bytes' SHA-256 here, which in plain TypeScript costs seconds of CPU per GiB.
 */
export async function copyBlob(blobs: BlobStore, from: string, to: string, maxBytes: number, tooLarge: () => Error): Promise<{ size: number } | null> {
  if (blobs.copy) return blobs.copy(from, to);
  const obj = await blobs.get(from);
  if (!obj) return null;
  if (obj.size > maxBytes) {
    await obj.body.cancel().catch(() => {});
    return { size: obj.size };
  }
  let read = 0;
  // putStreamed closes the read if the store fails the write before reading it (a file handle or an S3 connection
  // would otherwise wait for the collector); a bound that fails errs the stream, so the store aborts the write.
  const { bytes, stored } = await putStreamed(blobs, to, obj.body, obj.contentType, {
    chunk(chunk) {
      read += chunk.length;
      if (read > maxBytes) throw tooLarge();
    },
  }).catch((e: unknown) => {
    // A store may wrap the stream's error in its own.
    throw read > maxBytes ? tooLarge() : e;
  });
  if (stored !== bytes) throw new Error(`copying ${from}: the store kept ${stored} of its ${bytes} bytes`);
  return { size: stored };
}
