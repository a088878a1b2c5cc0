// The training loop on the built-in model: events in order with the schedule's LR, validation loss and
// token accuracy, trained-token count, the final adapter and checkpoint, cancellation between steps (in
// the calling thread and in the worker), and spec errors by name.
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTraining, startTrainingWorker, TrainingCancelled, TrainingDiverged, type TrainEvent } from "../../../../gpu-runner/src/engine/train/loop.js";
import { learningRate } from "../../../../gpu-runner/src/engine/train/schedule.js";
import { ensureBuiltinModel } from "../../../../gpu-runner/src/models/builtin.js";
import { useMistralTemplate } from "../../../helpers/mistral-template.js";

let root: string;
let model: string;
let data: string;
let valid: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tuneserve-loop-"));
  model = await ensureBuiltinModel(join(root, "model"));
  data = join(root, "train.jsonl");
  valid = join(root, "valid.jsonl");
  const recs = ["alpha", "bravo", "charlie", "delta", "echo"].map((w, i) => JSON.stringify({ prompt: `word ${i}:`, completion: ` ${w}` }));
  await writeFile(data, recs.join("\n") + "\n");
  await writeFile(valid, recs.slice(0, 2).join("\n") + "\n");
});
afterAll(() => rm(root, { recursive: true, force: true }));

const exists = (p: string) => stat(p).then(() => true, () => false);

