// Why a runner could not start, in the operator's terms: which setting to check when the API refuses its token or
// cannot be reached at all (the protocol's own message says what happened, not which flag or variable to fix).
import { ApiCallError } from "./api-client.js";
import type { RunnerConfig } from "./config.js";

/** `err` with the setting to check added when the API refused the runner token (401) or never answered. */
export function explainStartFailure(err: unknown, config: Pick<RunnerConfig, "apiUrl">): unknown {
  if (!(err instanceof ApiCallError)) return err;
  if (err.status === 401) {
    return new Error(`${err.message}: --token / TUNESERVE_RUNNER_TOKEN must be the API's TUNESERVE_RUNNER_TOKEN`);
  }
  if (err.status === null && err.retryable) {
    return new Error(`${err.message}: is the API at ${config.apiUrl} (--api-url / TUNESERVE_API_URL) up and reachable from here?`);
  }
  return err;
}
