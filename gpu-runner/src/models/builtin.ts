// The built-in base model "tuneserve-micro": a tiny Llama-style decoder with the byte-level ChatML
// tokenizer. Its weights are seeded random numbers — it is UNTRAINED and produces gibberish on its
// own; it exists so `tuneserve serve` and end-to-end tests have a real model to fine-tune and serve.
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createRng, normal, type Rng } from "../engine/generate/rng.js";
import { writeByteLevelTokenizer } from "../engine/tokenizer/byte-level.js";
import { writeSafetensors, type TensorToWrite } from "../engine/weights/safetensors.js";

export const BUILTIN_MODEL_NAME = "tuneserve-micro";
/** Bump when the files written below change, so existing folders are rebuilt. */
const BUILTIN_FORMAT = 2;
const SEED = 20260101;
const LM_HEAD_STD = 0.1;

/** The byte-level tokenizer's vocabulary: 256 bytes, bos 256, eos 257, <|im_start|> 258, <|im_end|> 259. */
const VOCAB = 260;

/** Layer shape of a model of this family; the vocabulary is always the byte-level tokenizer's. */
export type BuiltinSizes = { hidden: number; layers: number; heads: number; kvHeads: number; headDim: number; intermediate: number };

/** Sizes chosen so a LoRA adapter learns a handful of short chat answers in seconds on 2 cores. */
export const BUILTIN_SIZES: BuiltinSizes = { hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 344 };

/** config.json of the built-in model, or of a model of its family with other sizes (benchmarks). */
export function builtinConfigJson(s: BuiltinSizes = BUILTIN_SIZES, name = BUILTIN_MODEL_NAME): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    _name_or_path: name,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    vocab_size: VOCAB,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    max_position_embeddings: 2048,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: 256,
    eos_token_id: [257, 259],
    torch_dtype: "float32",
  };
}

function randomTensors(rng: Rng, s: BuiltinSizes): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  const fill = (name: string, shape: number[], std: number, mean = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * normal(rng);
    out[name] = { shape, data };
  };
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  fill("model.embed_tokens.weight", [VOCAB, s.hidden], 0.02);
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    fill(`${p}.input_layernorm.weight`, [s.hidden], 0.1, 1);
    fill(`${p}.self_attn.q_proj.weight`, [q, s.hidden], 0.02);
    fill(`${p}.self_attn.k_proj.weight`, [kv, s.hidden], 0.02);
    fill(`${p}.self_attn.v_proj.weight`, [kv, s.hidden], 0.02);
    fill(`${p}.self_attn.o_proj.weight`, [s.hidden, q], 0.02);
    fill(`${p}.post_attention_layernorm.weight`, [s.hidden], 0.1, 1);
    fill(`${p}.mlp.gate_proj.weight`, [s.intermediate, s.hidden], 0.02);
    fill(`${p}.mlp.up_proj.weight`, [s.intermediate, s.hidden], 0.02);
    fill(`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate], 0.02);
  }
  fill("model.norm.weight", [s.hidden], 0.1, 1);
  // A wider lm_head than the usual 0.02: after the final RMSNorm, logits can only reach about
  // std·hidden, and 0.02·128 ≈ 2.6 would cap how confidently any fine-tune can answer.
  fill("lm_head.weight", [VOCAB, s.hidden], LM_HEAD_STD);
  return out;
}

/**
 * Creates the built-in model in `dir` (config.json, model.safetensors, tokenizer files) unless a
 * matching marker says it is already there; returns `dir`. The files are written to a temporary
 * sibling folder and renamed into place, so concurrent callers never see a half-written model.
 * `sizes` and `name` make a bigger untrained model of the same family (the serving benchmark's `--base`).
 */
export async function ensureBuiltinModel(dir: string, sizes: BuiltinSizes = BUILTIN_SIZES, name = BUILTIN_MODEL_NAME): Promise<string> {
  const markerPath = join(dir, "tuneserve-model.json");
  const marker = JSON.stringify({ name, format: BUILTIN_FORMAT, seed: SEED, sizes: { ...sizes, vocab: VOCAB } });
  if ((await readFile(markerPath, "utf8").catch(() => "")) === marker) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  await mkdir(tmp, { recursive: true });
  try {
    await writeFile(join(tmp, "config.json"), JSON.stringify(builtinConfigJson(sizes, name), null, 2) + "\n");
    await writeSafetensors(join(tmp, "model.safetensors"), randomTensors(createRng(SEED), sizes), { format: "pt" });
    await writeByteLevelTokenizer(tmp);
    await writeFile(join(tmp, "README.md"), `# ${name}\n\nUntrained: seeded random weights (seed ${SEED}) for tests and the embedded default. Fine-tune it before expecting sensible text.\n`);
    await writeFile(join(tmp, "tuneserve-model.json"), marker);
    // Another caller may have finished first; its folder is equivalent, so either one wins.
    if ((await readFile(markerPath, "utf8").catch(() => "")) === marker) return dir;
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if ((await readFile(markerPath, "utf8").catch(() => "")) !== marker) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}
