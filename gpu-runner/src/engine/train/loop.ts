// The LoRA training loop: data → rows → seeded per-epoch shuffles → LoraTrainer steps under the LR
// schedule, with progress/validation/checkpoint events, cancellation or suspension (checkpoint, then stop)
// between steps, exact resume from a checkpoint, and the final PEFT adapter. Runs in the calling thread (see loop-worker.ts for a worker).
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { createRng, rngFromState, type Rng } from "../generate/rng.js";
import { loadModelConfig } from "../model/load-config.js";
import { openWeights } from "../model/weights.js";
import { weightsDigest } from "../model/weights-digest.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";
import { tokenizationChanges, tokenizationIdentity } from "../tokenizer/identity.js";
import { readRecords, type RecordFormat } from "../data/records.js";
import { exampleTokens, tokenizeRecords } from "../data/render.js";
import { packExamples, shuffledOrder, stepMicroBatches, stepsPerEpoch, tokensBefore, type Row } from "../data/batches.js";
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, loadCheckpoint, saveCheckpoint, type TrainerState } from "./checkpoint.js";
import { baseWeightsIdentity, checkBaseWeights } from "./base-weights.js";
import { attachReferences, evaluatePairs } from "./dpo.js";
import { LoraEvaluator } from "./evaluate.js";
import { writePeftAdapter, type AdapterMeta } from "./export.js";
import { resolveLoraConfig } from "./lora-config.js";
import { loadInitialAdapter } from "./initial-adapter.js";
import { allFinite, initParams, paramsFromAdapter } from "./lora-params.js";
import { learningRate, warmupSteps, type Schedule } from "./schedule.js";
import { CheckpointMismatch, DEFAULT_BETA, resolveSpec, TrainingCancelled, TrainingDiverged, TrainingSuspended, type ResolvedSpec, type TrainEvent, type TrainJobSpec, type TrainResult } from "./spec.js";
import { LoraTrainer } from "./trainer.js";

export { CheckpointMismatch, TrainingCancelled, TrainingDiverged, TrainingSuspended, type TrainEvent, type TrainJobSpec, type TrainResult } from "./spec.js";
export { startTrainingWorker, type TrainingWorker } from "./loop-worker.js";

export type TrainHooks = {
  onEvent?: (e: TrainEvent) => void | Promise<void>;
  /** Cancel: asked before every step; the run ends with TrainingCancelled and writes nothing more. */
  shouldStop?: () => boolean;
  /**
   * Suspend (a runner handing its job back): asked before every step, after shouldStop. The run checkpoints
   * the step it reached, as a periodic checkpoint would, unless one is there already, and ends with
   * TrainingSuspended; a later run resumes from that checkpoint.
   */
  shouldSuspend?: () => boolean;
};

/**
 * Loads, tokenizes and (optionally) packs a JSONL file into rows; says what was cut or dropped. `name` is the
 * caller's name for the file (spec.dataName): a runner's messages become a job's events, which name the API's file.
 */
async function loadRows(path: string, name: string, s: ResolvedSpec, tok: Parameters<typeof tokenizeRecords>[1], log: (m: string, warn?: boolean) => Promise<void>): Promise<{ rows: Row[]; format: RecordFormat }> {
  const records = await readRecords(path, name);
  const seqLen = `${s.seqLenName}=${s.seqLen}`;
  const data = tokenizeRecords(records, tok, s.seqLen, name);
  if (data.truncated) await log(`${name}: ${data.truncated} example(s) longer than ${seqLen} were truncated`, true);
  if (data.dropped) await log(`${name}: ${data.dropped} example(s) had no token left to train on and were skipped`, true);
  if (data.lastTurnOnly) await log(`${name}: ${data.lastTurnOnly} chat example(s) learned on their last assistant turn only: the chat template renders earlier turns differently once later ones follow (Mistral's moves the tools to the last user turn), so their earlier assistant turns are context`, true);
  if (data.indistinct) await log(`${name}: ${data.indistinct} preference pair(s) whose two answers are the same tokens once rendered were skipped`, true);
  // The fix is named as the caller's user sets it (a job's seq_len, the CLI's --seq-len): this message becomes a failed job's error.
  if (data.examples.length === 0) throw new Error(`${name}: no example has a token to train on once cut to ${seqLen} tokens; check the file, or raise ${s.seqLenName}`);
  const format = records[0].format;
  const rows = s.packing && format !== "preference" ? packExamples(data.examples, s.seqLen) : data.examples;
  await log(`${name}: ${data.examples.length} ${format === "preference" ? "preference pair(s)" : "example(s)"} → ${rows.length} row(s)`);
  return { rows, format };
}

