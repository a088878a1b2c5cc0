// What a training attempt is given by the runner: the API client, the runner's name and lease length, where
// to work, how long a shutdown waits for a checkpoint, the trainer to start, and the log.
import type { TrainEvent, TrainingWorker, TrainJobSpec } from "../engine/train/loop.js";
import type { RunnerApiClient } from "./api-client.js";
import type { AttemptSettings } from "./attempt-inputs.js";

/** The engine's training worker (startTrainingWorker), injected so the loop does not load ORT until a job comes. */
export type TrainingStarter = (spec: TrainJobSpec, onEvent: (e: TrainEvent) => void) => TrainingWorker;
export type Logger = (level: "info" | "warn" | "error", msg: string, data?: Record<string, unknown>) => void;

export type ExecutorDeps = AttemptSettings & {
  client: RunnerApiClient;
  runnerId: string;
  runnerName: string;
  leaseSeconds: number;
  /** Jobs get a scratch folder below this one, removed when the attempt ends. */
  workRoot: string;
  /**
   * How long a shutdown waits for the trainer to finish its step and for that step's checkpoint to be
   * uploaded before it cancels the training and hands the job back without it (0: cancel at once).
   */
  shutdownCheckpointMs: number;
  startTraining: TrainingStarter;
  log: Logger;
};
