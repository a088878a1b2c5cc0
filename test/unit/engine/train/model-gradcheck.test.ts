// Whole-model gradient check in float64: the LoRA gradients of the full training graph (attention,
// RoPE, GQA, RMSNorm, SwiGLU, tied or untied head) against central finite differences of its loss.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { loadLoraAdapter } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { LoraTrainer } from "../../../../gpu-runner/src/engine/train/trainer.js";
import { paramsFromAdapter } from "../../../../gpu-runner/src/engine/train/lora-params.js";
import type { TrainBatch } from "../../../../gpu-runner/src/engine/train/feeds.js";
import { worstGradientError } from "./finite-differences.js";

const FIXTURES = join(import.meta.dirname, "../../../../../shared/fixtures");

describe.each(["micro-llama", "micro-qwen2"])("%s float64 gradients", (name) => {
  it("match central finite differences on sampled LoRA elements", async () => {
    const dir = join(FIXTURES, name);
    const cfg = await loadModelConfig(join(dir, "base"));
    const adapter = await loadLoraAdapter(join(dir, "adapter"), cfg);
    const t = new LoraTrainer(cfg, await openWeights(join(dir, "base")), { rank: adapter.rank, scale: adapter.scale, targets: adapter.targets, dtype: "float64", threads: 1 });
    t.setParams(paramsFromAdapter(adapter, t.params, "float64"));
    // A loss mask with holes (as when training on assistant tokens only) and two rows.
    const batch: TrainBatch = {
      rows: [
        [3, 17, 200, 45, 9, 88],
        [101, 7, 7, 250, 31, 64],
      ],
      targets: [
        [17, 200, 45, 9, 88, 0],
        [7, 7, 250, 31, 64, 0],
      ],
      mask: [
        [0, 1, 1, 0, 1, 0],
        [1, 1, 0, 1, 1, 0],
      ],
    };
    const { worst, tensors } = await worstGradientError(t, batch);
    expect(tensors).toBeGreaterThanOrEqual(5);
    expect(worst).toBeLessThan(1e-6);
    await t.release();
  });
});
