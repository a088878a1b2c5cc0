// The API's reading of a base model's config.json agrees with the engine's on what it can run.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { seqLenLimit, summarizeConfig } from "../../../api/src/lib/model-shapes.js";
import { fixturesDir } from "../../helpers/fixtures.js";

const base = JSON.parse(readFileSync(`${fixturesDir}/micro-llama/base/config.json`, "utf8"));

describe("summarizeConfig", () => {
  it("derives head_dim from hidden_size and the heads when it is not given", () => {
    const { head_dim: _, ...noHeadDim } = base;
    expect(summarizeConfig(noHeadDim).head_dim).toBe(base.hidden_size / base.num_attention_heads);
  });
  it("refuses a head_dim the engine could not build (not an even integer), as the engine does", () => {
    const { head_dim: _, ...noHeadDim } = base;
    expect(() => summarizeConfig({ ...noHeadDim, hidden_size: base.num_attention_heads * 3 + 1 })).toThrow(/head_dim=.* must be an even integer \(set head_dim explicitly\)/);
    expect(() => summarizeConfig({ ...base, head_dim: 7 })).toThrow(/head_dim=7 must be an even integer/);
  });
  it("names the field to fix", () => {
    expect(() => summarizeConfig({ ...base, num_key_value_heads: 3 })).toThrow(/num_attention_heads=\d+ must be a multiple of num_key_value_heads=3/);
    expect(() => summarizeConfig({ ...base, architectures: ["GPT2LMHeadModel"] })).toThrow(/architectures\[0\]="GPT2LMHeadModel" is not supported/);
  });
  it("refuses what the engine cannot run, with the engine's message", () => {
    expect(() => summarizeConfig({ ...base, hidden_act: "gelu" })).toThrow(/hidden_act="gelu" is not supported; only silu/);
    expect(() => summarizeConfig({ ...base, rope_scaling: { rope_type: "yarn", factor: 4 } })).toThrow(/rope_scaling type "yarn" is not supported/);
    expect(() => summarizeConfig({ ...base, mlp_bias: true })).toThrow(/mlp_bias=true is not supported/);
  });
  it("keeps the engine's max_position_embeddings: config.json's, or the 4096 the engine assumes without it", () => {
    const { max_position_embeddings: _, ...noMax } = base;
    expect(summarizeConfig(noMax).max_position_embeddings).toBe(4096);
    expect(seqLenLimit(summarizeConfig(noMax))).toEqual({ max: 4096, field: "max_position_embeddings" });
    expect(summarizeConfig({ ...base, max_position_embeddings: 2048 }).max_position_embeddings).toBe(2048);
  });
  it("limits seq_len by Mistral's sliding_window, which the engine does not implement, when shorter than the positions", () => {
    const mistral = { ...base, architectures: ["MistralForCausalLM"], max_position_embeddings: 2048, sliding_window: 512 };
    expect(seqLenLimit(summarizeConfig(mistral))).toEqual({ max: 512, field: "sliding_window" });
    expect(seqLenLimit(summarizeConfig({ ...mistral, sliding_window: 4096 }))).toEqual({ max: 2048, field: "max_position_embeddings" });
    expect(seqLenLimit(summarizeConfig({ ...mistral, sliding_window: null }))).toEqual({ max: 2048, field: "max_position_embeddings" });
    // Qwen2 applies its window only with use_sliding_window, which the engine refuses.
    expect(seqLenLimit(summarizeConfig({ ...base, architectures: ["Qwen2ForCausalLM"], max_position_embeddings: 2048, sliding_window: 512 }))).toEqual({ max: 2048, field: "max_position_embeddings" });
  });
});
