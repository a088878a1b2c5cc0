import { describe, expect, it } from "vitest";
import { validateAdapter } from "../../../../api/src/adapters/validate.js";
import { ApiError } from "../../../../api/src/errors.js";
import { moduleShapes } from "../../../../api/src/lib/model-shapes.js";
import { buildSafetensors, configBytes, llamaSummary, loraEntries, qwenSummary, readFixture } from "./build.js";

const shapes = moduleShapes(llamaSummary);
const goodWeights = readFixture("micro-llama", "adapter_model.safetensors");
const goodConfig = readFixture("micro-llama", "adapter_config.json");

/** Runs the validator and returns the ApiError it throws. */
function fault(cfg: Uint8Array, weights: Uint8Array, maxRank = 64): ApiError {
  try {
    validateAdapter(cfg, weights, llamaSummary, maxRank);
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error("expected the adapter to be refused");
}
const configFault = (patch: Record<string, unknown>, drop: string[] = []) => {
  const e = fault(configBytes(patch, drop), goodWeights);
  expect(e.param).toBe("adapter_config");
  expect(e.code).toBe("invalid_file");
  return e.message;
};
const weightsFault = (weights: Uint8Array, cfg = goodConfig) => {
  const e = fault(cfg, weights);
  expect(e.param).toBe("adapter_model");
  return e.message;
};

describe("validateAdapter: accepted adapters", () => {
  it("accepts the fixture llama adapter and reports its facts", () => {
    const facts = validateAdapter(goodConfig, goodWeights, llamaSummary, 64);
    expect(facts).toEqual({ rank: 8, alpha: 16, useRslora: false, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], dtype: "F32", tensorCount: 28 });
  });

  it("accepts the qwen2 fixture against its own base", () => {
    const facts = validateAdapter(readFixture("micro-qwen2", "adapter_config.json"), readFixture("micro-qwen2", "adapter_model.safetensors"), qwenSummary, 64);
    expect(facts.tensorCount).toBe(28);
  });

  it("maps all-linear to the seven modules and accepts a subset in any order", () => {
    expect(validateAdapter(configBytes({ target_modules: "all-linear" }), goodWeights, llamaSummary, 64).targetModules).toHaveLength(7);
    const sub = buildSafetensors(loraEntries(2, 4, shapes, ["q_proj", "v_proj"]));
    const facts = validateAdapter(configBytes({ r: 4, target_modules: ["v_proj", "q_proj"], use_rslora: true }), sub, llamaSummary, 64);
    expect(facts).toMatchObject({ rank: 4, targetModules: ["q_proj", "v_proj"], useRslora: true });
  });

  it("accepts F16 weights and a config without the optional PEFT keys", () => {
    const f16 = buildSafetensors(loraEntries(2, 8, shapes).map((e) => ({ ...e, dtype: "F16" })));
    const cfg = new TextEncoder().encode(JSON.stringify({ peft_type: "LORA", r: 8, lora_alpha: 16, target_modules: "all-linear" }));
    expect(validateAdapter(cfg, f16, llamaSummary, 64).dtype).toBe("F16");
  });
});

