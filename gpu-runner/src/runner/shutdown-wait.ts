// A runner shutdown during training waits, up to a deadline, for the trainer to checkpoint the step it
// reached, so the next runner resumes there rather than at the last periodic checkpoint; past the deadline
// (or with none to wait for) the wait is cut off and the training cancelled.

export class ShutdownWait {
  /** The wait is over (its deadline passed, or it never waited): training is cancelled. */
  cutOff = false;
  /** Resolves when the wait is cut off. */
  readonly cutOffNow: Promise<void>;
  private signalCutOff!: () => void;
  private deadline: ReturnType<typeof setTimeout> | null = null;

  /** `onCutOff` cancels the training and any transfer in flight. */
  constructor(private readonly onCutOff: () => void) {
    this.cutOffNow = new Promise((ok) => (this.signalCutOff = ok));
  }

  /** Waits at most `ms`; `onDeadline` hears when it passes, before the cut. */
  waitAtMost(ms: number, onDeadline: () => void): void {
    this.deadline = setTimeout(() => {
      onDeadline();
      this.cut();
    }, ms);
  }

  /** Ends the wait (once): cancels the training, and the attempt reports nothing more. */
  cut(): void {
    if (this.cutOff) return;
    this.cutOff = true;
    this.onCutOff();
    this.signalCutOff();
  }

  /** The wait needs no deadline any more (the checkpoint came, or the attempt ended). */
  clearDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
  }

  /** Whether `reports` (the checkpoint's upload and record) settled with `ok()` before the wait was cut off. */
  reported(reports: Promise<void>, ok: () => boolean): Promise<boolean> {
    return Promise.race([reports.then(() => !this.cutOff && ok()), this.cutOffNow.then(() => false)]);
  }
}