/** The objective a file of this format trains with; a spec that names another one is an error. */
function objectiveFor(s: ResolvedSpec, format: RecordFormat, file: string): "sft" | "dpo" {
  const fromData = format === "preference" ? "dpo" : "sft";
  if (fromData === "sft" && s.beta !== undefined) throw new Error(`beta is DPO's, and ${file} holds ${format} records, not preference pairs; leave beta out`);
  if (s.objective && s.objective !== fromData) {
    throw new Error(s.objective === "dpo" ? `${file}: DPO trains on preference pairs ({"input","preferred_output","non_preferred_output"}), and this file holds ${format} records` : `${file}: holds preference pairs, which train with DPO (objective "dpo"), not supervised fine-tuning`);
  }
  return fromData;
}

/** A fingerprint written with the micro-batch size and grad_accum apart (before they were one), as rows per step. */
function rowsPerStep(fp: TrainerState["fingerprint"]): TrainerState["fingerprint"] {
  if (fp.grad_accum === undefined) return fp;
  const { grad_accum, ...rest } = fp;
  return { ...rest, batch_size: Number(fp.batch_size) * Number(grad_accum) };
}

/**
 * What a resumed run must share with the run that wrote the checkpoint. `batch_size` is the rows of a step:
 * how a step is split into micro-batches does not change it (their gradients add up to the same step).
 * `tokenizer` (tokenizationIdentity) and `base_weights` (baseWeightsIdentity) are compared apart, see
 * checkTokenization and checkBaseWeights.
 */
function fingerprint(s: ResolvedSpec, dataSha: string, objective: "sft" | "dpo", initSha: string | null, tokenizer: string, baseWeights: string): TrainerState["fingerprint"] {
  return {
    tokenizer,
    base_weights: baseWeights,
    data_sha256: dataSha, rank: s.rank, alpha: s.alpha, targets: JSON.stringify(s.targets), use_rslora: s.useRslora, epochs: s.epochs, lr: s.lr,
    batch_size: s.batchSize * s.gradAccum, seq_len: s.seqLen, seed: s.seed, schedule: s.schedule, warmup_ratio: s.warmupRatio,
    max_grad_norm: s.maxGradNorm, packing: s.packing, dropout: s.dropout,
    // Only DPO's: checkpoints written before DPO existed still resume.
    ...(objective === "dpo" ? { objective, beta: s.beta ?? DEFAULT_BETA } : {}),
    ...(initSha ? { initial_adapter_sha256: initSha } : {}),
  };
}

/**
 * Refuses a checkpoint trained on data tokenized otherwise (the model folder's tokenizer or chat template changed
 * since: re-registered, or another runner's copy): its data order and optimizer state belong to other rows, even
 * when there are as many. Checkpoints written before the fingerprint held the tokenizer still resume.
 */
function checkTokenization(checkpoint: string, saved: TrainerState["fingerprint"][string] | undefined, current: string): void {
  if (saved === undefined) return;
  const changed = tokenizationChanges(String(saved), current);
  if (changed.length === 0) return;
  throw new CheckpointMismatch(
    `${checkpoint}: checkpoint was trained with another tokenization of the data: the base model's ${changed.join(", ")} changed since (a re-registered model, or another copy of it); resume with the model files it was trained with, or start a new fine-tuning job to train with the current ones`,
  );
}

