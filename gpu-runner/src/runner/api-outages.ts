// Tries a training attempt's report or hand-in again while the API or the blob store stays unreachable, so
// that an API restart or deploy costs neither the training nor a trained job's hand-in.
import { ApiCallError } from "./api-client.js";

/**
 * How long a trained job's hand-in keeps being tried while the API stays unreachable (each try itself retries
 * for ~10 s): long enough for an API restart or deploy, short enough that a broken complete does not hold the
 * job for good.
 */
const handInRetryMs = 10 * 60_000;
/** The pause between two tries of the hand-in. */
const handInPauseMs = 1000;

/**
 * Runs `attempt`, trying again after a retryable ApiCallError for up to handInRetryMs. `giveUp` says the attempt
 * should not wait (a shutdown, a lost lease); `waiting` hears of each error that is tried again.
 */
export async function throughOutages<T>(attempt: () => Promise<T>, opts: { giveUp(): boolean; waiting(err: ApiCallError): void }): Promise<T> {
  const giveUpAt = Date.now() + handInRetryMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ApiCallError && err.retryable) || opts.giveUp() || Date.now() >= giveUpAt) throw err;
      opts.waiting(err);
      await new Promise((ok) => setTimeout(ok, handInPauseMs));
    }
  }
}
