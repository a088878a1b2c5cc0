// Adapter uploads are buffered whole while the form is parsed (up to TUNESERVE_MAX_ADAPTER_BYTES, held two or
// three times over), so an API process receives only TUNESERVE_MAX_ADAPTER_UPLOADS of them at once. The others
// wait for a slot without their bodies being read, and after a while get 503: concurrent uploads from one key
// can no longer take the process's memory.
import type { Deps } from "../deps.js";
import { ApiError } from "../errors.js";

/** How long an upload waits for a slot before it is answered 503 (a retry then waits again). */
export const SLOT_WAIT_MS = 60_000;

/** A counting semaphore whose waiters are served in arrival order and give up after `waitMs`. */
export class UploadSlots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  /** Resolves with the slot's release once one is free; rejects with 503 after `waitMs`. */
  async take(waitMs = SLOT_WAIT_MS): Promise<() => void> {
    if (this.busy < this.size) {
      this.busy++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        const seconds = Math.ceil(waitMs / 1000);
        reject(new ApiError("unavailable", `this server is receiving ${this.size} adapter uploads already (TUNESERVE_MAX_ADAPTER_UPLOADS) and none ended within ${seconds} s; retry`, null, { "Retry-After": "5" }));
      }, waitMs);
      this.waiting.push(wake);
    });
    // The releasing upload handed its slot over: busy stays as it was.
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.busy--;
    };
  }
}

/** One set of slots per app (tests start several in a process). */
const slotsOf = new WeakMap<Deps, UploadSlots>();

/** Waits for one of the process's adapter-upload slots; call the answer to give it back. */
export function takeAdapterUploadSlot(deps: Deps): Promise<() => void> {
  let slots = slotsOf.get(deps);
  if (!slots) slotsOf.set(deps, (slots = new UploadSlots(deps.config.TUNESERVE_MAX_ADAPTER_UPLOADS)));
  return slots.take();
}
