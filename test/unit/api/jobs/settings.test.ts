import { describe, expect, it } from "vitest";
import { adapterInput, adapterWithDefaults, resolveAdapter, resolveHyperparameters } from "../../../../api/src/jobs/settings.js";
import { linearModules, summarizeConfig } from "../../../../api/src/lib/model-shapes.js";

const auto = { n_epochs: "auto", batch_size: "auto", learning_rate_multiplier: "auto" } as const;
// micro-llama's sizes: hidden 64, 4 heads × 16, 2 kv heads → k/v_proj are [32, 64].
const model = summarizeConfig({
  architectures: ["LlamaForCausalLM"],
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  vocab_size: 256,
});

describe("resolveHyperparameters", () => {
  it("resolves auto: 3 epochs, multiplier 1 → lr 2e-4, batch size growing with the dataset", () => {
    expect(resolveHyperparameters(auto, 10)).toEqual({ n_epochs: 3, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 512 });
    expect([63, 64, 255, 256, 1023, 1024, 1e6].map((n) => resolveHyperparameters(auto, n).batch_size)).toEqual([1, 2, 2, 4, 4, 8, 8]);
  });

  it("keeps explicit values and scales the learning rate", () => {
    const h = resolveHyperparameters({ n_epochs: 5, batch_size: 16, learning_rate_multiplier: 0.25, seq_len: 1024 }, 10);
    expect(h).toEqual({ n_epochs: 5, batch_size: 16, learning_rate_multiplier: 0.25, learning_rate: 5e-5, seq_len: 1024 });
  });
});

describe("resolveAdapter", () => {
  it("defaults to r 8, alpha 16, no dropout, every linear module, plain (not rs) LoRA", () => {
    const r = resolveAdapter(adapterWithDefaults(adapterInput.parse({})), model, 256);
    expect(r).toEqual({ ok: true, adapter: { type: "lora", r: 8, alpha: 16, dropout: 0, target_modules: [...linearModules], use_rslora: false } });
  });

  it("deduplicates listed modules", () => {
    const r = resolveAdapter(adapterWithDefaults(adapterInput.parse({ target_modules: ["q_proj", "v_proj", "q_proj"] })), model, 256);
    expect(r.ok && r.adapter.target_modules).toEqual(["q_proj", "v_proj"]);
  });

  it("refuses a rank over the deployment limit or over a targeted module's smallest side", () => {
    const over = resolveAdapter(adapterWithDefaults(adapterInput.parse({ r: 64 })), model, 32);
    expect(over).toMatchObject({ ok: false, param: "adapter.r" });
    // k_proj is [32, 64]: r 48 is too large for it but fine for q_proj-only adapters.
    expect(resolveAdapter(adapterWithDefaults(adapterInput.parse({ r: 48 })), model, 256)).toMatchObject({ ok: false, message: expect.stringContaining("k_proj") });
    expect(resolveAdapter(adapterWithDefaults(adapterInput.parse({ r: 48, target_modules: ["q_proj"] })), model, 256).ok).toBe(true);
  });

  it("rejects invalid options at parse time", () => {
    for (const bad of [{ r: 0 }, { alpha: 0 }, { dropout: 1 }, { dropout: -0.1 }, { target_modules: [] }, { target_modules: ["lm_head"] }, { type: "ia3" }, { extra: 1 }]) {
      expect(adapterInput.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
