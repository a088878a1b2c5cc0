// A request body read through a byte limit: the stream errors once more than `max` bytes have passed, so a
// streamed upload without a Content-Length (or with a false one) cannot run on past its limit.

/** `body`, erroring with `tooLarge()` as soon as more than `max` bytes have been read from it. */
export function countedBody(body: ReadableStream<Uint8Array>, max: number, tooLarge: () => Error): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let n = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const { value, done } = await reader.read();
      if (done) return c.close();
      n += value.length;
      if (n > max) {
        reader.cancel().catch(() => {});
        return c.error(tooLarge());
      }
      c.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
