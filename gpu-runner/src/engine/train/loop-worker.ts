// runTraining in a worker_threads worker (ORT blocks the thread it runs on): events stream back as
// messages; cancel() raises a flag in shared memory that the loop reads between steps.
import { Worker } from "node:worker_threads";
import { TrainingCancelled, type TrainEvent, type TrainJobSpec, type TrainResult } from "./spec.js";

/** Messages from the worker body (loop-worker-main.ts). */
export type LoopWorkerMessage =
  | { kind: "event"; event: TrainEvent }
  | { kind: "done"; result: TrainResult }
  | { kind: "error"; message: string; cancelledAt: number | null };

/** Starts a training run in a worker; `cancel()` stops it between steps and `result` rejects with TrainingCancelled. */
export function startTrainingWorker(spec: TrainJobSpec, onEvent: (e: TrainEvent) => void): { result: Promise<TrainResult>; cancel(): void } {
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
      else settle(() => reject(msg.cancelledAt !== null ? new TrainingCancelled(msg.cancelledAt) : new Error(msg.message)));
    });
    worker.on("error", (err) => settle(() => reject(err)));
    worker.on("exit", (code) => settle(() => reject(new Error(`training worker exited with code ${code} before finishing`))));
  });
  return {
    result,
    cancel() {
      Atomics.store(stop, 0, 1);
    },
  };
}
