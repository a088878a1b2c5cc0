// config.json parsing: the fixtures normalize as documented; unsupported options fail by field name.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseModelConfig } from "../../../../gpu-runner/src/engine/model/config.js";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const llamaJson = JSON.parse(readFileSync(`${fixturesDir}/micro-llama/base/config.json`, "utf8"));

describe("model config", () => {
  it("normalizes the fixture configs", async () => {
    const llama = await loadModelConfig(`${fixturesDir}/micro-llama/base`);
    expect(llama).toMatchObject({ architecture: "LlamaForCausalLM", hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 172, vocab: 256 });
    expect(llama).toMatchObject({ ropeTheta: 10000, ropeScaling: { kind: "none" }, rmsEps: 1e-5, attentionBias: false, tieEmbeddings: false, eosTokenIds: [2], bosTokenId: 1 });
    const qwen = await loadModelConfig(`${fixturesDir}/micro-qwen2/base`);
    expect(qwen).toMatchObject({ architecture: "Qwen2ForCausalLM", intermediate: 176, ropeTheta: 1e6, rmsEps: 1e-6, attentionBias: true, tieEmbeddings: true });
  });

  it("forces q/k/v bias for Qwen2 and defaults head_dim and kv heads", () => {
    const c = parseModelConfig({ ...llamaJson, architectures: ["Qwen2ForCausalLM"], attention_bias: false, head_dim: undefined, num_key_value_heads: undefined });
    expect(c.attentionBias).toBe(true);
    expect(c.headDim).toBe(16);
    expect(c.kvHeads).toBe(4);
    const mistral = parseModelConfig({ ...llamaJson, architectures: ["MistralForCausalLM"], eos_token_id: [2, 7], sliding_window: 4096 });
    expect(mistral.eosTokenIds).toEqual([2, 7]);
    expect(mistral.slidingWindow).toBe(4096);
  });

  it("parses linear and llama3 rope scaling", () => {
    expect(parseModelConfig({ ...llamaJson, rope_scaling: { type: "linear", factor: 4 } }).ropeScaling).toEqual({ kind: "linear", factor: 4 });
    const l3 = parseModelConfig({
      ...llamaJson,
      rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    expect(l3.ropeScaling).toEqual({ kind: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  });

  it.each([
    [{ architectures: ["GPT2LMHeadModel"] }, /architectures\[0\]="GPT2LMHeadModel" is not supported/],
    [{ hidden_act: "gelu" }, /hidden_act="gelu"/],
    [{ mlp_bias: true }, /mlp_bias=true/],
    [{ use_sliding_window: true }, /use_sliding_window=true/],
    [{ rope_scaling: { type: "yarn", factor: 2 } }, /rope_scaling type "yarn"/],
    [{ rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling.low_freq_factor is required/],
    [{ num_key_value_heads: 3 }, /num_attention_heads=4 must be a multiple of num_key_value_heads=3/],
    [{ hidden_size: "64" }, /config.json: hidden_size/],
    [{ head_dim: 15 }, /head_dim=15 must be an even integer/],
  ])("rejects %j", (patch, msg) => {
    expect(() => parseModelConfig({ ...llamaJson, ...patch })).toThrow(msg);
  });
});
