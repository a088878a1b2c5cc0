// Job attempts the engine refuses, against a recording fake of the runner API: a diverged run, and a resume
// from a checkpoint trained with another tokenizer or chat template; each fails the job for good (no retry
// would do better) with the engine's code and message, and hands in no adapter. And an API outage at a
// checkpoint, which must not end the attempt.
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { ApiCallError, type LeaseAnswer, type RunnerApiClient } from "../../../gpu-runner/src/runner/api-client.js";
import type { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import type { ExecutorDeps } from "../../../gpu-runner/src/runner/executor-deps.js";
import { TrainingExecution } from "../../../gpu-runner/src/runner/training-executor.js";
import { TrainingCancelled, TrainingDiverged, type TrainResult } from "../../../gpu-runner/src/engine/train/spec.js";
import { runTraining, startTrainingWorker } from "../../../gpu-runner/src/engine/train/loop.js";
import { fetchAttemptInputs } from "../../../gpu-runner/src/runner/attempt-inputs.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";

const url = (content: string | Buffer) => `data:application/octet-stream;base64,${Buffer.from(content).toString("base64")}`;
const lease = {
  job: { id: "ftjob-1", seed: 1, hyperparameters: { n_epochs: 1, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 64 }, method: { type: "supervised" }, adapter: { type: "lora", r: 2, alpha: 4, dropout: 0, target_modules: ["q_proj"], use_rslora: false }, progress: null },
  lease: { attempt: 1 },
  urls: { training_file: { id: "file-t", bytes: 6, lines: 1, format: "text", url: url("train\n") }, validation_file: null, base_model: { id: "micro" }, checkpoint: null, initial_adapter: null },
} as unknown as LeaseAnswer;

let dir: string;
/** A model folder for attempts whose training is faked: only its weights are read (digested) before training. */
let weightsOnly: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-exec-"));
  weightsOnly = join(dir, "weights-only");
  await mkdir(weightsOnly);
  await writeFile(join(weightsOnly, "model.safetensors"), "weights");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** An API client that records the failures reported to it (every job it is told of fails) and any hand-in. */
function recordingClient() {
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
  return { client, failed, calls };
}

it("fails a diverged job with code training_diverged, not retryable, and completes nothing", async () => {
  const { client, failed, calls } = recordingClient();
  // The training worker's rejection as startTrainingWorker gives it: the engine's message and code (loop-worker.ts).
  const diverged = new TrainingDiverged(3, "training diverged at step 3: loss is NaN; lower lr (now 0.0002)");
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { acquire: async () => ({ dir: weightsOnly, release() {} }) } as unknown as ModelCache, workRoot: dir, checkpointEvery: 0,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {},
    startTraining: () => ({ result: Promise.reject(Object.assign(new Error(diverged.message), { code: diverged.code })), cancel: () => {}, suspend: () => {} }),
  };
  expect(await new TrainingExecution(deps, lease).run()).toBe("failed");
  expect(failed).toEqual([{ error: { code: "training_diverged", message: diverged.message }, retryable: false }]);
  expect(calls).toEqual([]);
});

/** Attempt 1 of a chat job, trained on `model` (a copy of `revision`) to its checkpoint at step 2: the lease of attempt 2 resuming it. */
async function resumeLease(model: string, revision: string | null, name: string): Promise<LeaseAnswer> {
  const chats = ["red", "green", "blue"].map((c, i) => JSON.stringify({ messages: [{ role: "user", content: `colour ${i}?` }, { role: "assistant", content: c }] })).join("\n") + "\n";
  const job = { ...lease.job, adapter: { ...lease.job.adapter, r: 2 }, hyperparameters: { ...lease.job.hyperparameters, seq_len: 48 } };
  const first = { ...lease, job, urls: { ...lease.urls, training_file: { ...lease.urls.training_file, format: "chat", url: url(chats) } } } as LeaseAnswer;
  const settings = { models: { acquire: async () => ({ dir: model, revision, release() {} }) } as unknown as ModelCache, checkpointEvery: 1, spinTraining: false };
  const { spec } = await fetchAttemptInputs(first, join(dir, name), settings, new AbortController().signal);
  await runTraining(spec);
  const ckDir = join(spec.checkpointDir!, "2");
  const files = Object.fromEntries(await Promise.all((await readdir(ckDir)).map(async (f) => [f, url(await readFile(join(ckDir, f)))])));
  return { ...first, lease: { attempt: 2 }, urls: { ...first.urls, checkpoint: { step: 2, files } } } as LeaseAnswer;
}

