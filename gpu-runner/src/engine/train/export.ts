// Writes trained LoRA tensors as a Hugging Face PEFT adapter folder (adapter_config.json +
// adapter_model.safetensors with PEFT's key names, A [r, in], B [out, r]) that PEFT, vLLM and our
// own inference path (lora/peft.ts) load.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Projection } from "../model/names.js";
import { writeSafetensors, type TensorToWrite } from "../weights/safetensors.js";
import type { FloatArray } from "../graph/types.js";
import type { TrainParam } from "./train-graph.js";

export type AdapterMeta = {
  rank: number;
  alpha: number;
  dropout: number;
  targets: readonly Projection[];
  useRslora: boolean;
  /** Written as base_model_name_or_path (the base model folder or its name). */
  baseModel: string;
};

/** adapter_config.json contents: PEFT's LoraConfig fields with our values, standard boilerplate elsewhere. */
export function adapterConfigJson(m: AdapterMeta): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: m.baseModel,
    r: m.rank,
    lora_alpha: m.alpha,
    lora_dropout: m.dropout,
    target_modules: [...m.targets],
    use_rslora: m.useRslora,
    use_dora: false,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

/** The LoRA tensors keyed by their PEFT names (the train params' names are PEFT keys already). */
export function adapterTensors(params: readonly TrainParam[], values: ReadonlyMap<string, FloatArray>): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  for (const p of params) {
    const v = values.get(p.name);
    if (!v || v.length !== p.shape[0] * p.shape[1]) throw new Error(`adapter export: ${p.name} has ${v?.length ?? "no"} values, expected [${p.shape}]`);
    out[p.name] = { shape: [...p.shape], data: v instanceof Float32Array ? v : Float32Array.from(v) };
  }
  return out;
}

/** Writes the adapter folder; returns the file names written. */
export async function writePeftAdapter(dir: string, params: readonly TrainParam[], values: ReadonlyMap<string, FloatArray>, meta: AdapterMeta): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, "adapter_model.safetensors"), adapterTensors(params, values), { format: "pt" });
  await writeFile(join(dir, "adapter_config.json"), JSON.stringify(adapterConfigJson(meta), null, 2) + "\n");
  return ["adapter_config.json", "adapter_model.safetensors"];
}
