// A training attempt's reports of what its trainer hands over besides progress (checkpoints, validation results,
// log lines): sent in order, one at a time, behind the trainer; the first that fails for good cancels the training.
import type { TrainEvent } from "../engine/train/loop.js";
import { LeaseLostError } from "./api-client.js";

/** A trainer event that is reported rather than carried by heartbeats. */
export type ReportedEvent = Exclude<TrainEvent, { type: "progress" }>;

export interface ReportQueueHooks {
  /** Reports one event (through API outages); rejects when that fails for good. */
  report(e: ReportedEvent): Promise<void>;
  /** A report found the lease lost: the job is no longer ours. */
  leaseLost(reason: string): void;
  /** A report failed for good: the training is cancelled. */
  failed(): void;
}

export class ReportQueue {
  private queue: Promise<void> = Promise.resolve();
  private error: Error | null = null;

  constructor(private readonly hooks: ReportQueueHooks) {}

  /** Queues `e`'s report behind those already queued. */
  add(e: ReportedEvent): void {
    const { hooks } = this;
    this.queue = this.queue.then(() => hooks.report(e)).catch((err: Error) => {
      if (err instanceof LeaseLostError) {
        hooks.leaseLost(err.message);
        return;
      }
      this.error ??= err;
      hooks.failed();
    });
  }

  /** Resolves once the reports queued so far are settled; never rejects. */
  get settled(): Promise<void> {
    return this.queue;
  }

  /** No report has failed for good. */
  get ok(): boolean {
    return !this.error;
  }

  /** The first report that failed for good (it cancelled the training), or null. */
  get failure(): Error | null {
    return this.error;
  }

  /** Waits for the reports queued so far; throws the first that failed for good. */
  async drained(): Promise<void> {
    await this.queue;
    if (this.error) throw this.error;
  }
}
