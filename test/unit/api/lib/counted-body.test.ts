import { describe, expect, it } from "vitest";
import { countedBody } from "../../../../api/src/lib/counted-body.js";

/** A body of `chunks` chunks of `size` bytes; `read` counts the bytes taken from it. */
function source(chunks: number, size: number) {
  const state = { read: 0, cancelled: false };
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i++ === chunks) return c.close();
      state.read += size;
      c.enqueue(new Uint8Array(size));
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, state };
}

const drain = async (s: ReadableStream<Uint8Array>) => {
  const reader = s.getReader();
  let n = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.length;
  return n;
};

describe("countedBody", () => {
  it("passes a body within the limit on unchanged", async () => {
    expect(await drain(countedBody(source(4, 100).body, 400, () => new Error("too large")))).toBe(400);
  });

  it("errors as soon as the limit is passed, and stops reading the body", async () => {
    const { body, state } = source(1000, 100);
    await expect(drain(countedBody(body, 250, () => new Error("too large")))).rejects.toThrow("too large");
    expect(state.read).toBe(300);
    expect(state.cancelled).toBe(true);
  });
});
