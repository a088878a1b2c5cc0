// PEFT adapter loading: scale rules, target parsing, and errors naming the field or tensor at fault.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadLoraAdapter, parseAdapterConfig } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { readSafetensors, writeSafetensors } from "../../../../gpu-runner/src/engine/weights/safetensors.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;
const adapterJson = JSON.parse(readFileSync(`${FX}/adapter/adapter_config.json`, "utf8"));

describe("adapter_config.json", () => {
  it("uses alpha/r, or alpha/√r with use_rslora", () => {
    expect(parseAdapterConfig(adapterJson).scale).toBe(2);
    expect(parseAdapterConfig({ ...adapterJson, use_rslora: true }).scale).toBeCloseTo(16 / Math.sqrt(8), 12);
  });
  it("accepts a regex string for target_modules as PEFT does", () => {
    expect(parseAdapterConfig({ ...adapterJson, target_modules: ".*\\.(q_proj|v_proj)" }).targets).toEqual(["q_proj", "v_proj"]);
    // PEFT's shorthand for every linear layer but the head, which the API also accepts in uploads.
    expect(parseAdapterConfig({ ...adapterJson, target_modules: "all-linear" }).targets).toEqual(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
  });
  it.each([
    [{ r: 0 }, /r=0 must be ≥ 1/],
    [{ use_dora: true }, /use_dora=true is not supported/],
    [{ peft_type: "IA3" }, /peft_type=IA3/],
    [{ target_modules: ["q_proj", "embed_tokens"] }, /target_modules \["embed_tokens"\] are not projections of this model/],
    [{ bias: "all" }, /bias="all"/],
    [{ layers_to_transform: [0] }, /layers_to_transform/],
    [{ rank_pattern: { q_proj: 4 } }, /rank_pattern/],
    [{ lora_alpha: "16" }, /lora_alpha/],
  ])("rejects %j", (patch, msg) => {
    expect(() => parseAdapterConfig({ ...adapterJson, ...patch })).toThrow(msg);
  });
});

describe("loadLoraAdapter", () => {
  it("loads the fixture adapter for every layer and target", async () => {
    const cfg = await loadModelConfig(`${FX}/base`);
    const a = await loadLoraAdapter(`${FX}/adapter`, cfg);
    expect(a.rank).toBe(8);
    expect(a.scale).toBe(2);
    expect(a.targets).toHaveLength(7);
    expect(a.weights.size).toBe(14);
    expect(a.weights.get("1.k_proj")!.b).toHaveLength(32 * 8);
  });

  it("rejects a tensor whose shape does not fit the base model, naming it", async () => {
    const cfg = await loadModelConfig(`${FX}/base`);
    const src = await readSafetensors(`${FX}/adapter/adapter_model.safetensors`);
    const tensors = Object.fromEntries(src.names().map((n) => [n, { shape: src.shape(n), data: src.tensor(n) }]));
    const bad = "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight";
    tensors[bad] = { shape: [170, 8], data: new Float32Array(170 * 8) };
    const dir = mkdtempSync(join(tmpdir(), "lora-"));
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(adapterJson));
    await writeSafetensors(join(dir, "adapter_model.safetensors"), tensors);
    await expect(loadLoraAdapter(dir, cfg)).rejects.toThrow(/up_proj\.lora_B\.weight has shape \[170,8\].*\[172,8\]/);
    delete tensors[bad];
    await writeSafetensors(join(dir, "adapter_model.safetensors"), tensors);
    await expect(loadLoraAdapter(dir, cfg)).rejects.toThrow(/missing .*layers\.0\.mlp\.up_proj\.lora_A\/lora_B/);
  });
});
