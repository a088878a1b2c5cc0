// What the API needs to know of a base model: its sizes from config.json and the [out, in] shape of every
// LoRA-targetable module, so uploaded adapters and job settings can be checked without loading weights.
import { z } from "zod";
import { parseModelConfig, supportedArchitectures } from "../../../gpu-runner/src/engine/model/config.js";

export const linearModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LinearModule = (typeof linearModules)[number];

/**
 * The largest lora_alpha accepted (uploads and jobs). Common values are 8–512; far past this the scaled update
 * alpha/r·B·A leaves float32's range (1e308 gave inf and NaN logits) rather than meaning anything.
 */
export const MAX_LORA_ALPHA = 1_000_000;

/** The submodule a projection lives under in a decoder layer. */
export const moduleParent = (m: LinearModule): "self_attn" | "mlp" => (m === "gate_proj" || m === "up_proj" || m === "down_proj" ? "mlp" : "self_attn");

export const modelSummarySchema = z.object({
  architecture: z.enum(supportedArchitectures),
  hidden_size: z.number().int(),
  intermediate_size: z.number().int(),
  num_hidden_layers: z.number().int(),
  num_attention_heads: z.number().int(),
  num_key_value_heads: z.number().int(),
  head_dim: z.number().int(),
  vocab_size: z.number().int(),
  /** Longest sequence the engine runs the model at: config.json's, or the engine's 4096 without one (models registered before it was kept lack it). */
  max_position_embeddings: z.number().int().optional(),
  /** Mistral's attention window: the engine attends to every earlier token, so no sequence may be longer (absent for others, and for models registered before it was kept). */
  sliding_window: z.number().int().optional(),
  /** Whether tokenizer.json and a chat template exist (lib/model-text.ts; unknown for models registered before they were noted). */
  has_tokenizer: z.boolean().optional(),
  has_chat_template: z.boolean().optional(),
});

export type ModelSummary = z.infer<typeof modelSummarySchema>;

/**
 * Parses a Hugging Face config.json with the engine's own rules (engine/model/config.ts), so a model is
 * refused at registration, not by every runner later; the error names the field to fix.
 */
export function summarizeConfig(json: unknown): ModelSummary {
  const c = parseModelConfig(json);
  return {
    architecture: c.architecture,
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocab,
    // The engine's: config.json's, or the 4096 it assumes without one (jobs check seq_len against it).
    max_position_embeddings: c.maxPositions,
    ...(c.slidingWindow ? { sliding_window: c.slidingWindow } : {}),
  };
}

/**
 * The longest training sequence a model takes, and the config.json field that sets it: its
 * max_position_embeddings, or a shorter sliding_window (Mistral's), which the engine does not implement, so
 * a longer sequence would train attention the model never uses (and serving refuses). Null when neither is known.
 */
export function seqLenLimit(m: ModelSummary): { max: number; field: "max_position_embeddings" | "sliding_window" } | null {
  const w = m.sliding_window;
  const p = m.max_position_embeddings;
  if (w !== undefined && (p === undefined || w < p)) return { max: w, field: "sliding_window" };
  return p === undefined ? null : { max: p, field: "max_position_embeddings" };
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
