// The parts of DPO outside the graph: the reference model's log-likelihoods of every pair, and validation
// over held-out pairs (mean DPO loss, and how often the chosen answer wins). The reference is the model
// training starts from, computed once by the eval graph before the first step: the base model for a new
// adapter (B = 0), the continued fine-tuned model otherwise.
import { rowsToBatch, type Row } from "../data/batches.js";
import type { LoraTrainer } from "./trainer.js";

/** Sets `ref` on every pair row: log π_start(answer | conversation) of its chosen and rejected answer, from the trainer's current (starting) LoRA values; `interrupt` is asked between batches for an error that ends the run (a cancel or a suspend). */
export async function attachReferences(trainer: LoraTrainer, rows: Row[], batchSize: number, interrupt: () => Error | null = () => null): Promise<void> {
  for (let i = 0; i < rows.length; i += batchSize) {
    const err = interrupt();
    if (err) throw err;
    const slice = rows.slice(i, i + batchSize);
    const logp = (await trainer.evaluate(rowsToBatch(slice.map((r) => ({ ...r, ref: [0, 0] }))))).seqLogp!;
    slice.forEach((r, k) => (r.ref = [logp[2 * k], logp[2 * k + 1]]));
  }
}

export type PairEvaluation = { loss: number; rewardAccuracy: number; pairs: number };

/** Mean DPO loss over pairs with the trainer's current LoRA values, and the share of pairs whose margin is positive. */
export async function evaluatePairs(trainer: LoraTrainer, rows: Row[], batchSize: number): Promise<PairEvaluation> {
  let lossSum = 0;
  let wins = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const slice = rows.slice(i, i + batchSize);
    const r = await trainer.evaluate(rowsToBatch(slice));
    lossSum += r.loss * slice.length;
    for (const m of r.margins!) if (m > 0) wins++;
  }
  const n = rows.length;
  return { loss: n ? lossSum / n : NaN, rewardAccuracy: n ? wins / n : NaN, pairs: n };
}
