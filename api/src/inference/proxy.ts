// Sends one generation to the best runner that takes it: a runner that is full (429), unreachable, refuses
// the runner token or no longer serves the model is skipped; when every runner was full the caller gets 429 + Retry-After.
// A runner that goes silent and fails its health check is skipped too, or its answer cut off (runner-watch.ts).
import { ApiError } from "../errors.js";
import type { GenerateRequestInput } from "./runner-protocol.js";
import type { RunnerTarget } from "./runners.js";
import { RUNNER_WATCH, RunnerWatch, type WatchTimes } from "./runner-watch.js";

export type RunnerCall = { runner: RunnerTarget; response: Response };

/** Seconds a caller should wait when all runners are full. */
const RETRY_AFTER = "1";

/**
 * Runners this API process found silent or unreachable, until when they are tried last: each call would
 * otherwise wait out the watch again until the runner's missed heartbeats take it off the live list.
 */
const suspects = new Map<string, number>();
const SUSPECT_MS = 60_000;

/** The targets with recent suspects moved to the end (still tried: one may be the only runner). */
function suspectsLast(targets: RunnerTarget[], now = Date.now()): RunnerTarget[] {
  for (const [id, until] of suspects) if (until <= now) suspects.delete(id);
  return [...targets.filter((t) => !suspects.has(t.id)), ...targets.filter((t) => suspects.has(t.id))];
}

/**
 * POSTs `body` to /v1/generate of each runner in turn; returns the first answer that is not a skip. The answer's
 * body stays watched while it is read: a runner that falls silent mid-answer makes the read fail.
 */
export async function callRunners(targets: RunnerTarget[], body: GenerateRequestInput, runnerToken: string, fetchImpl: typeof fetch = fetch, watchTimes: WatchTimes = RUNNER_WATCH): Promise<RunnerCall> {
  if (targets.length === 0) throw new ApiError("unavailable", `no runner is serving base model '${body.model}' right now; retry later`, "model", { "Retry-After": "5" });
  let full = 0;
  let adapterGone = 0;
  const failures: string[] = [];
  for (const runner of suspectsLast(targets)) {
    const watch = new RunnerWatch(runner, runnerToken, watchTimes, fetchImpl);
    watch.signal.addEventListener("abort", () => suspects.set(runner.id, Date.now() + SUSPECT_MS));
    let response: Response;
    try {
      response = await fetchImpl(new URL("/v1/generate", runner.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${runnerToken}` },
        body: JSON.stringify(body),
        signal: watch.signal,
      });
    } catch (err) {
      watch.stop();
      suspects.set(runner.id, Date.now() + SUSPECT_MS);
      failures.push(`${runner.id}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    if (!response.ok) watch.stop();
    if (response.status === 429) {
      full++;
      await response.body?.cancel();
      continue;
    }
    if (response.status === 404 || response.status === 401 || response.status === 403 || response.status >= 500) {
      // The runner changed its models, lost the adapter source, does not take our token (a misconfigured
      // deployment, not the caller's fault) or broke: another may do.
      const text = await response.text();
      if (response.status === 404 && text.includes('"adapter_not_found"')) adapterGone++;
      failures.push(`${runner.id}: ${response.status} ${text.slice(0, 200)}`);
      continue;
    }
    return { runner, response: watch.follow(response) };
  }
  if (full > 0) throw new ApiError("rate_limited", `all runners serving '${body.model}' are busy; retry after ${RETRY_AFTER} s`, null, { "Retry-After": RETRY_AFTER });
  // Every runner found the adapter's files gone (deleted meanwhile, or lost): retrying will not help.
  if (adapterGone === targets.length) throw new ApiError("not_found", `model '${body.adapter}': its adapter files are gone from the blob store, so it cannot be served`, "model");
  // The runners' own answers stay in the operator's log: they name runners and their internals, not the caller's.
  console.error(`[${body.request_id}] no runner could serve the request: ${failures.join("; ").slice(0, 2000)}`);
  throw new ApiError("unavailable", `no runner could serve the request right now; retry later, or quote the request_id if it persists`, null, { "Retry-After": "5" });
}
