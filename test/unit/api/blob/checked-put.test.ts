// putChecked streams a source into the blob store through checks; whatever ends the write early (a check, the
// store's own error, a store that stops reading) also closes the source, so a blob read from the store (a job's
// hand-in) or a request body is not left open until collected.
import { describe, expect, it } from "vitest";
import { putChecked } from "../../../../api/src/blob/checked-put.js";
import type { BlobStore } from "../../../../api/src/blob/port.js";

/** A source of `n` one-byte chunks that records how many were pulled and whether it was cancelled. */
function source(n: number) {
  const seen = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (seen.pulled === n) return c.close();
        seen.pulled++;
        c.enqueue(new Uint8Array([seen.pulled]));
      },
      cancel() {
        seen.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { body, seen };
}

/** A store whose put reads `reads` chunks of the stream, then `ends` it as given. */
function store(reads: number, ends: "rejects" | "resolves"): BlobStore {
  return {
    async put(_key, body) {
      const reader = (body as ReadableStream<Uint8Array>).getReader();
      for (let i = 0; i < reads; i++) await reader.read();
      if (ends === "rejects") throw new Error("store down");
      return { size: reads };
    },
  } as BlobStore;
}

describe("putChecked", () => {
  it("cancels the source at a check's fault, before reading on", async () => {
    const { body, seen } = source(10);
    const fault = new Error("bad chunk");
    const checks = { chunk: (b: Uint8Array) => { if (b[0] === 2) throw fault; } };
    await expect(putChecked(store(10, "resolves"), "k", body, "application/octet-stream", checks)).rejects.toBe(fault);
    expect(seen).toEqual({ pulled: 2, cancelled: true });
  });

  it("cancels the source when the store fails part way", async () => {
    const { body, seen } = source(10);
    await expect(putChecked(store(3, "rejects"), "k", body, "application/octet-stream")).rejects.toThrow("store down");
    expect(seen).toEqual({ pulled: 3, cancelled: true });
  });

  it("cancels the source when the store returns before reading it all", async () => {
    const { body, seen } = source(10);
    await expect(putChecked(store(3, "resolves"), "k", body, "application/octet-stream")).rejects.toThrow("blob store returned before reading all of k");
    expect(seen).toEqual({ pulled: 3, cancelled: true });
  });
});