it("fails a resume whose base model's chat template changed since the checkpoint with code checkpoint_mismatch, not retryable", async () => {
  // Attempt 1 trained on the built-in model and checkpointed; attempt 2 gets a copy whose template changed.
  const model = await ensureBuiltinModel(join(dir, "model"));
  const second = await resumeLease(model, null, "attempt-1");
  const changed = join(dir, "model-changed");
  await cp(model, changed, { recursive: true });
  const cfg = JSON.parse(await readFile(join(changed, "tokenizer_config.json"), "utf8"));
  await writeFile(join(changed, "tokenizer_config.json"), JSON.stringify({ ...cfg, chat_template: "{{ 'Chat:\\n' }}" + cfg.chat_template }));

  const { client, failed } = recordingClient();
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { acquire: async () => ({ dir: changed, release() {} }) } as unknown as ModelCache, workRoot: dir, checkpointEvery: 1,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {}, startTraining: startTrainingWorker,
  };
  expect(await new TrainingExecution(deps, second).run()).toBe("failed");
  expect(failed).toHaveLength(1);
  expect(failed[0].retryable).toBe(false);
  expect(failed[0].error.code).toBe("checkpoint_mismatch");
  expect(failed[0].error.message).toMatch(/trained with another tokenization of the data: the base model's tokenizer_config\.json changed since.*start a new fine-tuning job/);
  // The tenant reads this message: it names files within the job's folder, not where this runner keeps them.
  expect(failed[0].error.message).toMatch(/^resume\/2: checkpoint was trained/);
  expect(failed[0].error.message).not.toContain(dir);
}, 60_000);

it("fails a resume on base weights replaced since the checkpoint with code checkpoint_mismatch, not retryable, naming both revisions", async () => {
  // Attempt 1 trained on the copy of revision r1; the operator then uploaded other weights under the same names (r2).
  const model = await ensureBuiltinModel(join(dir, "model-r1"));
  const second = await resumeLease(model, "r1", "attempt-r1");
  const replaced = join(dir, "model-r2");
  await cp(model, replaced, { recursive: true });
  const bytes = await readFile(join(replaced, "model.safetensors"));
  bytes[8 + Number(bytes.readBigUInt64LE(0))] ^= 0x01;
  await writeFile(join(replaced, "model.safetensors"), bytes);

  const { client, failed, calls } = recordingClient();
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { acquire: async () => ({ dir: replaced, revision: "r2", release() {} }) } as unknown as ModelCache, workRoot: dir, checkpointEvery: 1,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {}, startTraining: startTrainingWorker,
  };
  expect(await new TrainingExecution(deps, second).run()).toBe("failed");
  expect(failed).toHaveLength(1);
  expect(failed[0]).toMatchObject({ retryable: false, error: { code: "checkpoint_mismatch" } });
  expect(failed[0].error.message).toMatch(/^resume\/2: checkpoint was trained on other base model weights: revision r1 \(sha256 [0-9a-f]{12}…\), and this run has revision r2 .*Start a new fine-tuning job/);
  expect(calls).toEqual([]);
}, 60_000);