describe("validateAdapter: adapter_config.json rules", () => {
  it("refuses a file that is not JSON", () => {
    expect(fault(new TextEncoder().encode("{nope"), goodWeights).message).toMatch(/^adapter_config\.json: is not valid JSON/);
  });
  it("refuses another PEFT type", () => {
    expect(configFault({ peft_type: "IA3" })).toBe('adapter_config.json: peft_type="IA3" is not supported; only LORA adapters can be uploaded');
  });
  it("names a missing field", () => {
    expect(configFault({}, ["r"])).toBe("adapter_config.json: r is required");
    expect(configFault({}, ["peft_type"])).toBe("adapter_config.json: peft_type is required");
  });
  it("refuses r = 0", () => {
    expect(configFault({ r: 0 })).toBe("adapter_config.json: r=0 must be ≥ 1");
  });
  it("refuses a fractional r", () => {
    expect(configFault({ r: 2.5 })).toMatch(/r must be an integer/);
  });
  it("refuses a rank over the configured maximum", () => {
    expect(fault(goodConfig, goodWeights, 4).message).toBe("adapter_config.json: r=8 exceeds the maximum rank 4; retrain with r ≤ 4");
  });
  it("refuses lora_alpha ≤ 0", () => {
    expect(configFault({ lora_alpha: 0 })).toBe("adapter_config.json: lora_alpha=0 must be > 0");
    expect(configFault({ lora_alpha: 1e308 })).toBe("adapter_config.json: lora_alpha=1e+308 must be ≤ 1000000");
  });
  it("refuses an unknown target module", () => {
    expect(configFault({ target_modules: ["q_proj", "lm_head"] })).toMatch(/target_modules contains 'lm_head'; LoRA can target only q_proj/);
  });
  it("refuses a target_modules string other than all-linear", () => {
    expect(configFault({ target_modules: ".*proj" })).toMatch(/target_modules=".\*proj" is not supported/);
  });
  it("refuses an empty target list", () => {
    expect(configFault({ target_modules: [] })).toMatch(/target_modules/);
  });
  it("refuses use_rslora that is not a boolean", () => {
    expect(configFault({ use_rslora: "yes" })).toMatch(/use_rslora must be true or false/);
  });
  it("refuses DoRA", () => {
    expect(configFault({ use_dora: true })).toMatch(/use_dora=true \(DoRA\) is not supported/);
  });
  it("refuses trained biases", () => {
    expect(configFault({ bias: "all" })).toMatch(/bias="all" is not supported/);
  });
  it("refuses modules_to_save", () => {
    expect(configFault({ modules_to_save: ["lm_head"] })).toMatch(/modules_to_save is not supported/);
  });
  it("refuses layers_to_transform", () => {
    expect(configFault({ layers_to_transform: [0] })).toMatch(/layers_to_transform is not supported/);
  });
  it("refuses per-module ranks", () => {
    expect(configFault({ rank_pattern: { q_proj: 4 } })).toMatch(/rank_pattern is not supported/);
  });
  it("refuses fan_in_fan_out", () => {
    expect(configFault({ fan_in_fan_out: true })).toMatch(/fan_in_fan_out=true is not supported/);
  });
  it("refuses a non-causal-LM task", () => {
    expect(configFault({ task_type: "SEQ_CLS" })).toMatch(/task_type="SEQ_CLS" is not supported/);
  });
  it("quotes a wrong value briefly, whatever its shape", () => {
    // A list nested thousands deep parses, but JSON.stringify overflows the stack on it (it was a 500).
    const deep = "[".repeat(5000) + "]".repeat(5000);
    const withDeep = (field: string, value: string) => {
      const e = fault(new TextEncoder().encode(`{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":"all-linear","${field}":${value}}`), goodWeights);
      expect(e).toMatchObject({ code: "invalid_file", param: "adapter_config" });
      return e.message;
    };
    expect(withDeep("peft_type", deep)).toBe("adapter_config.json: peft_type=[…] is not supported; only LORA adapters can be uploaded");
    expect(withDeep("bias", `{"a":${deep}}`)).toMatch(/^adapter_config\.json: bias=\{…\} is not supported/);
    expect(configFault({ task_type: "x".repeat(60_000) })).toBe(`adapter_config.json: task_type="${"x".repeat(63)}… is not supported; use CAUSAL_LM`);
  });
});

