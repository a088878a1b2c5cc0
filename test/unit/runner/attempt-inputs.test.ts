// A lease → the engine's TrainJobSpec: every setting a job can be created with (n_epochs, batch_size,
// learning_rate_multiplier via learning_rate, seq_len, beta, seed, the adapter's r/alpha/dropout/targets/
// rsLoRA, the validation file, the adapter it continues, the checkpoint it resumes) reaches the spec, and
// what the API does not set is left to the engine's documented defaults.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LeaseAnswer } from "../../../gpu-runner/src/runner/api-client.js";
import { fetchAttemptInputs } from "../../../gpu-runner/src/runner/attempt-inputs.js";
import type { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import { resolveSpec } from "../../../gpu-runner/src/engine/train/spec.js";

const url = (text: string) => `data:application/octet-stream;base64,${Buffer.from(text).toString("base64")}`;
/** A blob-store copy of revision r7: the weights file is all the spec reads of it here. */
let modelDir: string;
const models = { acquire: async () => ({ dir: modelDir, revision: "r7", release() {} }) } as unknown as ModelCache;
const file = (id: string, text: string, filename?: string) => ({ id, ...(filename ? { filename } : {}), bytes: text.length, lines: 1, format: "chat", url: url(text) });

function lease(method: LeaseAnswer["job"]["method"], extra: Partial<LeaseAnswer["urls"]> = {}): LeaseAnswer {
  const hp = method.type === "dpo" ? method.dpo.hyperparameters : method.supervised.hyperparameters;
  return {
    job: { id: "ftjob-1", seed: 1234, hyperparameters: hp, method, adapter: { type: "lora", r: 16, alpha: 8, dropout: 0.05, target_modules: ["q_proj", "v_proj"], use_rslora: true } },
    lease: { attempt: 2 },
    urls: { training_file: file("file-t", "train\n", "support-chats.jsonl"), validation_file: file("file-v", "valid\n", "held-out.jsonl"), base_model: { id: "micro" }, checkpoint: null, initial_adapter: null, ...extra },
  } as unknown as LeaseAnswer;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-attempt-"));
  modelDir = join(dir, "micro");
  await mkdir(modelDir);
  await writeFile(join(modelDir, "model.safetensors"), "weights");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("fetchAttemptInputs", () => {
  it("puts every job setting into the spec, and the engine's defaults under the rest", async () => {
    const method = { type: "supervised", supervised: { hyperparameters: { n_epochs: 5, batch_size: 4, learning_rate_multiplier: 2.5, learning_rate: 5e-4, seq_len: 256 } } } as const;
    const { spec, trainingBytes } = await fetchAttemptInputs(lease(method), dir, { models, checkpointEvery: 7, spinTraining: false }, new AbortController().signal);
    expect(trainingBytes).toBe(6);
    expect(await readFile(spec.dataPath, "utf8")).toBe("train\n");
    expect(await readFile(spec.validationPath!, "utf8")).toBe("valid\n");
    const s = resolveSpec(spec);
    expect(s).toMatchObject({
      // The adapter names its base model by id: a cached copy's folder is named by the revision of its files.
      modelDir, baseModelName: "micro", objective: "sft", epochs: 5, lr: 5e-4, seqLen: 256, seed: 1234,
      // batch_size is the rows of a step: 4 rows of 256 tokens fit one run.
      batchSize: 4, gradAccum: 1,
      rank: 16, alpha: 8, dropout: 0.05, targets: ["q_proj", "v_proj"], useRslora: true,
      checkpointEvery: 7, spin: false, initAdapter: undefined, resumeFrom: undefined,
      // Messages name what the job's user knows: the API's file ids and names, and seq_len, not the local copies.
      dataName: "file-t (support-chats.jsonl)", validationName: "file-v (held-out.jsonl)", seqLenName: "seq_len",
      // Not settable through the API: the documented defaults (docs/training.md).
      schedule: "cosine", warmupRatio: 0.03, maxGradNorm: 1, packing: false,
    });
    expect(s.beta).toBeUndefined();
  });

  it("names the files by id alone when the lease has no file names (an API from before them)", async () => {
    const method = { type: "supervised", supervised: { hyperparameters: { n_epochs: 1, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 64 } } } as const;
    const older = lease(method, { training_file: file("file-t", "train\n"), validation_file: file("file-v", "valid\n") });
    const { spec } = await fetchAttemptInputs(older, join(dir, "older-api"), { models, checkpointEvery: 0, spinTraining: false }, new AbortController().signal);
    expect(resolveSpec(spec)).toMatchObject({ dataName: "file-t", validationName: "file-v" });
  });

  it("names the base weights for the checkpoints: the copy's revision and the digest of its weights", async () => {
    const method = { type: "supervised", supervised: { hyperparameters: { n_epochs: 1, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 64 } } } as const;
    const { spec } = await fetchAttemptInputs(lease(method), join(dir, "weights"), { models, checkpointEvery: 0, spinTraining: false }, new AbortController().signal);
    const digest = createHash("sha256").update("model.safetensors\n7\nweights\n").digest("hex");
    expect(resolveSpec(spec)).toMatchObject({ baseRevision: "r7", baseWeightsSha256: digest });
  });

  it("DPO: beta, pairs per step split by sequence length, the adapter it continues and the checkpoint it resumes", async () => {
    const method = { type: "dpo", dpo: { hyperparameters: { n_epochs: 2, batch_size: 6, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 2048, beta: 0.25 } } } as const;
    const files = { "adapter_config.json": url("{}"), "adapter_model.safetensors": url("x") };
    const ck = { "trainer_state.json": url("{}"), "optimizer.safetensors": url("y"), ...files };
    const { spec } = await fetchAttemptInputs(lease(method, { initial_adapter: { model: "ft:micro:t:x:1", files }, checkpoint: { step: 3, files: ck } }), join(dir, "dpo"), { models, checkpointEvery: 0, spinTraining: true }, new AbortController().signal);
    const s = resolveSpec(spec);
    // A pair is two 2048-token sequences: one pair per run, six runs a step.
    expect(s).toMatchObject({ objective: "dpo", beta: 0.25, epochs: 2, seqLen: 2048, batchSize: 1, gradAccum: 6, spin: undefined });
    expect(await readFile(join(s.initAdapter!, "adapter_model.safetensors"), "utf8")).toBe("x");
    expect(s.resumeFrom).toMatch(/resume[/\\]3$/);
    expect(await readFile(join(s.resumeFrom!, "optimizer.safetensors"), "utf8")).toBe("y");
  });
});
