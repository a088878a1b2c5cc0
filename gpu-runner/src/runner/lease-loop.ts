// The runner's job loop: lease when a training slot is free, back off while the queue is empty, run each job
// through a TrainingExecution, and on shutdown hand running jobs back to the queue, each with a checkpoint of
// the step it reached.
import { randomUUID } from "node:crypto";
import { ApiCallError, isSuperseded, type RunnerApiClient } from "./api-client.js";
import type { ExecutorDeps } from "./executor-deps.js";
import { TrainingExecution } from "./training-executor.js";

export type LeaseLoopOptions = {
  client: RunnerApiClient;
  /** Registers again (same name keeps the id) when the API no longer knows the runner; returns the id. */
  register: () => Promise<{ id: string; lease_seconds: number }>;
  runnerId: string;
  trainingJobs: number;
  pollSeconds: number;
  pollMaxSeconds: number;
  executor: Omit<ExecutorDeps, "runnerId" | "leaseSeconds" | "client">;
  leaseSeconds: number;
  /** Another process has registered this runner's name since (a 409 on lease): the runner must stop. */
  onSuperseded: (err: Error) => void;
};

/** Next wait while the queue stays empty: doubles from the poll interval up to the maximum. */
export const nextPollSeconds = (current: number, o: { pollSeconds: number; pollMaxSeconds: number }) => Math.min(o.pollMaxSeconds, Math.max(o.pollSeconds, current * 2));

export class LeaseLoop {
  private stopped = false;
  private wake: (() => void) | null = null;
  /** The lease call in flight, if any (settled otherwise). */
  private leasing: Promise<void> = Promise.resolve();
  private readonly active = new Map<string, { exec: TrainingExecution; done: Promise<void> }>();
  private loop: Promise<void> | null = null;
  private runnerId: string;
  private leaseSeconds: number;
  /**
   * The idempotency key of the lease this loop is asking for, kept until an answer arrives: a call that failed
   * (its answer lost) is asked again with it, so a job it leased comes back rather than staying leased unseen.
   */
  private leaseKey: string | null = null;

  constructor(private readonly o: LeaseLoopOptions) {
    this.runnerId = o.runnerId;
    this.leaseSeconds = o.leaseSeconds;
  }

  /** Job ids this runner is training right now. */
  get jobs(): string[] {
    return [...this.active.keys()];
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Stops leasing, hands running jobs back (retryable fail, after each checkpoints the step it reached, within
   * the executor's shutdown deadline) and waits for them to wind down.
   */
  /** Stops asking for jobs; resolves once no lease call is in flight (the jobs it holds go on). */
  async stopLeasing(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.leasing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    for (const { exec } of this.active.values()) exec.stop();
    await Promise.all([...this.active.values()].map((a) => a.done));
    await this.loop;
  }

  private sleep(seconds: number): Promise<void> {
    return new Promise((ok) => {
      const t = setTimeout(done, seconds * 1000);
      function done() {
        clearTimeout(t);
        ok();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    const { client, log } = { client: this.o.client, log: this.o.executor.log };
    let wait = this.o.pollSeconds;
    while (!this.stopped) {
      if (this.active.size >= this.o.trainingJobs) {
        await Promise.race([...this.active.values()].map((a) => a.done).concat(this.sleep(this.o.pollMaxSeconds)));
        continue;
      }
      let lease;
      try {
        this.leaseKey ??= randomUUID();
        const call = client.lease(this.runnerId, this.leaseKey);
        this.leasing = call.then(
          () => undefined,
          () => undefined,
        );
        lease = await call;
        this.leaseKey = null;
      } catch (err) {
        if (isSuperseded(err)) {
          this.o.onSuperseded(err as Error);
          break;
        }
        if (err instanceof ApiCallError && err.status === 404 && err.code === "not_found") {
          log("warn", "the API does not know this runner; registering again", {});
          await this.reRegister();
        } else log("warn", "lease call failed; trying again", { error: (err as Error).message });
        await this.sleep(wait);
        wait = nextPollSeconds(wait, this.o);
        continue;
      }
      if (this.stopped && lease) {
        // Leased in the very moment of shutdown: give it straight back.
        await client.fail(lease.job.id, { runner_id: this.runnerId, attempt: lease.lease.attempt }, { code: "runner_shutdown", message: "runner shut down while leasing" }, true).catch(() => {});
        break;
      }
      if (!lease) {
        await this.sleep(wait);
        wait = nextPollSeconds(wait, this.o);
        continue;
      }
      wait = this.o.pollSeconds;
      this.launch(lease);
    }
  }

  private launch(lease: NonNullable<Awaited<ReturnType<RunnerApiClient["lease"]>>>): void {
    const { log } = this.o.executor;
    const jobId = lease.job.id;
    log("info", "leased job", { job_id: jobId, attempt: lease.lease.attempt, resume_step: lease.urls.checkpoint?.step ?? 0, model: lease.job.model });
    const exec = new TrainingExecution({ ...this.o.executor, client: this.o.client, runnerId: this.runnerId, leaseSeconds: this.leaseSeconds }, lease);
    const done = exec.run().then((outcome) => {
      log("info", "job attempt ended", { job_id: jobId, outcome });
      // A later lease of the same job (paused and resumed, or re-leased) may have taken the entry: keep it.
      if (this.active.get(jobId)?.exec === exec) this.active.delete(jobId);
      this.wake?.();
    });
    // An earlier copy of this job still running here holds a lease that is no longer current: stop it now
    // rather than at its next report (the API refuses that copy's reports from now on).
    this.active.get(jobId)?.exec.abandon("leased again as a newer attempt");
    this.active.set(jobId, { exec, done });
  }

  /** The runner's id now: registering again after the API forgot the runner gives a new one. */
  get currentRunnerId(): string {
    return this.runnerId;
  }

  /** Registers again (the API no longer knows this runner); a 409 means another process has the name now. */
  async reRegister(): Promise<void> {
    try {
      const r = await this.o.register();
      this.runnerId = r.id;
      this.leaseSeconds = r.lease_seconds;
    } catch (err) {
      if (isSuperseded(err)) return this.o.onSuperseded(err as Error);
      this.o.executor.log("warn", "registering again failed", { error: (err as Error).message });
    }
  }
}