describe("runTraining", () => {
  it("emits progress per step with the scheduled LR, validates per epoch, checkpoints, writes the adapter", async () => {
    const events: TrainEvent[] = [];
    const out = join(root, "run");
    const res = await runTraining(
      { modelDir: model, dataPath: data, validationPath: valid, outDir: out, epochs: 2, batchSize: 2, seqLen: 32, lr: 5e-3, warmupRatio: 0.25, checkpointEvery: 2, rank: 4, alpha: 8 },
      { onEvent: (e) => void events.push(e) },
    );
    const progress = events.filter((e) => e.type === "progress");
    // 5 rows, batch 2 → 3 steps per epoch, 6 in all; warmup ⌈0.25·6⌉ = 2.
    expect(progress.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(progress.map((e) => e.lr)).toEqual([0, 1, 2, 3, 4, 5].map((s) => learningRate({ kind: "cosine", lr: 5e-3, totalSteps: 6, warmupSteps: 2 }, s)));
    expect(progress.map((e) => e.epoch)).toEqual([0.3333, 0.6667, 1, 1.3333, 1.6667, 2]);
    for (const p of progress) {
      expect(p.totalSteps).toBe(6);
      expect(p.tokensPerS).toBeGreaterThan(0);
      expect(Number.isFinite(p.loss)).toBe(true);
    }
    expect(progress[5].etaS).toBe(0);
    const val = events.filter((e) => e.type === "validation");
    expect(val.map((e) => e.step)).toEqual([3, 6]);
    for (const v of val) {
      expect(v.loss).toBeGreaterThan(0);
      expect(v.tokenAccuracy).toBeGreaterThanOrEqual(0);
      expect(v.tokenAccuracy).toBeLessThanOrEqual(1);
    }
    expect(events.filter((e) => e.type === "checkpoint").map((e) => e.step)).toEqual([2, 4, 6]);
    expect((await readdir(join(out, "checkpoints"))).sort()).toEqual(["2", "4", "6"]);
    // Tokens × epochs: each record is "word i:" (7) + " <word>" + EOS, no padding counted.
    const perEpoch = ["alpha", "bravo", "charlie", "delta", "echo"].reduce((n, w) => n + 7 + 1 + w.length + 1, 0);
    // Billed: tokens × epochs plus both validation passes.
    const validPerPass = ["alpha", "bravo"].reduce((n, w) => n + 7 + 1 + w.length + 1, 0);
    expect(res).toMatchObject({ adapterDir: out, trainedTokens: 2 * perEpoch + 2 * validPerPass, steps: 6, finalLoss: progress[5].loss });
    expect(res.metrics.valid_loss).toBe(val[1].loss);
    expect(res.metrics.validation_tokens).toBe(2 * validPerPass);
    // Progress counts what is billable so far: the rows of the steps done and the validation passes before them.
    const counted = progress.map((e) => e.trainedTokens);
    expect(counted[2]).toBe(perEpoch);
    expect(counted[5]).toBe(2 * perEpoch + validPerPass);
    for (let i = 1; i < 6; i++) expect(counted[i]).toBeGreaterThan(counted[i - 1]);
    expect(await exists(join(out, "adapter_model.safetensors"))).toBe(true);
    expect(await exists(join(out, "adapter_config.json"))).toBe(true);
  });

  it("packs short examples into shared rows and reports truncation", async () => {
    const events: TrainEvent[] = [];
    // Records are 14, 14, 16, 14, 13 tokens: [14+14], [16+14], [13] in 32-token rows; batch 2 → 2 steps.
    const res = await runTraining({ modelDir: model, dataPath: data, outDir: join(root, "packed"), epochs: 1, batchSize: 2, seqLen: 32, packing: true, rank: 2 }, { onEvent: (e) => void events.push(e) });
    expect(res.steps).toBe(2);
    expect(events).toContainEqual({ type: "log", level: "info", message: `${data}: 5 example(s) → 3 row(s)` });
    const cut = await runTraining({ modelDir: model, dataPath: data, outDir: join(root, "cut"), epochs: 1, batchSize: 5, seqLen: 12, rank: 2 }, { onEvent: (e) => void events.push(e) });
    expect(events).toContainEqual({ type: "log", level: "warn", message: `${data}: 5 example(s) longer than seqLen=12 were truncated` });
    expect(cut.trainedTokens).toBe(5 * 12);
  });

  it("fails a file left with nothing to learn once cut, naming the file and the setting to raise as the caller names them", async () => {
    // Each prompt ("word 0:") alone fills 4 tokens: no completion token is left to learn.
    const spec = { modelDir: model, dataPath: data, outDir: join(root, "nothing"), epochs: 1, seqLen: 4, rank: 2 };
    await expect(runTraining(spec)).rejects.toThrow(`${data}: no example has a token to train on once cut to seqLen=4 tokens; check the file, or raise seqLen`);
    // A runner names the job's file and hyperparameter: the message becomes the job's error.
    await expect(runTraining({ ...spec, dataName: "file-abc", seqLenName: "seq_len" })).rejects.toThrow(
      /^file-abc: no example has a token to train on once cut to seq_len=4 tokens; check the file, or raise seq_len$/,
    );
  });

  it("warns of chat examples learned on their last assistant turn only (a Mistral-style template moving the tools)", async () => {
    const mistral = join(root, "model-mistral");
    await cp(model, mistral, { recursive: true });
    await useMistralTemplate(mistral);
    const chats = join(root, "chats.jsonl");
    const tools = [{ type: "function", function: { name: "f" } }];
    const turns = [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }, { role: "assistant", content: "d" }];
    await writeFile(chats, [JSON.stringify({ tools, messages: turns }), JSON.stringify({ messages: turns })].join("\n") + "\n");
    const events: TrainEvent[] = [];
    await runTraining({ modelDir: mistral, dataPath: chats, outDir: join(root, "last-turn"), epochs: 1, batchSize: 2, seqLen: 128, rank: 2 }, { onEvent: (e) => void events.push(e) });
    expect(events).toContainEqual({ type: "log", level: "warn", message: expect.stringContaining(`${chats}: 1 chat example(s) learned on their last assistant turn only: `) });
  });

  it("stops between steps when shouldStop says so, writing no adapter", async () => {
    const out = join(root, "stopped");
    let steps = 0;
    const run = runTraining({ modelDir: model, dataPath: data, outDir: out, epochs: 3, batchSize: 1, seqLen: 32, rank: 2 }, { onEvent: (e) => void (e.type === "progress" && steps++), shouldStop: () => steps >= 2 });
    await expect(run).rejects.toThrow(TrainingCancelled);
    await expect(run).rejects.toMatchObject({ step: 2 });
    expect(await exists(join(out, "adapter_model.safetensors"))).toBe(false);
  });

  it("fails a run whose update leaves non-finite LoRA weights, though its loss was finite, writing no adapter or checkpoint", async () => {
    // One step: the loss it reports is the one before the update, so only the weights show the overflow.
    const out = join(root, "diverged");
    const spec = { modelDir: model, dataPath: data, outDir: out, epochs: 1, batchSize: 5, seqLen: 32, lr: 1e39, rank: 2 };
    const events: TrainEvent[] = [];
    const run = runTraining(spec, { onEvent: (e) => void events.push(e) });
    await expect(run).rejects.toThrow(TrainingDiverged);
    await expect(run).rejects.toThrow(/training diverged at step 1: the update made LoRA weights non-finite; lower the learning rate \(lr 1e\+39: a job's learning_rate_multiplier, the CLI's --lr\)$/);
    expect(events.filter((e) => e.type === "progress" || e.type === "checkpoint")).toEqual([]);
    expect(await exists(join(out, "adapter_model.safetensors"))).toBe(false);
    expect(await exists(join(out, "checkpoints"))).toBe(false);
    // From a worker thread the job's error keeps its code (the runner reports it as the job's error code).
    await expect(startTrainingWorker({ ...spec, outDir: join(root, "diverged-worker"), maxGradNorm: null }, () => {}).result).rejects.toMatchObject({ code: "training_diverged", message: expect.stringMatching(/or set maxGradNorm$/) });
  });

  it("refuses to continue an adapter that holds NaN, naming the tensor, rather than failing as a divergence", async () => {
    const good = join(root, "start");
    await runTraining({ modelDir: model, dataPath: data, outDir: good, epochs: 1, batchSize: 5, seqLen: 32, rank: 2, targets: ["q_proj"] });
    const bad = join(root, "start-nan");
    await cp(good, bad, { recursive: true });
    const file = await readFile(join(bad, "adapter_model.safetensors"));
    // The last 4 bytes are the last F32 of the last tensor (layer 1's lora_B, in name order).
    file.writeFloatLE(NaN, file.length - 4);
    await writeFile(join(bad, "adapter_model.safetensors"), file);
    const spec = { modelDir: model, dataPath: data, outDir: join(root, "from-nan"), epochs: 1, batchSize: 5, seqLen: 32, rank: 2, targets: ["q_proj"] };
    await expect(runTraining({ ...spec, initAdapter: bad })).rejects.toThrow(/the initial adapter's lora_B of 1\.q_proj holds NaN or ±Infinity/);
    expect((await runTraining({ ...spec, initAdapter: good })).steps).toBe(1);
  });

  it("names the bad field or file", async () => {
    await expect(runTraining({ modelDir: model, dataPath: data, outDir: join(root, "x"), rank: 0 })).rejects.toThrow(/train spec: rank/);
    await expect(runTraining({ modelDir: model, dataPath: data, outDir: join(root, "x"), targets: ["qkv"] })).rejects.toThrow(/target_modules \["qkv"\]/);
    await expect(runTraining({ modelDir: model, dataPath: join(root, "missing.jsonl"), outDir: join(root, "x") })).rejects.toThrow(/missing\.jsonl: cannot be read/);
    // Rows longer than inference serves: past max_position_embeddings (the built-in model's is 2048), and past a
    // Mistral-style model's window, which the training graph does not implement.
    await expect(runTraining({ modelDir: model, dataPath: data, outDir: join(root, "x"), seqLen: 4096 })).rejects.toThrow(/seqLen=4096 exceeds the model's max_position_embeddings \(2048\); use seqLen ≤ 2048/);
    const windowed = join(root, "windowed");
    await cp(model, windowed, { recursive: true });
    const config = JSON.parse(await readFile(join(windowed, "config.json"), "utf8"));
    await writeFile(join(windowed, "config.json"), JSON.stringify({ ...config, architectures: ["MistralForCausalLM"], model_type: "mistral", sliding_window: 16 }));
    await expect(runTraining({ modelDir: windowed, dataPath: data, outDir: join(root, "x"), seqLen: 32 })).rejects.toThrow(/seqLen=32 exceeds the model's sliding_window \(16\).*use seqLen ≤ 16/);
    const fits = await runTraining({ modelDir: windowed, dataPath: data, outDir: join(root, "windowed-out"), seqLen: 16, epochs: 1, batchSize: 5, rank: 2 });
    expect(fits.steps).toBe(1);
  });
});

describe("startTrainingWorker", () => {
  it("streams events from the worker and cancels between steps", async () => {
    const events: TrainEvent[] = [];
    let w: ReturnType<typeof startTrainingWorker> | null = null;
    w = startTrainingWorker({ modelDir: model, dataPath: data, outDir: join(root, "worker"), epochs: 50, batchSize: 1, seqLen: 32, rank: 2 }, (e) => {
      events.push(e);
      if (e.type === "progress" && e.step === 2) w?.cancel();
    });
    await expect(w.result).rejects.toThrow(TrainingCancelled);
    const last = events.filter((e) => e.type === "progress").pop();
    expect(last && last.type === "progress" && last.step).toBeGreaterThanOrEqual(2);
    expect(last && last.type === "progress" && last.step).toBeLessThan(250);
  });
});
