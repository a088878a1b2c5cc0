// Runs one leased fine-tuning job: fetch its inputs (attempt-inputs.ts), train in a worker thread, keep the
// lease alive with progress heartbeats (lease-heartbeat.ts, attempt-progress.ts), upload checkpoints as they
// appear in order behind the trainer (report-queue.ts, train-reports.ts), then hand the adapter in (hand-in.ts), through API outages (api-outages.ts); a
// failure is reported as attempt-errors.ts words it. On shutdown the trainer checkpoints the step it reached
// (shutdown-wait.ts) and the job goes back to the queue.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { TrainEvent, TrainingWorker, TrainJobSpec, TrainResult } from "../engine/train/loop.js";
import { throughOutages } from "./api-outages.js";
import { ApiCallError, LeaseLostError, type Holder, type JobEventInput, type LeaseAnswer, type Progress } from "./api-client.js";
import { attemptError, retryableEngineError } from "./attempt-errors.js";
import { fetchAttemptInputs } from "./attempt-inputs.js";
import { leasedProgress, progressBeatDue, trainerProgress } from "./attempt-progress.js";
import type { ExecutorDeps } from "./executor-deps.js";
import { handIn } from "./hand-in.js";
import { LeaseHeartbeat } from "./lease-heartbeat.js";
import type { BaseModelCopy } from "./model-cache.js";
import { ReportQueue, type ReportedEvent } from "./report-queue.js";
import { ShutdownWait } from "./shutdown-wait.js";
import { finite, uploadCheckpoint, validationEvent } from "./train-reports.js";

/** How an attempt ended, from this runner's point of view. */
export type JobOutcome = "succeeded" | "failed" | "requeued" | "lease_lost" | "stopped";

