// LoRA training settings in PEFT's terms: targets (incl. "all-linear"), the rsLoRA scale, and errors.
import { describe, expect, it } from "vitest";
import { resolveLoraConfig } from "../../../../gpu-runner/src/engine/train/lora-config.js";

describe("resolveLoraConfig", () => {
  it("expands all-linear to the seven projections and scales by alpha/r", () => {
    const s = resolveLoraConfig({ r: 8, lora_alpha: 16, target_modules: "all-linear" });
    expect(s.targets).toEqual(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
    expect(s.scale).toBe(2);
    expect(s.dropout).toBe(0);
  });
  it("uses alpha/√r with use_rslora and keeps the projection order for a list", () => {
    const s = resolveLoraConfig({ r: 16, lora_alpha: 8, target_modules: ["v_proj", "q_proj"], use_rslora: true, lora_dropout: 0.05 });
    expect(s.scale).toBe(2);
    expect(s.targets).toEqual(["q_proj", "v_proj"]);
    expect(s.dropout).toBe(0.05);
  });
  it("names the bad field", () => {
    expect(() => resolveLoraConfig({ r: 0, lora_alpha: 16 })).toThrow(/lora: r: r must be ≥ 1/);
    expect(() => resolveLoraConfig({ r: 8, lora_alpha: 16, lora_dropout: 1 })).toThrow(/lora_dropout must be < 1/);
    expect(() => resolveLoraConfig({ r: 8, lora_alpha: 16, target_modules: ["qkv"] })).toThrow(/target_modules \["qkv"\] are not projections/);
  });
});
