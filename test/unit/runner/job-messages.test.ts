// What a job's user reads of its data, as the runner reports it: events and a failed job's error name the
// training and validation files by their API ids and the names they were uploaded as, and the sequence length
// as the job's seq_len, never the runner's local copies (train.jsonl, validation.jsonl) nor the engine's seqLen.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { JobEventInput, LeaseAnswer, RunnerApiClient } from "../../../gpu-runner/src/runner/api-client.js";
import type { ExecutorDeps } from "../../../gpu-runner/src/runner/executor-deps.js";
import type { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import { TrainingExecution } from "../../../gpu-runner/src/runner/training-executor.js";
import { startTrainingWorker } from "../../../gpu-runner/src/engine/train/loop.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { appendEventsBody } from "../../../api/src/jobs/protocol.js";

const url = (content: string) => `data:application/octet-stream;base64,${Buffer.from(content).toString("base64")}`;
/** A lease's file; without a filename, as an API from before lease file names sends it. */
const file = (id: string, lines: string[], filename?: string) => ({ id, ...(filename ? { filename } : {}), bytes: 1, lines: lines.length, format: "prompt_completion", url: url(lines.join("\n") + "\n") });
const short = [JSON.stringify({ prompt: "a:", completion: " b" }), JSON.stringify({ prompt: "c:", completion: " d" })];

function lease(training: ReturnType<typeof file>, validation: ReturnType<typeof file> | null): LeaseAnswer {
  return {
    job: { id: "ftjob-1", seed: 1, hyperparameters: { n_epochs: 1, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 16 }, method: { type: "supervised" }, adapter: { type: "lora", r: 2, alpha: 4, dropout: 0, target_modules: ["q_proj"], use_rslora: false }, progress: null },
    lease: { attempt: 1 },
    urls: { training_file: training, validation_file: validation, base_model: { id: "micro" }, checkpoint: null, initial_adapter: null },
  } as unknown as LeaseAnswer;
}

let dir: string;
let model: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-job-messages-"));
  model = await ensureBuiltinModel(join(dir, "model"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs one attempt on the built-in model with the real training worker; returns the job's events and its error. */
async function attempt(answer: LeaseAnswer): Promise<{ events: JobEventInput[]; error: { code: string; message: string } | undefined }> {
  const events: JobEventInput[] = [];
  let error: { code: string; message: string } | undefined;
  const client = {
    heartbeat: async () => ({ status: "running" }),
    events: async (_id: string, _h: unknown, sent: JobEventInput[]) => void events.push(...sent),
    fail: async (_id: string, _h: unknown, e: { code: string; message: string }) => ((error = e), { status: "failed" }),
  } as unknown as RunnerApiClient;
  const deps: ExecutorDeps = {
    client, runnerId: "r1", runnerName: "test", leaseSeconds: 60, models: { acquire: async () => ({ dir: model, release() {} }) } as unknown as ModelCache,
    workRoot: dir, checkpointEvery: 0, shutdownCheckpointMs: 0, spinTraining: false, log: () => {}, startTraining: startTrainingWorker,
  };
  expect(await new TrainingExecution(deps, answer).run()).toBe("failed");
  return { events, error };
}

// Each prompt alone fills more than the job's 16 tokens: every example is cut, and none has a token left to learn.
const long = ["alpha", "bravo"].map((w) => JSON.stringify({ prompt: `Please repeat the following word back to me exactly once: ${w} ->`, completion: ` ${w}` }));

it("names the training file by its id and uploaded name and the sequence length as seq_len, in the events and the error", async () => {
  const { events, error } = await attempt(lease(file("file-long", long, "long-prompts.jsonl"), null));
  expect(events).toContainEqual({ level: "warn", message: "file-long (long-prompts.jsonl): 2 example(s) longer than seq_len=16 were truncated" });
  expect(error?.message).toBe("file-long (long-prompts.jsonl): no example has a token to train on once cut to seq_len=16 tokens; check the file, or raise seq_len");
}, 60_000);

it("names the validation file by its id and name in the error of a line it refuses, and both files in the events", async () => {
  const { events, error } = await attempt(lease(file("file-t", short, "chats.jsonl"), file("file-v", [short[0], JSON.stringify({ prompt: "e:" })], "held-out.jsonl")));
  expect(events).toContainEqual({ level: "info", message: "file-t (chats.jsonl): 2 example(s) → 2 row(s)" });
  expect(error?.message).toMatch(/^file-v \(held-out\.jsonl\):2: /);
  expect(JSON.stringify({ events, error })).not.toMatch(/train\.jsonl|validation\.jsonl|seqLen/);
}, 60_000);

it("names a file by its id alone when the lease has no file names (an API from before them)", async () => {
  const { events, error } = await attempt(lease(file("file-long", long), null));
  expect(events).toContainEqual({ level: "warn", message: "file-long: 2 example(s) longer than seq_len=16 were truncated" });
  expect(error?.message).toMatch(/^file-long: no example has a token/);
}, 60_000);

it("names a file uploaded under a very long name in events the API takes (the name shortened)", async () => {
  // A multipart filename may run to the part's 16 KiB of headers; an event's message is at most 4000 characters.
  const name = `${"n".repeat(5000)}.jsonl`;
  const { events } = await attempt(lease(file("file-long", long, name), null));
  const truncated = events.find((e) => e.message.includes("longer than seq_len=16 were truncated"));
  expect(truncated?.message).toMatch(/^file-long \(n+…n*\.jsonl\): 2 example/);
  expect(appendEventsBody.safeParse({ runner_id: "r1", attempt: 1, events }).error).toBeUndefined();
}, 60_000);
