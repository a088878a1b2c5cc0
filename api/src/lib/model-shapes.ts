// What the API needs to know of a base model: its sizes from config.json and the [out, in] shape of every
// LoRA-targetable module, so uploaded adapters and job settings can be checked without loading weights.
import { z } from "zod";

export const supportedArchitectures = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"] as const;
export const linearModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LinearModule = (typeof linearModules)[number];

/** The submodule a projection lives under in a decoder layer. */
export const moduleParent = (m: LinearModule): "self_attn" | "mlp" => (m === "gate_proj" || m === "up_proj" || m === "down_proj" ? "mlp" : "self_attn");

const hfConfig = z.object({
  architectures: z.array(z.string()).min(1),
  hidden_size: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive().optional(),
  head_dim: z.number().int().positive().nullish(),
  vocab_size: z.number().int().positive(),
  max_position_embeddings: z.number().int().positive().optional(),
});

export const modelSummarySchema = z.object({
  architecture: z.enum(supportedArchitectures),
  hidden_size: z.number().int(),
  intermediate_size: z.number().int(),
  num_hidden_layers: z.number().int(),
  num_attention_heads: z.number().int(),
  num_key_value_heads: z.number().int(),
  head_dim: z.number().int(),
  vocab_size: z.number().int(),
  /** Longest sequence the model was made for (models registered before it was kept lack it). */
  max_position_embeddings: z.number().int().optional(),
});

export type ModelSummary = z.infer<typeof modelSummarySchema>;

/** Parses a Hugging Face config.json; the error names the field to fix. */
export function summarizeConfig(json: unknown): ModelSummary {
  const r = hfConfig.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`config.json: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  const c = r.data;
  const arch = c.architectures[0];
  if (!(supportedArchitectures as readonly string[]).includes(arch)) {
    throw new Error(`config.json: architectures[0]='${arch}' is not supported; use one of ${supportedArchitectures.join(", ")}`);
  }
  const kv = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kv !== 0) {
    throw new Error(`config.json: num_attention_heads=${c.num_attention_heads} must be a multiple of num_key_value_heads=${kv}`);
  }
  // As the engine (engine/model/config.ts) requires: registering a model it would refuse is an error now.
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new Error(`config.json: head_dim=${headDim} must be an even integer (set head_dim explicitly)`);
  }
  return {
    architecture: arch as ModelSummary["architecture"],
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: kv,
    head_dim: headDim,
    vocab_size: c.vocab_size,
    ...(c.max_position_embeddings ? { max_position_embeddings: c.max_position_embeddings } : {}),
  };
}

/** [out_features, in_features] of each linear module, as stored in a PyTorch weight. */
export function moduleShapes(m: ModelSummary): Record<LinearModule, [number, number]> {
  const q = m.num_attention_heads * m.head_dim;
  const kv = m.num_key_value_heads * m.head_dim;
  const h = m.hidden_size;
  const i = m.intermediate_size;
  return {
    q_proj: [q, h],
    k_proj: [kv, h],
    v_proj: [kv, h],
    o_proj: [h, q],
    gate_proj: [i, h],
    up_proj: [i, h],
    down_proj: [h, i],
  };
}
