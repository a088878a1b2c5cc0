// micro-llama on the Worker: its config.json in R2, registered as a base model, and LoRA adapters that fit it.
import { env } from "cloudflare:workers";
import { call } from "./helpers.js";

// micro-llama's sizes (shared/fixtures/micro-llama/base/config.json): LoRA shapes [out, in] per module.
const config = { architectures: ["LlamaForCausalLM"], hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 256 };
const shapes: Record<string, [number, number, string]> = {
  q_proj: [64, 64, "self_attn"], k_proj: [32, 64, "self_attn"], v_proj: [32, 64, "self_attn"], o_proj: [64, 64, "self_attn"],
  gate_proj: [172, 64, "mlp"], up_proj: [172, 64, "mlp"], down_proj: [64, 172, "mlp"],
};

/** A zero-filled PEFT LoRA adapter (r 8, every linear module) for micro-llama. */
export function adapterFiles(r = 8): Record<string, Uint8Array> {
  const header: Record<string, unknown> = {};
  let pos = 0;
  for (let layer = 0; layer < 2; layer++) {
    for (const [m, [out, inF, parent]] of Object.entries(shapes)) {
      for (const [ab, shape] of [["A", [r, inF]], ["B", [out, r]]] as const) {
        const n = shape[0] * shape[1] * 4;
        header[`base_model.model.model.layers.${layer}.${parent}.${m}.lora_${ab}.weight`] = { dtype: "F32", shape, data_offsets: [pos, pos + n] };
        pos += n;
      }
    }
  }
  let json = JSON.stringify(header);
  while (json.length % 8) json += " ";
  const h = new TextEncoder().encode(json);
  const weights = new Uint8Array(8 + h.length + pos);
  new DataView(weights.buffer).setBigUint64(0, BigInt(h.length), true);
  weights.set(h, 8);
  const cfg = { peft_type: "LORA", task_type: "CAUSAL_LM", r, lora_alpha: 16, target_modules: Object.keys(shapes), bias: "none" };
  return { "adapter_config.json": new TextEncoder().encode(JSON.stringify(cfg)), "adapter_model.safetensors": weights };
}

/**
 * Registers micro-llama once per test file (a second call is a no-op): its config.json, and a tokenizer and chat
 * template, of which the API reads only that they exist (without them it refuses chat jobs).
 */
export async function registerMicroLlama(): Promise<void> {
  await env.BLOBS.put("models/micro-llama/config.json", JSON.stringify(config));
  await env.BLOBS.put("models/micro-llama/tokenizer.json", JSON.stringify({ version: "1.0", model: { type: "BPE", vocab: {}, merges: [] } }));
  await env.BLOBS.put("models/micro-llama/tokenizer_config.json", JSON.stringify({ chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}" }));
  const reg = await call("POST", "/admin/v1/models", { token: env.TUNESERVE_ADMIN_TOKEN as string, json: { id: "micro-llama", source: "blob:models/micro-llama/" } });
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`registering micro-llama failed: ${reg.status} ${await reg.text()}`);
}
