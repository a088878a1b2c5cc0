// Checkpoints: exact round trip of LoRA tensors, AdamW moments and trainer state; format/version and
// shape errors name the file; the exported adapter is loadable by the inference path's PEFT loader.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRng } from "../../../../gpu-runner/src/engine/generate/rng.js";
import { loadLoraAdapter, loraKey } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { parseModelConfig } from "../../../../gpu-runner/src/engine/model/config.js";
import { PROJECTIONS } from "../../../../gpu-runner/src/engine/model/names.js";
import { loadCheckpoint, saveCheckpoint, type TrainerState } from "../../../../gpu-runner/src/engine/train/checkpoint.js";
import { trainParams } from "../../../../gpu-runner/src/engine/train/train-graph.js";
import { builtinConfigJson } from "../../../../gpu-runner/src/models/builtin.js";

const cfg = parseModelConfig(builtinConfigJson());
const params = trainParams(cfg, 4, ["q_proj", "down_proj"]);
const rng = createRng(3);
const rand = () => new Map(params.map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => rng.next() - 0.5)]));
const meta = { rank: 4, alpha: 8, dropout: 0, targets: ["q_proj", "down_proj"] as const, useRslora: false, baseModel: "tuneserve-micro" };
const state: TrainerState = {
  format: "tuneserve.lora-checkpoint",
  version: 3,
  step: 7,
  orderEpoch: 1,
  order: [2, 0, 1],
  rng: createRng(9).state(),
  fingerprint: { seed: 0, data_sha256: "ab", max_grad_norm: null },
  losses: [3, 2.5, 2],
  metrics: { train_loss: 2 },
};

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "tuneserve-ckpt-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("checkpoint", () => {
  it("round-trips tensors bit for bit and the state exactly", async () => {
    const data = { state, values: rand(), m: rand(), v: rand() };
    const files = await saveCheckpoint(join(dir, "7"), params, data, meta);
    expect(files.sort()).toEqual(["adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"]);
    const back = await loadCheckpoint(join(dir, "7"), params);
    expect(back.state).toEqual(state);
    for (const p of params) {
      expect(back.values.get(p.name)).toEqual(data.values.get(p.name));
      expect(back.m.get(p.name)).toEqual(data.m.get(p.name));
      expect(back.v.get(p.name)).toEqual(data.v.get(p.name));
    }
  });

  it("holds a PEFT adapter the inference loader accepts, with [r,in]/[out,r] tensors", async () => {
    const values = rand();
    await saveCheckpoint(join(dir, "peft"), params, { state, values, m: rand(), v: rand() }, meta);
    const cfgJson = JSON.parse(await readFile(join(dir, "peft", "adapter_config.json"), "utf8"));
    expect(cfgJson).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 4, lora_alpha: 8, lora_dropout: 0, bias: "none", use_rslora: false, target_modules: ["q_proj", "down_proj"], base_model_name_or_path: "tuneserve-micro" });
    const a = await loadLoraAdapter(join(dir, "peft"), cfg);
    expect(a.scale).toBe(2);
    expect(a.targets).toEqual(PROJECTIONS.filter((m) => m === "q_proj" || m === "down_proj"));
    const w = a.weights.get(loraKey(1, "down_proj"))!;
    expect(w.a).toEqual(values.get("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"));
    expect(w.b.length).toBe(128 * 4);
  });

  it("reads versions 1 and 2, written before the tokenizer and the base weights joined the fingerprint", async () => {
    for (const version of [1, 2]) {
      const old = { ...state, version };
      await saveCheckpoint(join(dir, `v${version}`), params, { state: old, values: rand(), m: rand(), v: rand() }, meta);
      expect((await loadCheckpoint(join(dir, `v${version}`), params)).state).toEqual(old);
    }
  });

  it("rejects another format, a newer version and mismatched shapes by name", async () => {
    await saveCheckpoint(join(dir, "bad"), params, { state, values: rand(), m: rand(), v: rand() }, meta);
    const path = join(dir, "bad", "trainer_state.json");
    const good = await readFile(path, "utf8");
    await writeFile(path, good.replace('"version":3', '"version":4'));
    await expect(loadCheckpoint(join(dir, "bad"), params)).rejects.toThrow(/trainer_state\.json: version=4 is not supported; this build reads versions 1, 2, 3/);
    await writeFile(path, good.replace("tuneserve.lora-checkpoint", "other"));
    await expect(loadCheckpoint(join(dir, "bad"), params)).rejects.toThrow(/format="other" is not tuneserve\.lora-checkpoint/);
    await writeFile(path, good);
    await expect(loadCheckpoint(join(dir, "bad"), trainParams(cfg, 8, ["q_proj", "down_proj"]))).rejects.toThrow(/has shape \[4,128\], this run needs \[8,128\]/);
    await expect(loadCheckpoint(join(dir, "nothing"), params)).rejects.toThrow(/cannot be read as JSON/);
  });
});