it("keeps training through an API outage at a checkpoint: the checkpoint is recorded once the API answers, and the job completes", async () => {
  const { client, failed, calls } = recordingClient();
  let refusals = 2;
  const recorded: number[] = [];
  Object.assign(client, {
    // The client's own retries (~10 s) gave up: the API is restarting.
    checkpointUploads: async () => {
      if (refusals-- > 0) throw new ApiCallError("POST /checkpoints/uploads: gave up after 6 tries: fetch failed", null, null, true);
      return { urls: {} };
    },
    recordCheckpoint: async (_id: string, _h: unknown, step: number) => void recorded.push(step),
    outputUploads: async () => (calls.push("outputUploads"), { urls: {} }),
    complete: async () => (calls.push("complete"), { job: { fine_tuned_model: "ft:micro:acme::1" } }),
  });
  const adapterDir = join(dir, "outage-adapter");
  await mkdir(adapterDir, { recursive: true });
  let cancelled = false;
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { acquire: async () => ({ dir: weightsOnly, release() {} }) } as unknown as ModelCache, workRoot: dir, checkpointEvery: 1,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {},
    startTraining: (_spec, onEvent) => {
      onEvent({ type: "checkpoint", step: 1, dir: join(dir, "outage-ck"), files: [], version: 2, metrics: {} });
      const result = Promise.resolve({ finalLoss: 1, steps: 2, metrics: {}, adapterDir, trainedTokens: 10 } as unknown as TrainResult);
      return { result, cancel: () => void (cancelled = true), suspend: () => {} };
    },
  };
  expect(await new TrainingExecution(deps, lease).run()).toBe("succeeded");
  expect(cancelled).toBe(false);
  expect(recorded).toEqual([1]);
  expect(failed).toEqual([]);
  expect(calls).toEqual(["outputUploads", "complete"]);
}, 30_000);

it("fails the job with the API's refusal of a checkpoint (not the cancel it causes), not retryable, and completes nothing", async () => {
  const { client, failed, calls } = recordingClient();
  const refusal = "POST /internal/v1/jobs/ftjob-1/checkpoints: 413 payload_too_large checkpoint step 1: optimizer.safetensors is 2000000001 bytes, over TUNESERVE_MAX_BLOB_BYTES=1073741824; its files were deleted";
  Object.assign(client, {
    checkpointUploads: async () => ({ urls: {} }),
    recordCheckpoint: async () => {
      throw new ApiCallError(refusal, 413, "payload_too_large", false, "step");
    },
  });
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { acquire: async () => ({ dir: weightsOnly, release() {} }) } as unknown as ModelCache, workRoot: dir, checkpointEvery: 1,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {},
    // As the training worker does: cancelled, it stops at its next step and rejects with TrainingCancelled.
    startTraining: (_spec, onEvent) => {
      let cancel = () => {};
      const result = new Promise<TrainResult>((_ok, fail) => (cancel = () => fail(new TrainingCancelled(1))));
      onEvent({ type: "checkpoint", step: 1, dir: join(dir, "refused-ck"), files: [], version: 3, metrics: {} });
      return { result, cancel: () => cancel(), suspend: () => {} };
    },
  };
  expect(await new TrainingExecution(deps, lease).run()).toBe("failed");
  expect(failed).toEqual([{ error: { code: "training_failed", message: refusal }, retryable: false }]);
  expect(calls).toEqual([]);
});

it("hands back the base model's copy once the attempt is over: after training failed, and when another input could not be fetched", async () => {
  let releases = 0;
  const models = { acquire: async () => ({ dir: weightsOnly, release: () => void releases++ }) } as unknown as ModelCache;
  const { client, failed } = recordingClient();
  let finishTraining: ((err: Error) => void) | undefined;
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models, workRoot: dir, checkpointEvery: 0,
    shutdownCheckpointMs: 0, spinTraining: false, log: () => {},
    startTraining: () => ({ result: new Promise((_ok, fail) => (finishTraining = fail)), cancel: () => {}, suspend: () => {} }),
  };
  const run = new TrainingExecution(deps, lease).run();
  await vi.waitFor(() => expect(finishTraining).toBeDefined());
  await new Promise((ok) => setTimeout(ok, 20));
  // Still training on it: a newer copy of the model must not remove this one.
  expect(releases).toBe(0);
  finishTraining!(new Error("training worker exited with code 1"));
  expect(await run).toBe("failed");
  await new Promise((ok) => setImmediate(ok));
  expect(releases).toBe(1);

  // A continued adapter whose file name the protocol refuses: the inputs fail after the model was acquired.
  const badInput = { ...lease, urls: { ...lease.urls, initial_adapter: { model: "ft:micro:t:x:1", files: { "../escape": url("x") } } } } as LeaseAnswer;
  expect(await new TrainingExecution(deps, badInput).run()).toBe("failed");
  expect(failed.at(-1)?.error.code).toBe("input_unavailable");
  expect(releases).toBe(2);
});
