// Training a fresh adapter on the micro-llama fixture: PEFT's initial state (B = 0 leaves the base
// model's loss), the loss falling over steps, clipping reported, and dropout only in training steps.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { LoraTrainer } from "../../../../gpu-runner/src/engine/train/trainer.js";
import { initParams } from "../../../../gpu-runner/src/engine/train/lora-params.js";
import { resolveLoraConfig } from "../../../../gpu-runner/src/engine/train/lora-config.js";
import { nextTokenBatch } from "../../../../gpu-runner/src/engine/train/feeds.js";

const dir = join(import.meta.dirname, "../../../../../shared/fixtures/micro-llama");
const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
const batch = nextTokenBatch(ref.input_ids);

function lcg(seed: number): () => number {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
}

async function trainer(lora: unknown, extra: { maxGradNorm?: number } = {}): Promise<LoraTrainer> {
  const cfg = await loadModelConfig(join(dir, "base"));
  const s = resolveLoraConfig(lora);
  const t = new LoraTrainer(cfg, await openWeights(join(dir, "base")), { rank: s.rank, scale: s.scale, targets: s.targets, dropout: s.dropout, threads: 1, ...extra });
  t.setParams(initParams(t.params, "float32", lcg(7)));
  return t;
}

describe("LoraTrainer from PEFT's initial state", () => {
  it("starts at the base model's loss, with A in ±1/√in and B zero", async () => {
    const t = await trainer({ r: 4, lora_alpha: 8, target_modules: ["q_proj", "v_proj", "down_proj"] });
    for (const p of t.params) {
      const v = t.values.get(p.name)!;
      if (p.kind === "B") expect(v.every((x) => x === 0)).toBe(true);
      else expect(v.every((x) => Math.abs(x) <= 1 / Math.sqrt(p.shape[1]))).toBe(true);
    }
    expect(Math.abs((await t.loss(batch)) - ref.loss_base_only)).toBeLessThan(1e-5);
    await t.release();
  });

  it("lowers the loss over ten clipped steps and reports the unclipped gradient norm", async () => {
    const t = await trainer({ r: 4, lora_alpha: 8, target_modules: "all-linear" }, { maxGradNorm: 0.01 });
    const first = await t.step([batch], 1e-2);
    expect(first.gradNorm).toBeGreaterThan(0); // B = 0, but A's gradient is zero and B's is not
    for (let i = 0; i < 9; i++) await t.step([batch], 1e-2);
    const after = await t.loss(batch);
    expect(after).toBeLessThan(ref.loss_base_only - 0.1);
    expect(t.stepCount).toBe(10);
    await t.release();
  });

  it("drops LoRA inputs in training steps only", async () => {
    const t = await trainer({ r: 4, lora_alpha: 8, target_modules: "all-linear", lora_dropout: 0.5 });
    for (let i = 0; i < 3; i++) await t.step([batch], 1e-2); // B ≠ 0 from here, so dropout shows in the loss
    const evalA = await t.loss(batch);
    const evalB = await t.loss(batch);
    expect(evalA).toBe(evalB); // evaluation is deterministic
    const stepA = (await t.step([batch], 0)).loss; // lr 0: the parameters stay, only the dropout mask changes
    const stepB = (await t.step([batch], 0)).loss;
    expect(stepA).not.toBe(stepB);
    expect(Math.abs(stepA - evalA)).toBeGreaterThan(1e-6);
    await t.release();
  });
});
