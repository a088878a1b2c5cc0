// One job attempt whose training diverges, against a recording fake of the runner API: the job fails for
// good (no retry would do better) with the engine's code training_diverged and its message, and hands in no adapter.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { LeaseAnswer, RunnerApiClient } from "../../../gpu-runner/src/runner/api-client.js";
import type { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import { TrainingExecution, type ExecutorDeps } from "../../../gpu-runner/src/runner/training-executor.js";
import { TrainingDiverged } from "../../../gpu-runner/src/engine/train/spec.js";

const url = (text: string) => `data:application/octet-stream;base64,${Buffer.from(text).toString("base64")}`;
const lease = {
  job: { id: "ftjob-1", seed: 1, hyperparameters: { n_epochs: 1, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 64 }, method: { type: "supervised" }, adapter: { type: "lora", r: 2, alpha: 4, dropout: 0, target_modules: ["q_proj"], use_rslora: false }, progress: null },
  lease: { attempt: 1 },
  urls: { training_file: { id: "file-t", bytes: 6, lines: 1, format: "text", url: url("train\n") }, validation_file: null, base_model: { id: "micro" }, checkpoint: null, initial_adapter: null },
} as unknown as LeaseAnswer;

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "tuneserve-exec-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

it("fails a diverged job with code training_diverged, not retryable, and completes nothing", async () => {
  const calls: string[] = [];
  const failed: Array<{ error: { code: string; message: string }; retryable: boolean }> = [];
  const client = {
    heartbeat: async () => ({ status: "running" }),
    events: async () => {},
    fail: async (_id: string, _h: unknown, error: { code: string; message: string }, retryable: boolean) => {
      failed.push({ error, retryable });
      return { status: "failed" };
    },
    complete: async () => void calls.push("complete"),
    outputUploads: async () => void calls.push("outputUploads"),
  } as unknown as RunnerApiClient;
  // The training worker's rejection as startTrainingWorker gives it: the engine's message and code (loop-worker.ts).
  const diverged = new TrainingDiverged(3, "training diverged at step 3: loss is NaN; lower lr (now 0.0002)");
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { resolve: async () => "/models/micro" } as unknown as ModelCache, workRoot: dir, checkpointEvery: 0,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {},
    startTraining: () => ({ result: Promise.reject(Object.assign(new Error(diverged.message), { code: diverged.code })), cancel: () => {}, suspend: () => {} }),
  };
  expect(await new TrainingExecution(deps, lease).run()).toBe("failed");
  expect(failed).toEqual([{ error: { code: "training_diverged", message: diverged.message }, retryable: false }]);
  expect(calls).toEqual([]);
});