export class TrainingExecution {
  private progress: Progress;
  private readonly heartbeat: LeaseHeartbeat;
  private trained = false;
  /** Why the lease was lost (set once; the job is no longer ours). */
  private lost: string | null = null;
  private stopping = false;
  /** A shutdown's wait for the trainer's checkpoint. */
  private readonly shutdown: ShutdownWait;
  /** The trainer ran its last step: a shutdown from now on lets the attempt finish. */
  private trainedToEnd = false;
  /** The step of the latest checkpoint the job has: the one it was leased with, or one this attempt recorded. */
  private checkpointStep: number | null;
  /** The attempt is over: late heartbeats (a 409 after complete) mean nothing any more. */
  private ended = false;
  private worker: Pick<TrainingWorker, "cancel" | "suspend" | "result"> | null = null;
  private readonly abort = new AbortController();
  /** Checkpoints and messages, reported in order, one at a time, behind the trainer. */
  private readonly reports: ReportQueue;
  readonly jobId: string;
  /** This lease: the runner and the attempt it was leased as, sent with every report. */
  private readonly holder: Holder;
  private readonly dir: string;
  /** The base model's folder on this runner, once the inputs are fetched. */
  private modelDir: string | null = null;
  /** The base model's copy this attempt holds (released when the attempt and its trainer are done). */
  private baseModel: BaseModelCopy | null = null;

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly lease: LeaseAnswer,
  ) {
    this.jobId = lease.job.id;
    this.holder = { runner_id: deps.runnerId, attempt: lease.lease.attempt };
    this.dir = join(deps.workRoot, `${lease.job.id}-attempt-${lease.lease.attempt}`);
    this.progress = leasedProgress(lease);
    this.checkpointStep = lease.urls.checkpoint?.step ?? null;
    // Past a shutdown's wait, the training and any transfer in flight are cancelled.
    this.shutdown = new ShutdownWait(() => {
      this.worker?.cancel();
      this.abort.abort();
    });
    // A lost lease stops the job; other errors wait for the next tick.
    this.heartbeat = new LeaseHeartbeat({
      send: () => this.deps.client.heartbeat(this.jobId, this.holder, this.progress).then(() => undefined),
      stopped: () => Boolean(this.lost) || this.ended,
      over: () => this.ended,
      failed: (err) => {
        if (err instanceof LeaseLostError) this.leaseLost(err.message);
        else this.deps.log("warn", "heartbeat failed; retrying on the next tick", { job_id: this.jobId, error: (err as Error).message });
      },
    });
    this.reports = new ReportQueue({
      report: (e) => this.throughOutages(`report the ${e.type}`, () => this.report(e)),
      leaseLost: (reason) => this.leaseLost(reason),
      failed: () => this.worker?.cancel(),
    });
  }

  /** Ends this copy of the job because a newer lease of it replaced this one: it reports nothing more. */
  abandon(reason: string): void {
    this.leaseLost(`job ${this.jobId}: ${reason}`);
  }

  /**
   * Asks the attempt to end because the runner shuts down: the job is handed back to the queue. While training,
   * the trainer first finishes its step and checkpoints it, so the next runner resumes there rather than at the
   * last periodic checkpoint; past shutdownCheckpointMs (Kubernetes allows 30 s by default) it is cancelled.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    // Trained to the end already: the attempt hands in its adapter (see finish).
    if (this.trainedToEnd) return;
    const ms = this.deps.shutdownCheckpointMs;
    if (this.worker && !this.lost && ms > 0) {
      this.worker.suspend();
      this.shutdown.waitAtMost(ms, () => this.deps.log("warn", "no checkpoint handed over within the shutdown deadline; cancelling the training", { job_id: this.jobId, deadline_ms: ms }));
    } else this.shutdown.cut();
  }

  /** Runs the attempt to its end; never throws. */
  async run(): Promise<JobOutcome> {
    const { log } = this.deps;
    const timer = setInterval(() => void this.beat(), Math.max(300, (this.deps.leaseSeconds * 1000) / 3));
    try {
      await mkdir(this.dir, { recursive: true });
      void this.beat();
      let spec: TrainJobSpec;
      try {
        spec = await this.prepare();
      } catch (err) {
        return await this.failed(err, true, "input_unavailable");
      }
      let result: TrainResult;
      try {
        result = await this.train(spec);
        await this.reports.drained();
      } catch (err) {
        if (this.stopping) await this.handOver();
        // A report that failed for good cancelled the training: its error, not the cancel, is what the job's user
        // must read and what decides a retry (a refusal such as a checkpoint over the API's bounds is final; a
        // report given up on during an API outage is retryable, so the job is queued again).
        const cause = this.reports.failure ?? err;
        return await this.failed(cause, retryableEngineError(cause), "training_failed");
      }
      return await this.finish(result);
    } catch (err) {
      log("error", "job attempt broke off", { job_id: this.jobId, error: (err as Error).message });
      return this.lost ? "lease_lost" : "failed";
    } finally {
      this.ended = true;
      clearInterval(timer);
      this.shutdown.clearDeadline();
      // The base model's copy goes back once the trainer is done reading it (past a shutdown's deadline it may still run).
      const copy = this.baseModel;
      if (copy) void (this.worker?.result ?? Promise.resolve()).then(copy.release, copy.release);
      this.worker = null;
      await rm(this.dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Inputs to local files and the engine's job spec. */
  private async prepare(): Promise<TrainJobSpec> {
    const { urls } = this.lease;
    const { spec, trainingBytes, baseModel } = await fetchAttemptInputs(this.lease, this.dir, this.deps, this.abort.signal);
    this.baseModel = baseModel;
    this.modelDir = spec.modelDir;
    this.throwIfEnded();
    const resumed = `${urls.initial_adapter ? `; continuing ${urls.initial_adapter.model}` : ""}${urls.checkpoint ? `; resuming from the checkpoint at step ${urls.checkpoint.step}` : ""}`;
    await this.send([{ message: `Runner ${this.deps.runnerName} fetched the inputs (training file ${trainingBytes} bytes${resumed})`, data: { resume_step: urls.checkpoint?.step ?? 0, attempt: this.lease.lease.attempt } }]);
    return spec;
  }

  private train(spec: TrainJobSpec): Promise<TrainResult> {
    this.throwIfEnded();
    const w = this.deps.startTraining(spec, (e) => this.onEvent(e));
    this.worker = w;
    w.result.then(() => (this.trainedToEnd = true), () => {});
    if (this.lost || this.stopping) w.cancel();
    // Past a shutdown's deadline the job is handed back at once, not after the step in flight (the worker
    // stops at its next step boundary, or with the process).
    const cut = this.shutdown.cutOffNow.then((): never => {
      throw new Error("the runner is shutting down");
    });
    return Promise.race([w.result, cut]);
  }

  /**
   * On shutdown, once the trainer has stopped: waits (until the deadline) for the checkpoint of the step it
   * reached to be uploaded and recorded, then reports that step, so the job shows where the next attempt resumes.
   */
  private async handOver(): Promise<void> {
    const uploaded = await this.shutdown.reported(this.reports.settled, () => this.reports.ok);
    this.shutdown.clearDeadline();
    if (!uploaded || this.lost) return;
    await this.beat();
  }

  private onEvent(e: TrainEvent): void {
    if (e.type === "progress") {
      this.progress = trainerProgress(e);
      const first = !this.trained;
      this.trained = true;
      if (progressBeatDue(e, first, this.heartbeat.lastSent)) void this.beat();
      return;
    }
    this.reports.add(e);
  }

  /**
   * Runs `attempt` through API outages (api-outages.ts): an API restart or deploy neither cancels the training (its
   * reports wait while the trainer goes on) nor loses a trained job's hand-in. A shutdown or a lost lease does not wait.
   */
  private throughOutages<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return throughOutages(attempt, {
      giveUp: () => Boolean(this.lost) || this.stopping,
      waiting: (err) => this.deps.log("warn", `could not ${what} yet; trying again`, { job_id: this.jobId, error: err.message }),
    });
  }

  private async report(e: ReportedEvent): Promise<void> {
    // A shutdown still reports what the trainer sends until its deadline: above all the checkpoint it was asked for.
    if (this.lost || this.shutdown.cutOff) return;
    if (e.type === "log") return this.send([{ level: e.level, message: e.message }]);
    if (e.type === "validation") return this.send([validationEvent(e)]);
    const names = await uploadCheckpoint(this.deps.client, this.jobId, this.holder, e, this.abort.signal);
    this.checkpointStep = Math.max(this.checkpointStep ?? 0, e.step);
    this.deps.log("info", "checkpoint recorded", { job_id: this.jobId, step: e.step, files: names.length });
    // The local copy is in the blob store now; keep disk use flat on long runs.
    await rm(e.dir, { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Uploads the adapter and completes the job (complete is idempotent, so its retries are safe). A shutdown
   * does not interrupt this: the work is done and handing it in takes seconds. While the API (or the blob
   * store) stays unreachable, or the blob store refuses an upload in a way fresh URLs may get past (an expired
   * link, a timed-out body: see retryableBlobAnswer), the hand-in is tried again, heartbeats keeping the lease meanwhile, for up to
   * handInRetryMs: given up, the trained job would be left to expire (and, on its last attempt, to fail,
   * its checkpoints deleted) over an outage of a few seconds.
   */
  private async finish(result: TrainResult): Promise<JobOutcome> {
    const { log } = this.deps;
    // Cancelled (or taken over) after the last step but before complete: the result is not ours to hand in.
    if (this.lost) return "lease_lost";
    const metrics = finite({ train_loss: result.finalLoss, steps: result.steps, ...result.metrics });
    try {
      const done = await this.throughOutages("hand the trained job in", () => handIn(this.deps.client, this.jobId, this.holder, result, metrics, () => this.beat()));
      log("info", "job succeeded", { job_id: this.jobId, model: done.job.fine_tuned_model, trained_tokens: result.trainedTokens, steps: result.steps });
      return "succeeded";
    } catch (err) {
      if (err instanceof LeaseLostError) return this.leaseLost(err.message);
      if (this.lost) return "lease_lost";
      if (err instanceof ApiCallError && !err.retryable) return this.failed(err, false, err.code === "invalid_file" ? "invalid_adapter" : "complete_rejected");
      // The API stayed unreachable: leave the job running; its lease expires and a re-lease resumes it.
      log("error", "could not complete the job; it will be re-leased after its lease expires", { job_id: this.jobId, error: (err as Error).message });
      return "failed";
    }
  }

  /** Reports a failed attempt (unless the job is gone from us anyway) and says what became of it. */
  private async failed(err: unknown, retryable: boolean, code: string): Promise<JobOutcome> {
    const { client, log } = this.deps;
    if (err instanceof LeaseLostError) return this.leaseLost(err.message);
    if (this.lost) return "lease_lost";
    const shutdown = this.stopping;
    const error = attemptError(err, code, { shutdown, runnerName: this.deps.runnerName, checkpointStep: this.checkpointStep, modelDir: this.modelDir, jobDir: this.dir });
    log(shutdown ? "warn" : "error", "job attempt failed", { job_id: this.jobId, ...error, retryable: retryable || shutdown });
    try {
      const r = await client.fail(this.jobId, this.holder, error, retryable || shutdown);
      return shutdown ? "stopped" : r.status === "queued" ? "requeued" : "failed";
    } catch (e) {
      if (e instanceof LeaseLostError) return this.leaseLost(e.message);
      log("error", "could not report the failure; the lease will expire instead", { job_id: this.jobId, error: (e as Error).message });
      return shutdown ? "stopped" : "failed";
    }
  }

  private leaseLost(reason: string): JobOutcome {
    if (!this.lost) {
      this.lost = reason;
      // A tenant's cancel or pause is routine; losing the job otherwise (taken over, finished elsewhere) is worth a warning.
      this.deps.log(/was (cancelled|paused)/.test(reason) ? "info" : "warn", "lease lost; stopping the job", { job_id: this.jobId, reason });
      this.worker?.cancel();
      this.abort.abort();
    }
    return "lease_lost";
  }

  private throwIfEnded(): void {
    if (this.lost) throw new LeaseLostError(this.lost);
    if (this.stopping) throw new Error("the runner is shutting down");
  }

  /** Sends the newest progress (lease-heartbeat.ts); resolves once it has been answered. */
  private beat(): Promise<void> {
    return this.heartbeat.beat();
  }

  private async send(events: JobEventInput[]): Promise<void> {
    await this.deps.client.events(this.jobId, this.holder, events);
  }
}
