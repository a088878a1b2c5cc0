// One download that several callers wait on (two jobs, or a job and the serving side, needing the same base
// model): each caller may give up on its own, and the download stops only when every one of them has.

/** A download several callers wait on: it stops only when every one of them has given up. */
export type SharedDownload<T> = { promise: Promise<T>; abort: AbortController; waiting: number; forget(): void };

/** Starts `run` as a shared download; `forget` runs once it settles (or all gave up), so the next caller starts afresh. */
export function startShared<T>(run: (signal: AbortSignal) => Promise<T>, onForget: (entry: SharedDownload<T>) => void): SharedDownload<T> {
  const abort = new AbortController();
  const promise = run(abort.signal);
  let forgotten = false;
  const entry: SharedDownload<T> = {
    promise,
    abort,
    waiting: 0,
    forget: () => {
      if (forgotten) return;
      forgotten = true;
      onForget(entry);
    },
  };
  promise.then(entry.forget, entry.forget);
  return entry;
}

/**
 * Waits on a shared download as one of its callers. A caller that gives up (its job was cancelled, paused or
 * replaced by a newer lease) stops waiting at once, but the download goes on for the others; only when every
 * caller has given up is it aborted.
 */
export function waitFor<T>(shared: SharedDownload<T>, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  shared.waiting++;
  return new Promise<T>((ok, fail) => {
    let waiting = true;
    const leave = () => {
      if (!waiting) return;
      waiting = false;
      signal?.removeEventListener("abort", giveUp);
      shared.waiting--;
    };
    const giveUp = () => {
      leave();
      if (shared.waiting === 0) {
        shared.forget();
        shared.abort.abort(signal!.reason);
      }
      fail(signal!.reason);
    };
    signal?.addEventListener("abort", giveUp, { once: true });
    shared.promise.then(
      (value) => (leave(), ok(value)),
      (err: unknown) => (leave(), fail(err)),
    );
  });
}
