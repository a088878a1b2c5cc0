// Gradient accumulation, clipping and AdamW together, in float64: a step over micro-batches of different
// token counts must be the step of one batch holding all their rows (the loss averaged over the step's
// masked tokens, not over micro-batches), clipped by its global norm, then PyTorch's AdamW update.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { loadLoraAdapter } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { LoraTrainer } from "../../../../gpu-runner/src/engine/train/trainer.js";
import { paramsFromAdapter } from "../../../../gpu-runner/src/engine/train/lora-params.js";
import { rowsToBatch, type Row } from "../../../../gpu-runner/src/engine/data/batches.js";
import { ADAMW_DEFAULTS } from "../../../../gpu-runner/src/engine/train/adamw.js";

const dir = join(import.meta.dirname, "../../../../../shared/fixtures/micro-llama");

// Rows of different lengths and loss masks: micro-batch 1 has 2 masked tokens, micro-batch 2 has 7.
const row = (ids: number[], from: number): Row => ({ ids, train: ids.map((_, i) => i >= from) });
const micro1 = [row([5, 9, 13, 200, 7], 3)];
const micro2 = [row([3, 17, 200, 45, 9, 88, 41, 2], 2), row([101, 7, 7, 250], 2)];

async function trainer(maxGradNorm: number | null): Promise<LoraTrainer> {
  const cfg = await loadModelConfig(join(dir, "base"));
  const adapter = await loadLoraAdapter(join(dir, "adapter"), cfg);
  const t = new LoraTrainer(cfg, await openWeights(join(dir, "base")), { rank: adapter.rank, scale: adapter.scale, targets: adapter.targets, dtype: "float64", threads: 1, maxGradNorm });
  t.setParams(paramsFromAdapter(adapter, t.params, "float64"));
  return t;
}

describe("a step over micro-batches", () => {
  it.each([
    ["without clipping", null],
    ["clipped to a norm below the gradient's", 0.05],
  ] as const)("equals the one-batch step %s, over two steps", async (_name, maxGradNorm) => {
    const t = await trainer(maxGradNorm);
    const ref = await trainer(maxGradNorm);
    const whole = rowsToBatch([...micro1, ...micro2]);
    const { beta1, beta2, eps } = ADAMW_DEFAULTS;
    const lr = 1e-2;
    const p = new Map([...ref.values].map(([k, v]) => [k, Float64Array.from(v)]));
    const m = new Map([...p].map(([k, v]) => [k, new Float64Array(v.length)]));
    const v2 = new Map([...p].map(([k, v]) => [k, new Float64Array(v.length)]));
    for (let step = 1; step <= 2; step++) {
      // The reference: the whole batch's gradient (mean over its 9 masked tokens), clipped, then AdamW.
      ref.setParams(p);
      const { loss, grads } = await ref.grads(whole);
      let sq = 0;
      for (const g of grads.values()) for (const x of g) sq += x * x;
      const norm = Math.sqrt(sq);
      const f = maxGradNorm === null ? 1 : Math.min(1, maxGradNorm / (norm + 1e-6));
      if (maxGradNorm !== null) expect(f).toBeLessThan(0.5);
      for (const [k, x] of p) {
        const g = grads.get(k)!;
        const mk = m.get(k)!;
        const vk = v2.get(k)!;
        for (let i = 0; i < x.length; i++) {
          const gi = g[i] * f;
          mk[i] = beta1 * mk[i] + (1 - beta1) * gi;
          vk[i] = beta2 * vk[i] + (1 - beta2) * gi * gi;
          x[i] -= (lr / (1 - beta1 ** step)) * (mk[i] / (Math.sqrt(vk[i]) / Math.sqrt(1 - beta2 ** step) + eps));
        }
      }
      const r = await t.step([rowsToBatch(micro1), rowsToBatch(micro2)], lr);
      expect(Math.abs(r.loss - loss)).toBeLessThan(1e-12);
      expect(Math.abs(r.gradNorm - norm) / norm).toBeLessThan(1e-10);
      let worst = 0;
      for (const [k, want] of p) {
        const got = t.values.get(k)!;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      }
      expect(worst, `step ${step}`).toBeLessThan(1e-10);
    }
    await t.release();
    await ref.release();
  });
});
