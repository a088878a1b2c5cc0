// How a failed training attempt is told to the API: whether another attempt may succeed, the engine's own
// error code, and the message without this runner's paths.
import { ApiCallError } from "./api-client.js";

/**
 * Whether another attempt may succeed: the worker died (out of memory, a crash) or the error says so. Errors
 * the engine raises itself (bad data, mismatched checkpoint) would repeat on every attempt.
 */
export function retryableEngineError(err: unknown): boolean {
  if ((err as { retryable?: unknown } | null)?.retryable === true) return true;
  return err instanceof Error && /^training worker exited with code/.test(err.message);
}

/** An error code the engine put on its error (e.g. "invalid_data"), if it is a short word. */
export function engineCode(err: unknown): string | null {
  const c = (err as { code?: unknown } | null)?.code;
  return !(err instanceof ApiCallError) && typeof c === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(c) ? c : null;
}

/**
 * The engine's messages name files by their paths on this runner; the job's error is the tenant's to read, so
 * they become names within the job's folder (`jobDir`) or the base model's (`modelDir`, null before it is known).
 */
export function withoutLocalPaths(message: string, modelDir: string | null, jobDir: string): string {
  const model = modelDir === null ? message : message.replaceAll(`${modelDir}/`, "base model's ").replaceAll(modelDir, "the base model's folder");
  return model.replaceAll(`${jobDir}/`, "").replaceAll(jobDir, "the job's folder");
}

/** Where the attempt stood when it failed, for the error it reports. */
export type FailedAttempt = {
  /** The runner shut down during the attempt: the job goes back to the queue. */
  shutdown: boolean;
  runnerName: string;
  /** The step of the latest checkpoint the job has, null for none. */
  checkpointStep: number | null;
  modelDir: string | null;
  jobDir: string;
};

/** The error a failed attempt reports: a shutdown's says where the next attempt resumes; otherwise the engine's code (or `code`) and message. */
export function attemptError(err: unknown, code: string, a: FailedAttempt): { code: string; message: string } {
  const resumes = a.checkpointStep === null ? "from the start" : `from the checkpoint at step ${a.checkpointStep}`;
  return a.shutdown
    ? { code: "runner_shutdown", message: `runner ${a.runnerName} shut down during the attempt; the next attempt resumes ${resumes}` }
    : { code: engineCode(err) ?? code, message: withoutLocalPaths((err as Error).message || String(err), a.modelDir, a.jobDir).slice(0, 4000) };
}