describe("validateAdapter: adapter_model.safetensors rules", () => {
  it("refuses a corrupted header, naming the file", () => {
    const bad = goodWeights.slice();
    bad[10] = 0xff;
    expect(weightsFault(bad)).toMatch(/^adapter_model\.safetensors: header is not valid UTF-8 JSON/);
  });
  it("refuses the qwen2 adapter on the llama base with the shape that differs", () => {
    const msg = weightsFault(readFixture("micro-qwen2", "adapter_model.safetensors"));
    expect(msg).toBe(
      "adapter_model.safetensors: base_model.model.model.layers.0.mlp.down_proj.lora_A.weight has shape [8,176], expected [8,172] (r × in_features of down_proj)",
    );
  });
  it("refuses a wrong lora_B shape", () => {
    const entries = loraEntries(2, 8, shapes);
    const i = entries.findIndex((e) => e.name.endsWith("self_attn.k_proj.lora_B.weight"));
    entries[i] = { ...entries[i], shape: [64, 8] };
    expect(weightsFault(buildSafetensors(entries))).toMatch(/layers\.0\.self_attn\.k_proj\.lora_B\.weight has shape \[64,8\], expected \[32,8\] \(out_features × r of k_proj\)/);
  });
  it("refuses a rank that differs from the config's r", () => {
    expect(weightsFault(buildSafetensors(loraEntries(2, 4, shapes)))).toMatch(/self_attn\.q_proj\.lora_A\.weight has shape \[4,64\], expected \[8,64\]/);
  });
  it("refuses a missing tensor, naming it and the count", () => {
    const entries = loraEntries(2, 8, shapes).filter((e) => !e.name.startsWith("base_model.model.model.layers.1.mlp.up_proj"));
    expect(weightsFault(buildSafetensors(entries))).toMatch(/layers\.1\.mlp\.up_proj\.lora_A\.weight is missing \(2 tensors missing in all\)/);
  });
  it("refuses an extra tensor for a module outside target_modules", () => {
    const cfg = configBytes({ target_modules: ["q_proj", "v_proj"] });
    const entries = loraEntries(2, 8, shapes, ["q_proj", "v_proj", "o_proj"]);
    expect(weightsFault(buildSafetensors(entries), cfg)).toMatch(/self_attn\.o_proj\.lora_A\.weight targets o_proj, which is not in adapter_config\.json target_modules/);
  });
  it("refuses a layer the base model does not have", () => {
    const entries = [...loraEntries(2, 8, shapes), ...loraEntries(3, 8, shapes).slice(28, 30)];
    expect(weightsFault(buildSafetensors(entries))).toMatch(/layers\.2\.self_attn\.q_proj\.lora_A\.weight names layer 2 but the base model has 2 layers/);
  });
  it("refuses a key outside the PEFT naming", () => {
    const entries = [...loraEntries(2, 8, shapes), { name: "base_model.model.lm_head.lora_A.weight", shape: [8, 64] }];
    expect(weightsFault(buildSafetensors(entries))).toMatch(/unexpected tensor base_model\.model\.lm_head\.lora_A\.weight/);
  });
  it("refuses a module under the wrong parent", () => {
    const entries = loraEntries(2, 8, shapes).map((e) => ({ ...e, name: e.name.replace("self_attn.q_proj", "mlp.q_proj") }));
    expect(weightsFault(buildSafetensors(entries))).toMatch(/q_proj lives under self_attn, not mlp/);
  });
  it("refuses a header larger than an adapter for the base model needs, before decoding it", () => {
    // The fixture's own tensors, with its header padded by spaces (which safetensors allows) to 1 MiB: an
    // attacker's header of a million entries would otherwise be parsed whole, blocking the API for seconds.
    const n = Number(new DataView(goodWeights.buffer, goodWeights.byteOffset).getBigUint64(0, true));
    const padded = 1024 * 1024;
    const bytes = new Uint8Array(goodWeights.length - n + padded).fill(0x20);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
    bytes.set(goodWeights.subarray(8, 8 + n), 8);
    bytes.set(goodWeights.subarray(8 + n), 8 + padded);
    expect(weightsFault(bytes)).toMatch(/^adapter_model\.safetensors: header is 1048576 bytes, over the \d+ an adapter of this 2-layer base model needs/);
  });
  it("calls a file that is not safetensors (its first 8 bytes text) that, not an oversized header", () => {
    // A JSONL or README sent as adapter_model: its first 8 bytes read as a length in the quintillions.
    const text = new TextEncoder().encode('{"messages":[{"role":"user","content":"hi"}]}\n');
    expect(weightsFault(text)).toMatch(/^adapter_model\.safetensors: header length \d+ exceeds the \d+ bytes after it; the file is truncated or not a safetensors file/);
  });
  it("refuses mixed dtypes", () => {
    const entries = loraEntries(2, 8, shapes).map((e, i) => ({ ...e, dtype: i === 0 ? "F16" : "F32" }));
    expect(weightsFault(buildSafetensors(entries))).toMatch(/tensors mix dtypes F16, F32/);
  });
});
