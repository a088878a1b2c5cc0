import { describe, expect, it } from "vitest";
import { capBytes } from "../../../../api/src/lib/byte-cap.js";

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

describe("capBytes", () => {
  it("passes a body within the limit on unchanged, and is not cut", async () => {
    const capped = capBytes(source(4, 100).body, 400, () => new Error("too large"));
    expect(await drain(capped.stream)).toBe(400);
    expect(capped.cut()).toBeNull();
  });

  it("errors as soon as the limit is passed, stops reading the body, and says it was cut", async () => {
    const { body, state } = source(1000, 100);
    const capped = capBytes(body, 250, () => new Error("too large"));
    await expect(drain(capped.stream)).rejects.toThrow("too large");
    expect(state.read).toBe(300);
    expect(state.cancelled).toBe(true);
    expect(capped.cut()?.message).toBe("too large");
  });
});
