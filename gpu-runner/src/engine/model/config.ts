// config.json of a Hugging Face Llama-family model (Llama, Mistral, Qwen2), parsed with zod and
// normalized into the one ModelConfig the graph builder reads. Unsupported options fail by name.
// Pure (no file access): the API registers base models with the same rules (api/src/lib/model-shapes.ts).
import { z } from "zod";

export const supportedArchitectures = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"] as const;
export type Architecture = (typeof supportedArchitectures)[number];

const ropeScalingSchema = z
  .object({
    type: z.string().optional(),
    rope_type: z.string().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().optional(),
    high_freq_factor: z.number().optional(),
    original_max_position_embeddings: z.number().int().positive().optional(),
  })
  .passthrough();

const posInt = z.number().int().positive();
const tokenIds = z.union([z.number().int(), z.array(z.number().int())]).nullish();

/** The fields of config.json that the engine reads; everything else passes through untouched. */
export const hfConfigSchema = z
  .object({
    architectures: z.array(z.string()).min(1),
    model_type: z.string().optional(),
    hidden_size: posInt,
    intermediate_size: posInt,
    num_hidden_layers: posInt,
    num_attention_heads: posInt,
    num_key_value_heads: posInt.optional(),
    head_dim: posInt.nullish(),
    vocab_size: posInt,
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: ropeScalingSchema.nullish(),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    hidden_act: z.string().default("silu"),
    tie_word_embeddings: z.boolean().optional(),
    use_sliding_window: z.boolean().optional(),
    sliding_window: z.number().int().nullish(),
    max_position_embeddings: posInt.optional(),
    bos_token_id: tokenIds,
    eos_token_id: tokenIds,
  })
  .passthrough();

export type RopeScaling =
  | { kind: "none" }
  | { kind: "linear"; factor: number }
  | { kind: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export type ModelConfig = {
  architecture: Architecture;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  rmsEps: number;
  /** q/k/v projections carry a bias (Qwen2 always; Llama when attention_bias is true). */
  attentionBias: boolean;
  tieEmbeddings: boolean;
  maxPositions: number;
  /** Mistral's attention window; sequences longer than it are refused (full attention is computed). */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
};

function parseRopeScaling(raw: z.infer<typeof ropeScalingSchema> | null | undefined): RopeScaling {
  if (!raw) return { kind: "none" };
  const kind = raw.rope_type ?? raw.type;
  const need = (v: number | undefined, field: string): number => {
    if (v === undefined) throw new Error(`config.json: rope_scaling.${field} is required for rope_type "${kind}"`);
    return v;
  };
  if (kind === "default") return { kind: "none" };
  if (kind === "linear") return { kind: "linear", factor: need(raw.factor, "factor") };
  if (kind === "llama3") {
    return {
      kind: "llama3",
      factor: need(raw.factor, "factor"),
      lowFreqFactor: need(raw.low_freq_factor, "low_freq_factor"),
      highFreqFactor: need(raw.high_freq_factor, "high_freq_factor"),
      originalMaxPositions: need(raw.original_max_position_embeddings, "original_max_position_embeddings"),
    };
  }
  throw new Error(`config.json: rope_scaling type "${kind}" is not supported; use none, linear or llama3`);
}

const asIds = (v: number | number[] | null | undefined): number[] => (v == null ? [] : Array.isArray(v) ? v : [v]);

/** Validates a parsed config.json object and normalizes it. */
export function parseModelConfig(json: unknown): ModelConfig {
  const r = hfConfigSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`config.json: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const c = r.data;
  const arch = c.architectures[0];
  if (!(supportedArchitectures as readonly string[]).includes(arch)) {
    throw new Error(`config.json: architectures[0]="${arch}" is not supported; expected one of ${supportedArchitectures.join(", ")}`);
  }
  if (c.hidden_act !== "silu") throw new Error(`config.json: hidden_act="${c.hidden_act}" is not supported; only silu`);
  if (c.mlp_bias) throw new Error(`config.json: mlp_bias=true is not supported; the MLP projections must be bias-free`);
  if (c.use_sliding_window) throw new Error(`config.json: use_sliding_window=true is not supported; set it to false`);
  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads ?? heads;
  if (heads % kvHeads !== 0) {
    throw new Error(`config.json: num_attention_heads=${heads} must be a multiple of num_key_value_heads=${kvHeads}`);
  }
  const headDim = c.head_dim ?? c.hidden_size / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new Error(`config.json: head_dim=${headDim} must be an even integer (set head_dim explicitly)`);
  }
  const architecture = arch as Architecture;
  return {
    architecture,
    hidden: c.hidden_size,
    layers: c.num_hidden_layers,
    heads,
    kvHeads,
    headDim,
    intermediate: c.intermediate_size,
    vocab: c.vocab_size,
    ropeTheta: c.rope_theta,
    ropeScaling: parseRopeScaling(c.rope_scaling),
    rmsEps: c.rms_norm_eps,
    // Hugging Face's Qwen2 always has q/k/v biases and ignores attention_bias.
    attentionBias: architecture === "Qwen2ForCausalLM" ? true : (c.attention_bias ?? false),
    tieEmbeddings: c.tie_word_embeddings ?? false,
    maxPositions: c.max_position_embeddings ?? 4096,
    // Qwen2 applies its window only with use_sliding_window (refused above); Mistral always does.
    slidingWindow: architecture === "MistralForCausalLM" ? (c.sliding_window ?? null) : null,
    bosTokenId: asIds(c.bos_token_id)[0] ?? null,
    eosTokenIds: asIds(c.eos_token_id),
  };
}
