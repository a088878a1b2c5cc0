// Typed client of the runner protocol (docs/runner-protocol.md). Network errors and 5xx/429 are retried with
// backoff; 409 lease_lost becomes LeaseLostError (stop the job); other 4xx become a non-retryable ApiCallError.
import type { z } from "zod";
import type { Completion, Uploads } from "../../../api/src/routes/internal_job_outputs.js";
import type { FailState, LeaseAnswer, LeaseState } from "../../../api/src/routes/internal_jobs.js";
import type { BaseModelFilesAnswer } from "../../../api/src/routes/internal_models.js";
import type { JobCheckpoint } from "../../../api/src/jobs/shape.js";
import type { failBody, Holder, progressInput, registerRunnerBody } from "../../../api/src/jobs/protocol.js";

export type { LeaseAnswer, Completion, JobCheckpoint, BaseModelFilesAnswer, Holder };
export type Progress = z.infer<typeof progressInput>;
export type RegisterRequest = z.infer<typeof registerRunnerBody>;
export type RunnerObject = RegisterRequest & { id: string; lease_seconds: number; adapters: string[] };
/** The registration's answer; older APIs leave out unregistered_models. */
export type RegisteredRunner = RunnerObject & { unregistered_models?: string[] };
export type JobEventInput = { level?: "info" | "warn" | "error"; message: string; data?: Record<string, unknown> };
export type FailError = z.infer<typeof failBody>["error"];

/** The API answered with an error that a retry cannot fix (4xx other than 409/429), or retries ran out. */
export class ApiCallError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
    readonly retryable: boolean,
    /** The error envelope's param: which input the API refused (e.g. model_id), when it says. */
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = "ApiCallError";
  }
}

/** 409 conflict on a runner call: another process has registered this runner's name since; this one must stop. */
export const isSuperseded = (err: unknown) => err instanceof ApiCallError && err.status === 409 && err.code === "conflict";

/** 409 lease_lost: this runner no longer holds the job (cancelled, taken over after expiry, or finished). */
export class LeaseLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LeaseLostError";
  }
}

/** `timeoutMs`: each try's deadline (requestTimeoutMs unless set). */
export type RetryPolicy = { attempts: number; baseMs: number; maxMs: number; timeoutMs?: number };
const defaultRetry: RetryPolicy = { attempts: 6, baseMs: 250, maxMs: 5_000 };

/** Backoff before retry `n` (0-based): doubling from baseMs, capped, with up to 25% jitter. */
export const backoffMs = (n: number, p: RetryPolicy, rand = Math.random) => Math.min(p.maxMs, p.baseMs * 2 ** n) * (1 + rand() / 4);

/** Whether an HTTP status is worth retrying: the server or a proxy was briefly unable, not the request wrong. */
export const retryableStatus = (status: number) => status >= 500 || status === 429 || status === 408;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((ok) => {
    const t = setTimeout(ok, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), ok()), { once: true });
  });

/**
 * Runs one HTTP exchange with retries: `attempt` returns a Response; retryable statuses and thrown network
 * errors are retried per policy, anything else is returned to the caller.
 */
