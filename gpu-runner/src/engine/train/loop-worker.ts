// runTraining in a worker_threads worker (ORT blocks the thread it runs on): events stream back as
// messages; cancel() and suspend() set a flag in shared memory that the loop reads between steps.
import { Worker } from "node:worker_threads";
import { TrainingCancelled, TrainingSuspended, type TrainEvent, type TrainJobSpec, type TrainResult } from "./spec.js";

/** Messages from the worker body (loop-worker-main.ts). */
export type LoopWorkerMessage =
  | { kind: "event"; event: TrainEvent }
  | { kind: "done"; result: TrainResult }
  | { kind: "error"; message: string; code: string | null; cancelledAt: number | null; suspended: { step: number; checkpointed: boolean } | null };

/** Values of the shared stop flag: keep training, cancel (discard), suspend (checkpoint, then stop). */
export const STOP_FLAG = { run: 0, cancel: 1, suspend: 2 } as const;

/** A training run in a worker thread. */
export type TrainingWorker = {
  /** The result; rejects with TrainingCancelled or TrainingSuspended when asked to stop. */
  result: Promise<TrainResult>;
  /** Stops before the next step, writing nothing more. Overrides a suspend not yet acted on. */
  cancel(): void;
  /** Stops before the next step, after checkpointing the step reached (see TrainHooks.shouldSuspend). */
  suspend(): void;
};

/** Starts a training run in a worker; it stops between steps on `cancel()` or `suspend()`. */
export function startTrainingWorker(spec: TrainJobSpec, onEvent: (e: TrainEvent) => void): TrainingWorker {
  // One Int32 the worker polls before every step: a message would wait behind the blocked event loop.
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL("./loop-worker-entry.mjs", import.meta.url), { workerData: { spec, stop } });
  const result = new Promise<TrainResult>((resolveRun, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.on("message", (msg: LoopWorkerMessage) => {
      if (msg.kind === "event") {
        try {
          onEvent(msg.event);
        } catch {
          // A failing listener must not kill the run; the caller owns its own errors.
        }
      } else if (msg.kind === "done") settle(() => resolveRun(msg.result));
      else if (msg.suspended) settle(() => reject(new TrainingSuspended(msg.suspended!.step, msg.suspended!.checkpointed)));
      // The error's code (e.g. "training_diverged") crosses the thread with its message: the job's error reports it.
      else settle(() => reject(msg.cancelledAt !== null ? new TrainingCancelled(msg.cancelledAt) : Object.assign(new Error(msg.message), msg.code ? { code: msg.code } : {})));
    });
    worker.on("error", (err) => settle(() => reject(err)));
    worker.on("exit", (code) => settle(() => reject(new Error(`training worker exited with code ${code} before finishing`))));
  });
  return {
    result,
    cancel() {
      Atomics.store(stop, 0, STOP_FLAG.cancel);
    },
    suspend() {
      // Only from "run": a cancel already asked for stays a cancel.
      Atomics.compareExchange(stop, 0, STOP_FLAG.run, STOP_FLAG.suspend);
    },
  };
}
