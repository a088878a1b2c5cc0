// The progress a training attempt's heartbeats carry: where the leased job stands until the trainer reports,
// then the trainer's latest step, sent at once only when it is worth a heartbeat of its own.
import type { TrainEvent } from "../engine/train/loop.js";
import type { LeaseAnswer, Progress } from "./api-client.js";

/** Heartbeats sent on progress are at least this far apart; the lease timer sends them anyway. */
const minProgressBeatMs = 1000;

/** Until the trainer reports, heartbeats repeat where the job stands: the resumed step of the last run. */
export function leasedProgress(lease: LeaseAnswer): Progress {
  const prev = lease.job.progress;
  const step = lease.urls.checkpoint?.step ?? 0;
  return { step, total_steps: Math.max(1, step, prev?.total_steps ?? 1), epoch: 0, loss: null };
}

/** A trainer's progress event as the API takes it (no NaN loss, no negative rates). */
export function trainerProgress(e: Extract<TrainEvent, { type: "progress" }>): Progress {
  return { step: e.step, total_steps: Math.max(1, e.totalSteps), epoch: e.epoch, loss: Number.isFinite(e.loss) ? e.loss : null, lr: e.lr, tokens_per_s: Math.max(0, e.tokensPerS), eta_s: Math.max(0, e.etaS), trained_tokens: e.trainedTokens };
}

/**
 * Whether progress goes out now rather than with the lease timer's next heartbeat: the attempt's first step
 * (it shows where a resumed run picked up), the last one, and otherwise at most one a second.
 */
export function progressBeatDue(e: Extract<TrainEvent, { type: "progress" }>, first: boolean, lastSent: number): boolean {
  return first || Date.now() - lastSent >= minProgressBeatMs || e.step === e.totalSteps;
}
