// Stalls an attempt between two of its steps until the test lets it go: for races where something must happen
// meanwhile (a retry takes over the stalled attempt's Idempotency-Key once it went stale).

/** A gate: `reached` resolves when the stalled step is reached; `release()` lets it go on. */
export interface Stall {
  reached: Promise<void>;
  release(): void;
}

function gate(): Stall & { reach(): void; opened: Promise<void> } {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((ok) => (reach = ok));
  const opened = new Promise<void>((ok) => (release = ok));
  return { reached, release, reach, opened };
}

/** Stalls the next call of `obj[method]` (later calls run at once) before it runs. */
export function stallNextCall<T extends object>(obj: T, method: keyof T & string): Stall {
  const g = gate();
  const real = (obj[method] as (...a: unknown[]) => Promise<unknown>).bind(obj);
  Object.assign(obj, {
    [method]: async (...args: unknown[]) => {
      Object.assign(obj, { [method]: real });
      g.reach();
      await g.opened;
      return real(...args);
    },
  });
  return g;
}

/**
 * A request body that sends `bytes` up to `at`, then waits for release() before sending the rest: a client that
 * stalls mid-upload. `reached` resolves once the reader has taken the first part and asks for more.
 */
export function stalledBody(bytes: Uint8Array, at: number): Stall & { body: ReadableStream<Uint8Array> } {
  const g = gate();
  let sent = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (sent === 0) {
          controller.enqueue(bytes.slice(0, at));
          sent = at;
          return;
        }
        g.reach();
        await g.opened;
        controller.enqueue(bytes.slice(sent));
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { body, reached: g.reached, release: g.release };
}
