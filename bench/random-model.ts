// Random Llama-style model and LoRA adapter folders for benchmarks, shaped like the PyTorch peer's
// (config.json fields, tensor names, N(0, 0.02) weights, norms near 1, PEFT adapter with nonzero B).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRng, type Rng } from "../gpu-runner/src/engine/generate/rng.js";
import { writeSafetensors, type TensorToWrite } from "../gpu-runner/src/engine/weights/safetensors.js";
import { headDim, type BenchPreset } from "./presets.js";
import type { Projection } from "../gpu-runner/src/engine/model/names.js";
import { adapterConfigJson } from "../gpu-runner/src/engine/train/export.js";

/** Fills `out` with normal(mean, std) draws; Box–Muller, using both outputs of each pair. */
export function fillNormal(out: Float32Array, rng: Rng, std: number, mean = 0): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    let u = rng.next();
    while (u === 0) u = rng.next();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    const a = 2 * Math.PI * rng.next();
    out[i] = mean + r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = mean + r * Math.sin(a);
  }
  return out;
}

/** Fills `out` with uniform(−bound, bound) draws. */
export function fillUniform(out: Float32Array, rng: Rng, bound: number): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = (rng.next() * 2 - 1) * bound;
  return out;
}

/** config.json with the same fields and values the peer's `hf_config` writes. */
export function benchConfigJson(p: BenchPreset): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: p.hidden,
    intermediate_size: p.intermediate,
    num_attention_heads: p.heads,
    num_key_value_heads: p.kvHeads,
    num_hidden_layers: p.layers,
    head_dim: headDim(p),
    vocab_size: p.vocab,
    rms_norm_eps: p.rmsEps,
    rope_theta: p.ropeTheta,
    rope_scaling: null,
    max_position_embeddings: p.maxPositions,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    tie_word_embeddings: false,
    initializer_range: 0.02,
    pretraining_tp: 1,
    bos_token_id: 1,
    eos_token_id: 2,
    use_cache: true,
    torch_dtype: "float32",
  };
}

/** [out, in] of each LoRA target module (Hugging Face Linear weight layout). */
function moduleShapes(p: BenchPreset): Record<string, [number, number]> {
  const qd = p.heads * headDim(p);
  const kvd = p.kvHeads * headDim(p);
  return {
    q_proj: [qd, p.hidden],
    k_proj: [kvd, p.hidden],
    v_proj: [kvd, p.hidden],
    o_proj: [p.hidden, qd],
    gate_proj: [p.intermediate, p.hidden],
    up_proj: [p.intermediate, p.hidden],
    down_proj: [p.hidden, p.intermediate],
  };
}

const ATTENTION_MODULES = new Set(["q_proj", "k_proj", "v_proj", "o_proj"]);
/** The Hugging Face submodule that holds a projection. */
const sub = (m: string) => (ATTENTION_MODULES.has(m) ? "self_attn" : "mlp");

/** Writes config.json + model.safetensors: projections and embeddings N(0, 0.02), norms 1 + 0.1·N(0, 1). */
export async function writeRandomModel(dir: string, p: BenchPreset, opts: { seed: number }): Promise<void> {
  const rng = createRng(opts.seed);
  const tensors: Record<string, TensorToWrite> = {};
  const weight = (name: string, shape: number[]) => {
    tensors[name] = { shape, data: fillNormal(new Float32Array(shape[0] * (shape[1] ?? 1)), rng, 0.02) };
  };
  const norm = (name: string) => {
    tensors[name] = { shape: [p.hidden], data: fillNormal(new Float32Array(p.hidden), rng, 0.1, 1) };
  };
  weight("model.embed_tokens.weight", [p.vocab, p.hidden]);
  const shapes = moduleShapes(p);
  for (let i = 0; i < p.layers; i++) {
    const pre = `model.layers.${i}.`;
    norm(pre + "input_layernorm.weight");
    for (const [m, shape] of Object.entries(shapes)) weight(`${pre}${sub(m)}.${m}.weight`, shape);
    norm(pre + "post_attention_layernorm.weight");
  }
  norm("model.norm.weight");
  weight("lm_head.weight", [p.vocab, p.hidden]);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(benchConfigJson(p), null, 2) + "\n");
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
}

/**
 * Writes a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) for every target in every
 * layer: A uniform ±1/√in (PEFT's init), B normal(0, bStd) so the adapter changes the outputs.
 */
export async function writeRandomAdapter(
  dir: string,
  p: BenchPreset,
  opts: { seed: number; bStd?: number; baseModelPath?: string },
): Promise<void> {
  const rng = createRng(opts.seed);
  const r = p.loraRank;
  const tensors: Record<string, TensorToWrite> = {};
  const shapes = moduleShapes(p);
  for (let i = 0; i < p.layers; i++) {
    for (const m of p.loraTargets) {
      const [out, inF] = shapes[m];
      const key = `base_model.model.model.layers.${i}.${sub(m)}.${m}`;
      tensors[`${key}.lora_A.weight`] = { shape: [r, inF], data: fillUniform(new Float32Array(r * inF), rng, 1 / Math.sqrt(inF)) };
      tensors[`${key}.lora_B.weight`] = { shape: [out, r], data: fillNormal(new Float32Array(out * r), rng, opts.bStd ?? 0.02) };
    }
  }
  const config = adapterConfigJson({
    rank: r,
    alpha: p.loraAlpha,
    dropout: 0,
    targets: p.loraTargets as readonly Projection[],
    useRslora: false,
    baseModel: opts.baseModelPath ?? "",
  });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
  await writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
}

/** Bump when the files written above change, so cached folders are rebuilt. */
const CACHE_FORMAT = 1;

/**
 * Returns `<root>/<preset>-seed<seed>/{base,adapter}` (root: the repo's git-ignored .tmp/bench-models),
 * writing them only when the marker file for this preset, seed and format is missing (setup for tens of
 * millions of weights takes seconds; reruns skip it).
 */
export async function ensureBenchModel(
  p: BenchPreset,
  seed: number,
  root = fileURLToPath(new URL("../.tmp/bench-models", import.meta.url)),
): Promise<{ baseDir: string; adapterDir: string; created: boolean }> {
  const dir = join(root, `${p.name}-seed${seed}`);
  const baseDir = join(dir, "base");
  const adapterDir = join(dir, "adapter");
  const markerPath = join(dir, "bench-model.json");
  const marker = JSON.stringify({ format: CACHE_FORMAT, preset: p, seed });
  const existing = await readFile(markerPath, "utf8").catch(() => "");
  if (existing === marker) return { baseDir, adapterDir, created: false };
  await writeRandomModel(baseDir, p, { seed });
  await writeRandomAdapter(adapterDir, p, { seed: seed + 1, baseModelPath: "../base" });
  await writeFile(markerPath, marker);
  return { baseDir, adapterDir, created: true };
}
