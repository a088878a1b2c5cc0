// What a runner's registration means for the row its name already has. Each runner process makes a random
// `instance` id at start and answers it on /healthz, so the API can tell a restart (the old process is gone:
// its leases are ended at once) from a second process given a live runner's name (refused), by asking the old
// process's URL. See docs/runner-protocol.md.
import { ApiError } from "../errors.js";
import { probeRunner } from "../inference/runner-health.js";
import type { runners } from "../db/schema.js";

type RunnerRow = typeof runners.$inferSelect;

/** How long the old process's /healthz may take to answer. */
const PROBE_MS = 3000;

/**
 * - `first`: no runner had the name.
 * - `again`: the same process registers again (after withdrawing a model): nothing else changes.
 * - `restart`: the old process is gone (silent past the lease period, or not answering at its URL, or another
 *   process answers there, such as the new one on the same port): the new one takes the id, and the old
 *   one's leases are ended.
 * - `takeover`: the old process cannot be asked (it has no URL, or neither has an instance id): the new one
 *   takes the id; the old leases run out by themselves, since they may be a live process's.
 * Throws 409 conflict when the old process still answers: two runners were given one name.
 */
export async function judgeRegistration(earlier: RunnerRow | undefined, instance: string | undefined, o: { liveSince: number; runnerToken: string }): Promise<"first" | "again" | "restart" | "takeover"> {
  if (!earlier) return "first";
  if (instance !== undefined && earlier.instance === instance) return "again";
  if (earlier.lastSeenAt < o.liveSince) return "restart";
  if (!earlier.url || (earlier.instance === null && instance === undefined)) return "takeover";
  const health = await probeRunner(earlier.url, PROBE_MS, o.runnerToken);
  // An answer with the old instance id, or (for an old row of a runner from before instance ids) one without any.
  const oldAnswers = health !== null && health.instance === earlier.instance;
  if (oldAnswers) throw new ApiError("conflict", `runner name '${earlier.name}' is in use by a live runner at ${earlier.url}; give each runner its own name (TUNESERVE_RUNNER_NAME)`, "name");
  return "restart";
}

/** A request from a process whose name another process has registered since (409): it must stop leasing. */
export function assertCurrentInstance(row: RunnerRow, instance: string | undefined): void {
  if (row.instance === null || instance === undefined || row.instance === instance) return;
  throw new ApiError("conflict", `runner '${row.name}' was registered by another process since this one did; this process is superseded and must stop (give each runner its own name)`, "instance");
}