export async function withRetries(what: string, attempt: () => Promise<Response>, policy: RetryPolicy = defaultRetry, signal?: AbortSignal): Promise<Response> {
  let last = "";
  for (let n = 0; n < policy.attempts; n++) {
    if (n > 0) await sleep(backoffMs(n - 1, policy), signal);
    if (signal?.aborted) break;
    try {
      const res = await attempt();
      if (!retryableStatus(res.status)) return res;
      last = `HTTP ${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message + ((err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : "");
    }
  }
  throw new ApiCallError(`${what}: gave up after ${policy.attempts} tries: ${last}`, null, null, true);
}

/** Longest wait for one protocol call's answer (the calls are small; the API answers in milliseconds). */
const requestTimeoutMs = 30_000;
/**
 * Longest wait for a checkpoint record's answer: the API copies the checkpoint's files (GiBs of optimizer state)
 * before it answers (api/src/jobs/record-checkpoint.ts), and a try cut short only starts the copy again.
 */
const recordTimeoutMs = 10 * 60_000;

type ErrorEnvelope = { error?: { code?: string; message?: string; param?: string | null } };

/** The runner protocol over HTTP with the runner token. */
export class RunnerApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly policy: RetryPolicy = defaultRetry,
    /** This runner process's random id, sent on register, runner heartbeats and leases. */
    private readonly instance?: string,
  ) {}

  /** One protocol call: POST with a JSON body, or GET when `body` is undefined. */
  private async call<T>(path: string, body: unknown, signal?: AbortSignal, timeoutMs = this.policy.timeoutMs ?? requestTimeoutMs): Promise<{ status: number; body: T | null }> {
    const url = `${this.baseUrl}${path}`;
    const method = body === undefined ? "GET" : "POST";
    const res = await withRetries(
      `${method} ${path}`,
      () => {
        // A hung connection must not hold a heartbeat past the lease: each try has its own deadline.
        const deadline = AbortSignal.timeout(timeoutMs);
        const json = method === "POST" ? { "content-type": "application/json" } : undefined;
        return fetch(url, { method, headers: { authorization: `Bearer ${this.token}`, ...json }, body: json && JSON.stringify(body), signal: signal ? AbortSignal.any([signal, deadline]) : deadline });
      },
      this.policy,
      signal,
    );
    if (res.status === 204) return { status: 204, body: null };
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      if (res.ok) throw new ApiCallError(`${method} ${path}: ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`, res.status, null, false);
    }
    if (res.ok) return { status: res.status, body: parsed as T };
    const err = (parsed as ErrorEnvelope | null)?.error;
    const message = `${method} ${path}: ${res.status} ${err?.code ?? ""} ${err?.message ?? text.slice(0, 300)}`.trim();
    if (res.status === 409 && err?.code === "lease_lost") throw new LeaseLostError(err.message ?? message);
    throw new ApiCallError(message, res.status, err?.code ?? null, false, err?.param ?? null);
  }

  /** Announces (or re-announces, same name = same id) this runner. */
  async register(req: Omit<RegisterRequest, "instance">): Promise<RegisteredRunner> {
    return (await this.call<RegisteredRunner>("/internal/v1/runners/register", { ...req, instance: this.instance })).body!;
  }

  /** Runner liveness and the adapters its inference cache holds. */
  async runnerHeartbeat(runnerId: string, body: { adapters?: string[]; load?: number }): Promise<RunnerObject & { gone_adapters?: string[] }> {
    return (await this.call<RunnerObject & { gone_adapters?: string[] }>(`/internal/v1/runners/${encodeURIComponent(runnerId)}/heartbeat`, { ...body, instance: this.instance })).body!;
  }

  /** Tells the API this process is stopping: no more requests are routed to it (an older API answers 404). */
  async stopping(runnerId: string): Promise<void> {
    await this.call(`/internal/v1/runners/${encodeURIComponent(runnerId)}/stop`, { instance: this.instance });
  }

  /** Presigned GET URLs for a base model's files, outside any lease (serving); 404 not_found when the API does not know it. */
  async baseModelFiles(modelId: string, signal?: AbortSignal): Promise<BaseModelFilesAnswer> {
    return (await this.call<BaseModelFilesAnswer>(`/internal/v1/models/${encodeURIComponent(modelId)}/files`, undefined, signal)).body!;
  }

  /**
   * The next job for this runner's models, or null when none is queued (204). Every try of the call sends the
   * same `idempotencyKey`: a retry after a lost answer gets the job the lost answer carried, not another.
   */
  async lease(runnerId: string, idempotencyKey?: string, signal?: AbortSignal): Promise<LeaseAnswer | null> {
    return (await this.call<LeaseAnswer>("/internal/v1/jobs/lease", { runner_id: runnerId, instance: this.instance, idempotency_key: idempotencyKey }, signal)).body;
  }

  // The job calls below name the lease they report under (runner and attempt): a stale copy of a job is told to stop.

  /** Extends the lease and stores progress; throws LeaseLostError when the job is no longer ours. */
  async heartbeat(jobId: string, holder: Holder, progress: Progress): Promise<LeaseState> {
    return (await this.call<LeaseState>(`/internal/v1/jobs/${jobId}/heartbeat`, { ...holder, progress })).body!;
  }

  async events(jobId: string, holder: Holder, events: JobEventInput[]): Promise<void> {
    for (let i = 0; i < events.length; i += 100) {
      await this.call(`/internal/v1/jobs/${jobId}/events`, { ...holder, events: events.slice(i, i + 100) });
    }
  }

  async checkpointUploads(jobId: string, holder: Holder, step: number, files: string[]): Promise<Uploads> {
    return (await this.call<Uploads>(`/internal/v1/jobs/${jobId}/checkpoints/uploads`, { ...holder, step, files })).body!;
  }

  /** Fresh PUT URLs for the final adapter files. */
  async outputUploads(jobId: string, holder: Holder): Promise<Omit<Uploads, "step">> {
    return (await this.call<Omit<Uploads, "step">>(`/internal/v1/jobs/${jobId}/outputs/uploads`, holder)).body!;
  }

  /** `format`: the version the checkpoint was written in, so that the API leases the job only to runners that resume it. */
  async recordCheckpoint(jobId: string, holder: Holder, step: number, metrics: Record<string, number>, format: number, signal?: AbortSignal): Promise<JobCheckpoint> {
    return (await this.call<JobCheckpoint>(`/internal/v1/jobs/${jobId}/checkpoints`, { ...holder, step, metrics, format }, signal, recordTimeoutMs)).body!;
  }

  /** Idempotent: a retry after success answers the same completion. */
  async complete(jobId: string, holder: Holder, trainedTokens: number, metrics?: Record<string, number>): Promise<Completion> {
    return (await this.call<Completion>(`/internal/v1/jobs/${jobId}/complete`, { ...holder, trained_tokens: trainedTokens, metrics })).body!;
  }

  async fail(jobId: string, holder: Holder, error: FailError, retryable: boolean): Promise<FailState> {
    return (await this.call<FailState>(`/internal/v1/jobs/${jobId}/fail`, { ...holder, error, retryable })).body!;
  }
}
