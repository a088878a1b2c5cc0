// The adapter a run writes, read back: adapter_config.json holds PEFT's LoraConfig fields with the run's
// settings (rsLoRA, a subset of targets, dropout), and the inference path (LoadedModel + computeLogits,
// unmerged and merged) scores the validation rows exactly as the training graph's validation pass did.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readRecords } from "../../../../gpu-runner/src/engine/data/records.js";
import { tokenizeRecords } from "../../../../gpu-runner/src/engine/data/render.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { loadTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { runTraining, type TrainResult } from "../../../../gpu-runner/src/engine/train/loop.js";
import { readSafetensors } from "../../../../gpu-runner/src/engine/weights/safetensors.js";
import { ensureBuiltinModel } from "../../../../gpu-runner/src/models/builtin.js";

let root: string;
let model: string;
let data: string;
let out: string;
let res: TrainResult;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tuneserve-export-"));
  model = await ensureBuiltinModel(join(root, "model"));
  data = join(root, "train.jsonl");
  const chats = ["red", "green", "blue", "cyan", "pink", "gray", "gold"].map((c, i) => JSON.stringify({ messages: [{ role: "system", content: "be brief" }, { role: "user", content: `colour ${i}?` }, { role: "assistant", content: c }] }));
  await writeFile(data, chats.join("\n") + "\n");
  out = join(root, "adapter");
  // rsLoRA (scale 6/√4 = 3, not 6/4), three of the seven projections, dropout in the steps only; the base model
  // named as a runner names it (its cached copy's folder is named by revision, not by the model).
  res = await runTraining({ modelDir: model, baseModelName: "micro-llama", dataPath: data, validationPath: data, outDir: out, epochs: 3, batchSize: 3, seqLen: 64, lr: 1e-2, rank: 4, alpha: 6, useRslora: true, targets: ["v_proj", "q_proj", "down_proj"], dropout: 0.1 });
});
afterAll(() => rm(root, { recursive: true, force: true }));

it("writes PEFT's adapter_config.json fields and tensor names, F32, in PEFT's shapes", async () => {
  const cfg = JSON.parse(await readFile(join(out, "adapter_config.json"), "utf8"));
  expect(cfg).toEqual({
    peft_type: "LORA", task_type: "CAUSAL_LM", base_model_name_or_path: "micro-llama", r: 4, lora_alpha: 6, lora_dropout: 0.1,
    target_modules: ["q_proj", "v_proj", "down_proj"], use_rslora: true, use_dora: false, bias: "none", fan_in_fan_out: false,
    inference_mode: true, init_lora_weights: true, modules_to_save: null, layers_to_transform: null, layers_pattern: null,
    rank_pattern: {}, alpha_pattern: {}, revision: null,
  });
  const file = await readSafetensors(join(out, "adapter_model.safetensors"));
  const names = file.names().sort();
  expect(names).toHaveLength(2 * 3 * 2);
  expect(names).toContain("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight");
  expect(file.shape("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight")).toEqual([4, 344]);
  expect(file.shape("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")).toEqual([128, 4]);
  expect(file.shape("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight")).toEqual([64, 4]);
});

it.each([false, true])("loads back into the inference path (merge %s) with the training graph's validation loss", async (merge) => {
  const tok = (await loadTokenizer(model))!;
  const ex = tokenizeRecords(await readRecords(data), tok, 64).examples;
  const m = await LoadedModel.load(model, { adapter: out, merge, logits: "all" });
  try {
    const logits = await computeLogits(m.session, ex.map((e) => e.ids), { adapterIndex: ex.map(() => m.defaultSlot), loraFeeds: m.loraFeeds() });
    let sum = 0;
    let n = 0;
    ex.forEach((e, b) => {
      for (let t = 0; t + 1 < e.ids.length; t++) {
        if (!e.train[t + 1]) continue;
        const l = logits[b][t];
        const max = Math.max(...l);
        sum += max + Math.log(l.reduce((s, x) => s + Math.exp(x - max), 0)) - l[e.ids[t + 1]];
        n++;
      }
    });
    // The adapter moved the model (the base model's loss is ~log 260 ≈ 5.6): a loader that dropped it would show.
    expect(res.metrics.valid_loss).toBeLessThan(5);
    expect(Math.abs(sum / n - res.metrics.valid_loss)).toBeLessThan(1e-4);
  } finally {
    await m.release();
  }
});