/** Runs a training job in the calling thread. */
export async function runTraining(spec: TrainJobSpec, hooks: TrainHooks = {}): Promise<TrainResult> {
  const s = resolveSpec(spec);
  const emit = async (e: TrainEvent) => void (await hooks.onEvent?.(e));
  const log = (message: string, warn = false) => emit({ type: "log", level: warn ? "warn" : "info", message });
  const lora = resolveLoraConfig({ r: s.rank, lora_alpha: s.alpha, lora_dropout: s.dropout, target_modules: s.targets, use_rslora: s.useRslora }, "train spec");
  const cfg = await loadModelConfig(s.modelDir);
  const tok = await loadTokenizer(s.modelDir);
  if (!tok) throw new Error(`${s.modelDir}: no tokenizer.json; training needs the model's tokenizer`);
  if (tok.vocabSize > cfg.vocab) throw new Error(`${s.modelDir}: tokenizer has ${tok.vocabSize} ids but config.json vocab_size=${cfg.vocab}`);
  // Rows no longer than inference serves (it caps contexts at both, as the API caps a job's seq_len): past
  // max_position_embeddings the model trains on positions it was never made for, and past a windowed model's
  // (Mistral's) sliding_window the training graph's full causal attention is attention the model never uses.
  if (s.seqLen > cfg.maxPositions) throw new Error(`train spec: ${s.seqLenName}=${s.seqLen} exceeds the model's max_position_embeddings (${cfg.maxPositions}); use ${s.seqLenName} ≤ ${cfg.maxPositions}`);
  if (cfg.slidingWindow !== null && s.seqLen > cfg.slidingWindow) {
    throw new Error(`train spec: ${s.seqLenName}=${s.seqLen} exceeds the model's sliding_window (${cfg.slidingWindow}), whose windowed attention this engine does not implement; use ${s.seqLenName} ≤ ${cfg.slidingWindow}`);
  }
  if (s.dropout > 0) await log(`lora_dropout=${s.dropout}: resumed runs are not bit-identical (dropout masks come from ONNX Runtime's RNG)`, true);

  const dataName = s.dataName ?? s.dataPath;
  const { rows, format } = await loadRows(s.dataPath, dataName, s, tok, log);
  const objective = objectiveFor(s, format, dataName);
  const dataSha = createHash("sha256").update(await readFile(s.dataPath)).digest("hex");
  const initSha = s.initAdapter ? createHash("sha256").update(await readFile(join(s.initAdapter, "adapter_model.safetensors"))).digest("hex") : null;
  const validationName = s.validationName ?? s.validationPath;
  const val = s.validationPath ? await loadRows(s.validationPath, validationName!, s, tok, log) : null;
  if (val && objectiveFor(s, val.format, validationName!) !== objective) throw new Error(`${validationName}: holds ${val.format} records, and the training file ${format} records; validate on data of the training file's kind`);
  const valRows = val?.rows ?? null;
  if (objective === "dpo" && s.packing) await log("packing is off for DPO: each answer is scored as a sequence of its own", true);
  const perEpoch = stepsPerEpoch(rows.length, s.batchSize, s.gradAccum);
  const totalSteps = perEpoch * s.epochs;
  const schedule: Schedule = { kind: s.schedule, lr: s.lr, totalSteps, warmupSteps: warmupSteps(totalSteps, s.warmupRatio) };
  const tokensPerEpoch = rows.reduce((n, r) => n + exampleTokens(r), 0);
  const checkpointDir = s.checkpointDir ?? join(s.outDir, "checkpoints");
  const meta: AdapterMeta = { rank: lora.rank, alpha: lora.alpha, dropout: lora.dropout, targets: lora.targets, useRslora: s.useRslora, baseModel: s.baseModelName ?? basename(resolve(s.modelDir)) };
  const baseWeights = baseWeightsIdentity(s.baseWeightsSha256 ?? (await weightsDigest(s.modelDir)), s.baseRevision ?? null);
  const fp = fingerprint(s, dataSha, objective, initSha, await tokenizationIdentity(s.modelDir, tok.eosTokenIds), baseWeights);

  const weights = await openWeights(s.modelDir);
  const trainer = new LoraTrainer(cfg, weights, { rank: lora.rank, scale: lora.scale, targets: lora.targets, dropout: lora.dropout, maxGradNorm: s.maxGradNorm, threads: s.threads, spin: s.spin, objective: objective === "dpo" ? { kind: "dpo", beta: s.beta ?? DEFAULT_BETA } : { kind: "sft" } });
  const evaluator = valRows && objective === "sft" ? new LoraEvaluator(cfg, weights, { rank: lora.rank, scale: lora.scale, targets: lora.targets, threads: s.threads }) : null;
  // Separate streams: LoRA init never shifts the data order, and both are reproducible from the seed.
  trainer.setParams(initParams(trainer.params, "float32", createRng(s.seed).next));
  if (s.initAdapter) {
    const start = await loadInitialAdapter(s.initAdapter, cfg, lora);
    trainer.setParams(paramsFromAdapter(start, trainer.params, "float32"));
    await log(`starting from the initial adapter (r=${start.rank}) instead of a new one`);
  }
  let rng: Rng = createRng(s.seed + 1);
  let order: number[] = [];
  let orderEpoch = -1;
  let losses: number[] = [];
  const metrics: Record<string, number> = { examples_rows: rows.length, tokens_per_epoch: tokensPerEpoch, total_steps: totalSteps };

  try {
    if (objective === "dpo") {
      // The starting model's log-likelihoods, once (before a checkpoint's values replace the starting ones):
      // deterministic, so a resumed run computes the same ones.
      // No step trained yet, so a suspend has nothing to keep.
      const interrupt = () => (hooks.shouldStop?.() ? new TrainingCancelled(0) : hooks.shouldSuspend?.() ? new TrainingSuspended(0, false) : null);
      await attachReferences(trainer, rows, s.batchSize, interrupt);
      if (valRows) await attachReferences(trainer, valRows, s.batchSize, interrupt);
      const counted = valRows ? `${rows.length} training and ${valRows.length} validation pair(s)` : `${rows.length} pair(s)`;
      await log(`DPO (beta=${s.beta ?? DEFAULT_BETA}): reference log-likelihoods of ${counted} computed with the model training starts from`);
    }
    if (s.resumeFrom) {
      const ck = await loadCheckpoint(s.resumeFrom, trainer.params);
      const { tokenizer: savedTokenizer, base_weights: savedWeights, ...theirs } = rowsPerStep(ck.state.fingerprint);
      const { tokenizer: ourTokenizer, base_weights: ourWeights, ...ours } = fp;
      // Keys of either side: a setting only one of the two runs had (a starting adapter, DPO) differs too.
      const diff = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].filter((k) => ours[k] !== theirs[k]);
      if (diff.length) throw new CheckpointMismatch(`${s.resumeFrom}: checkpoint was written by a run with different ${diff.join(", ")}; resume with the same settings and data`);
      checkTokenization(s.resumeFrom, savedTokenizer, String(ourTokenizer));
      checkBaseWeights(s.resumeFrom, savedWeights, String(ourWeights));
      if (ck.state.step > totalSteps) throw new CheckpointMismatch(`${s.resumeFrom}: checkpoint is at step ${ck.state.step}, past this run's ${totalSteps} steps`);
      // A checkpoint without the tokenizer's identity (written before it was recorded) can still have been trained
      // on other rows: the saved order would then pick rows that are not there, or others than the run trained on.
      if (ck.state.order.length > 0 && ck.state.order.length !== rows.length) {
        throw new CheckpointMismatch(`${s.resumeFrom}: checkpoint's data order has ${ck.state.order.length} rows, and this run's data gives ${rows.length}; the model's tokenizer or chat template is not the one the checkpoint was trained with`);
      }
      trainer.setParams(ck.values);
      trainer.m = ck.m;
      trainer.v = ck.v;
      trainer.stepCount = ck.state.step;
      ({ order, orderEpoch, losses } = ck.state);
      rng = rngFromState(ck.state.rng);
      Object.assign(metrics, ck.state.metrics);
      await log(`resumed from the checkpoint at step ${ck.state.step} of ${totalSteps}`);
    }
    // The step of the newest checkpoint this run wrote or resumed from: a suspend there writes no other one.
    let savedStep = trainer.stepCount;
    const save = async (step: number) => {
      const dir = join(checkpointDir, String(step));
      const state: TrainerState = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step, orderEpoch, order, rng: rng.state(), fingerprint: fp, losses, metrics };
      const files = await saveCheckpoint(dir, trainer.params, { state, values: trainer.values, m: trainer.m, v: trainer.v }, meta);
      savedStep = step;
      await emit({ type: "checkpoint", step, dir, files, version: state.version, metrics: { ...metrics } });
    };
    const validate = async (step: number) => {
      if (!valRows) return;
      // Billed with training (ARCHITECTURE.md §7): every validation token processed, over all evaluations.
      metrics.validation_tokens = (metrics.validation_tokens ?? 0) + valRows.reduce((n, row) => n + exampleTokens(row), 0);
      if (evaluator) {
        const r = await evaluator.evaluate(valRows, trainer.values, s.batchSize);
        metrics.valid_loss = r.loss;
        metrics.valid_mean_token_accuracy = r.tokenAccuracy;
        await emit({ type: "validation", step, loss: r.loss, tokenAccuracy: r.tokenAccuracy });
      } else {
        const r = await evaluatePairs(trainer, valRows, s.batchSize);
        metrics.valid_loss = r.loss;
        metrics.valid_reward_accuracy = r.rewardAccuracy;
        await emit({ type: "validation", step, loss: r.loss, rewardAccuracy: r.rewardAccuracy });
      }
    };

    const startStep = trainer.stepCount;
    // Tokens of the current epoch's steps done so far (a run resumed mid-epoch counts the steps before it once).
    let epochTokens = tokensBefore(rows, order, startStep % perEpoch, s.batchSize * s.gradAccum);
    let tFirst = 0;
    for (let step = startStep; step < totalSteps; ) {
      if (hooks.shouldStop?.()) throw new TrainingCancelled(step);
      if (hooks.shouldSuspend?.()) {
        // Here, between steps, the state is the one a periodic checkpoint at this step holds (its validation
        // included), so a resume continues exactly.
        const fresh = step > savedStep;
        if (fresh) await save(step);
        throw new TrainingSuspended(step, fresh);
      }
      const epoch = Math.floor(step / perEpoch);
      if (orderEpoch !== epoch) {
        order = shuffledOrder(rows.length, rng);
        orderEpoch = epoch;
        epochTokens = 0;
      }
      const { micro, tokens } = stepMicroBatches(rows, order, step % perEpoch, s.batchSize, s.gradAccum);
      const lr = learningRate(schedule, step);
      const ts = performance.now();
      const { loss, gradNorm } = await trainer.step(micro, lr);
      const stepS = (performance.now() - ts) / 1000;
      // The loss is the one before the update: a finite loss can still come with a gradient or an update that
      // overflowed, which would leave NaN or ±Infinity in the adapter (and in the next checkpoint) otherwise.
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm) || ![...trainer.values.values()].every(allFinite)) {
        const what = !Number.isFinite(loss) ? `loss is ${loss}` : !Number.isFinite(gradNorm) ? `gradient norm is ${gradNorm}` : "the update made LoRA weights non-finite";
        throw new TrainingDiverged(step + 1, `training diverged at step ${step + 1}: ${what}; lower the learning rate (lr ${s.lr}: a job's learning_rate_multiplier, the CLI's --lr)${s.maxGradNorm === null ? " or set maxGradNorm" : ""}`);
      }
      step++;
      losses.push(loss);
      metrics.train_loss = loss;
      metrics.grad_norm = gradNorm;
      // The first step of a run also builds the graph sessions; the ETA leaves it out once it can.
      if (step - startStep === 1) tFirst = performance.now();
      const avgS = step - startStep > 1 ? (performance.now() - tFirst) / 1000 / (step - startStep - 1) : stepS;
      // Billable so far: whole epochs, this epoch's rows up to here, and the validation passes run (ARCHITECTURE.md §7).
      epochTokens += tokens;
      const trainedTokens = tokensPerEpoch * Math.floor(step / perEpoch) + (step % perEpoch === 0 ? 0 : epochTokens) + (metrics.validation_tokens ?? 0);
      await emit({ type: "progress", step, totalSteps, epoch: Math.round((step / perEpoch) * 1e4) / 1e4, loss, lr, tokensPerS: tokens / stepS, etaS: avgS * (totalSteps - step), trainedTokens });
      if (step % perEpoch === 0) await validate(step);
      if (s.checkpointEvery > 0 && step % s.checkpointEvery === 0 && step < totalSteps) await save(step);
    }
    await save(totalSteps);
    await writePeftAdapter(s.outDir, trainer.params, trainer.values, meta);
    // The billed quantity: training tokens × epochs plus every validation token processed.
    metrics.trained_tokens = tokensPerEpoch * s.epochs + (metrics.validation_tokens ?? 0);
    return { adapterDir: s.outDir, trainedTokens: metrics.trained_tokens, steps: totalSteps, finalLoss: losses[losses.length - 1] ?? NaN, metrics: { ...metrics } };
  } finally {
    await trainer.release();
    await evaluator?.release();
  }
}
