// Bounds a byte stream as it passes: a request body without a Content-Length (or with a false one) cannot
// stream past a limit, because the stream errors there and whatever was writing it aborts.

export interface CappedStream {
  stream: ReadableStream<Uint8Array>;
  /** The error the stream was cut with, or null while it has not passed the limit. */
  cut(): Error | null;
}

/** Passes `body` through until more than `maxBytes` have come, then errors with `tooLarge()` and cancels the source. */
export function capBytes(body: ReadableStream<Uint8Array>, maxBytes: number, tooLarge: () => Error): CappedStream {
  const source = body.getReader();
  let seen = 0;
  let failure: Error | null = null;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await source.read();
        if (done) return controller.close();
        seen += value.byteLength;
        if (seen > maxBytes) {
          failure = tooLarge();
          controller.error(failure);
          await source.cancel(failure).catch(() => {});
          return;
        }
        controller.enqueue(value);
      },
      cancel: (reason) => source.cancel(reason),
    },
    // Read only as fast as the consumer writes: nothing is buffered ahead of the blob store.
    { highWaterMark: 0 },
  );
  return { stream, cut: () => failure };
}
