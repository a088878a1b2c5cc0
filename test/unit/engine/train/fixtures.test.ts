// The PyTorch reference fixtures (../shared/fixtures): loss, base-only loss, per-tensor LoRA gradient
// norms and sums, one AdamW step and the 5-step trajectories with and without weight decay, for both
// micro-llama and micro-qwen2, with the tolerances fixtures/README.md suggests.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { loadLoraAdapter, type LoraAdapter } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { LoraTrainer } from "../../../../gpu-runner/src/engine/train/trainer.js";
import { frobenius as norm, paramsFromAdapter, total as sum } from "../../../../gpu-runner/src/engine/train/lora-params.js";
import { nextTokenBatch } from "../../../../gpu-runner/src/engine/train/feeds.js";

const FIXTURES = join(import.meta.dirname, "../../../../../shared/fixtures");

describe.each(["micro-llama", "micro-qwen2"])("%s reference", (name) => {
  const dir = join(FIXTURES, name);
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
  const batch = nextTokenBatch(ref.input_ids);
  let trainer: LoraTrainer;
  let adapter: LoraAdapter;
  const reset = () => trainer.setParams(paramsFromAdapter(adapter, trainer.params, "float32"));

  beforeAll(async () => {
    const cfg = await loadModelConfig(join(dir, "base"));
    adapter = await loadLoraAdapter(join(dir, "adapter"), cfg);
    trainer = new LoraTrainer(cfg, await openWeights(join(dir, "base")), { rank: adapter.rank, scale: adapter.scale, targets: adapter.targets, threads: 1 });
  });
  afterAll(async () => trainer?.release());

  it("loss, LoRA gradient norms and sums", async () => {
    reset();
    const { loss, grads } = await trainer.grads(batch);
    expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5);
    const keys = Object.keys(ref.lora_grad_norms);
    expect(keys.sort()).toEqual(trainer.params.map((p) => p.name).sort());
    const maxNorm = Math.max(...Object.values(ref.lora_grad_norms as Record<string, number>));
    for (const k of keys) {
      const g = grads.get(k)!;
      expect(Math.abs(norm(g) - ref.lora_grad_norms[k]) / ref.lora_grad_norms[k], k).toBeLessThan(1e-3);
      expect(Math.abs(sum(g) - ref.lora_grad_sums[k]), k).toBeLessThan(1e-3 * maxNorm);
    }
  });

  it("base-only loss (LoRA scale 0)", async () => {
    reset();
    const base = new LoraTrainer(trainer.cfg, await openWeights(join(dir, "base")), { rank: adapter.rank, scale: 0, targets: adapter.targets, threads: 1 });
    base.setParams(paramsFromAdapter(adapter, base.params, "float32"));
    expect(Math.abs((await base.loss(batch)) - ref.loss_base_only)).toBeLessThan(1e-5);
    await base.release();
  });

  it("one AdamW step: loss and LoRA norms after it", async () => {
    reset();
    const { loss } = await trainer.step([batch], ref.adamw.lr);
    expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5);
    expect(Math.abs((await trainer.loss(batch)) - ref.adamw.loss_after_1_step)).toBeLessThan(1e-5);
    for (const [k, want] of Object.entries(ref.adamw.lora_norms_after_1_step as Record<string, number>)) {
      expect(Math.abs(norm(trainer.values.get(k)!) - want) / want, k).toBeLessThan(1e-3);
    }
  });

  it.each([
    ["adamw_trajectory", 0],
    ["adamw_trajectory_wd", 0.01],
  ] as const)("%s: losses after 5 steps", async (field, wd) => {
    expect(ref.adamw_trajectory_info[wd ? "weight_decay_wd" : "weight_decay"]).toBe(wd);
    const t = new LoraTrainer(trainer.cfg, await openWeights(join(dir, "base")), {
      rank: adapter.rank,
      scale: adapter.scale,
      targets: adapter.targets,
      threads: 1,
      adamw: { beta1: ref.adamw_trajectory_info.betas[0], beta2: ref.adamw_trajectory_info.betas[1], eps: ref.adamw_trajectory_info.eps, weightDecay: wd },
    });
    t.setParams(paramsFromAdapter(adapter, t.params, "float32"));
    const losses: number[] = [];
    for (let s = 0; s < 5; s++) {
      const r = await t.step([batch], ref.adamw_trajectory_info.lr);
      if (s > 0) losses.push(r.loss); // the loss a step reports is the loss before it
    }
    losses.push(await t.loss(batch));
    losses.forEach((l, i) => expect(Math.abs(l - ref[field][i]), `step ${i + 1}`).toBeLessThan(1e-5));
    const normsAfter = ref.adamw_trajectory_info[wd ? "lora_norms_after_last_step_wd" : "lora_norms_after_last_step"] as Record<string, number>;
    for (const [k, want] of Object.entries(normsAfter)) expect(Math.abs(norm(t.values.get(k)!) - want) / want, k).toBeLessThan(1e-3);
    await t.release();
  });

  it("two micro-batches of one row accumulate to the full-batch step", async () => {
    reset();
    await trainer.step([nextTokenBatch([ref.input_ids[0]]), nextTokenBatch([ref.input_ids[1]])], ref.adamw.lr);
    for (const [k, want] of Object.entries(ref.adamw.lora_norms_after_1_step as Record<string, number>)) {
      expect(Math.abs(norm(trainer.values.get(k)!) - want) / want, k).toBeLessThan(1e-3);
    }
    expect(Math.abs((await trainer.loss(batch)) - ref.adamw.loss_after_1_step)).toBeLessThan(1e-5);
  });
});
