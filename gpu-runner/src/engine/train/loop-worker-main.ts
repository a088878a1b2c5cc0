// The training worker's body: runs one job with runTraining, posting every event, then the result or
// the error; the shared stop flag from the parent (cancel or suspend) is checked between steps.
import { parentPort, workerData } from "node:worker_threads";
import { runTraining } from "./loop.js";
import { STOP_FLAG, type LoopWorkerMessage } from "./loop-worker.js";
import { TrainingCancelled, TrainingSuspended, type TrainJobSpec } from "./spec.js";

const port = parentPort;
if (!port) throw new Error("loop-worker-main.ts must run inside a worker thread");
const { spec, stop } = workerData as { spec: TrainJobSpec; stop: Int32Array };
const send = (m: LoopWorkerMessage) => port.postMessage(m);
const flag = () => Atomics.load(stop, 0);

try {
  const result = await runTraining(spec, { onEvent: (event) => send({ kind: "event", event }), shouldStop: () => flag() === STOP_FLAG.cancel, shouldSuspend: () => flag() === STOP_FLAG.suspend });
  send({ kind: "done", result });
} catch (err) {
  send({
    kind: "error",
    message: err instanceof Error ? err.message : String(err),
    code: typeof (err as { code?: unknown } | null)?.code === "string" ? (err as { code: string }).code : null,
    cancelledAt: err instanceof TrainingCancelled ? err.step : null,
    suspended: err instanceof TrainingSuspended ? { step: err.step, checkpointed: err.checkpointed } : null,
  });
}
