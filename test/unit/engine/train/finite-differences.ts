// Whole-model gradient check for tests: the trainer's analytic LoRA gradients of a batch against central
// finite differences of its loss, on two elements of every fifth LoRA tensor (A and B, across layers and modules).
import type { TrainBatch } from "../../../../gpu-runner/src/engine/train/feeds.js";
import type { LoraTrainer } from "../../../../gpu-runner/src/engine/train/trainer.js";

/** Worst |fd − analytic| / max(|fd|, 1e-3) over the sampled elements, and how many tensors were sampled. */
export async function worstGradientError(t: LoraTrainer, batch: TrainBatch, h = 1e-5): Promise<{ worst: number; tensors: number }> {
  const { grads } = await t.grads(batch);
  const picks = t.params.filter((_, i) => i % 5 === 0);
  let worst = 0;
  for (const p of picks) {
    const val = t.values.get(p.name)!;
    const g = grads.get(p.name)!;
    for (const idx of [0, Math.floor(val.length / 2) + 1]) {
      const orig = val[idx];
      val[idx] = orig + h;
      const up = await t.loss(batch);
      val[idx] = orig - h;
      const down = await t.loss(batch);
      val[idx] = orig;
      const fd = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - g[idx]) / Math.max(Math.abs(fd), 1e-3));
    }
  }
  return { worst, tensors: picks.length };
}
