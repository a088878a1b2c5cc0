// Loads a Hugging Face PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) and checks
// it against the base model: rank, targets, tensor names and shapes. Options we cannot honour fail by name.
import { loraScale, projectionTargets } from "./targets.js";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { ModelConfig } from "../model/config.js";
import { PROJECTIONS, modulePath, projectionDims, type Projection } from "../model/names.js";
import { readSafetensors } from "../weights/safetensors.js";

export const adapterConfigSchema = z
  .object({
    peft_type: z.string().default("LORA"),
    r: z.number().int(),
    lora_alpha: z.number(),
    target_modules: z.union([z.array(z.string()), z.string()]),
    use_rslora: z.boolean().default(false),
    use_dora: z.boolean().default(false),
    fan_in_fan_out: z.boolean().default(false),
    bias: z.string().default("none"),
    modules_to_save: z.array(z.string()).nullish(),
    layers_to_transform: z.union([z.number().int(), z.array(z.number().int())]).nullish(),
    rank_pattern: z.record(z.string(), z.number()).nullish(),
    alpha_pattern: z.record(z.string(), z.number()).nullish(),
    base_model_name_or_path: z.string().nullish(),
  })
  .passthrough();
export type AdapterConfig = z.infer<typeof adapterConfigSchema>;

/** A LoRA adapter in PEFT layout: per layer and target, A [r, in] and B [out, r]. */
export type LoraAdapter = {
  name: string;
  rank: number;
  alpha: number;
  /** alpha / r, or alpha / √r with use_rslora. */
  scale: number;
  targets: Projection[];
  /** Key `${layer}.${module}`. */
  weights: Map<string, { a: Float32Array; b: Float32Array }>;
};

export const loraKey = (layer: number, m: Projection): string => `${layer}.${m}`;

/** Validates adapter_config.json contents; returns the targets among the seven projections. */
export function parseAdapterConfig(json: unknown, file = "adapter_config.json"): { cfg: AdapterConfig; targets: Projection[]; scale: number } {
  const r = adapterConfigSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${file}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const c = r.data;
  if (c.peft_type !== "LORA") throw new Error(`${file}: peft_type=${c.peft_type} is not supported here; expected LORA`);
  if (c.r < 1) throw new Error(`${file}: r=${c.r} must be ≥ 1`);
  if (c.use_dora) throw new Error(`${file}: use_dora=true is not supported; set it to false`);
  if (c.fan_in_fan_out) throw new Error(`${file}: fan_in_fan_out=true is not supported (Llama-family linears are [out, in])`);
  if (c.bias !== "none") throw new Error(`${file}: bias="${c.bias}" is not supported; LoRA must train no biases (bias="none")`);
  if (c.modules_to_save?.length) throw new Error(`${file}: modules_to_save=${JSON.stringify(c.modules_to_save)} is not supported; set it to null`);
  if (c.layers_to_transform != null) throw new Error(`${file}: layers_to_transform is not supported; set it to null`);
  if (c.rank_pattern && Object.keys(c.rank_pattern).length) throw new Error(`${file}: rank_pattern is not supported; leave it empty`);
  if (c.alpha_pattern && Object.keys(c.alpha_pattern).length) throw new Error(`${file}: alpha_pattern is not supported; leave it empty`);
  let targets: Projection[];
  if (typeof c.target_modules === "string" && c.target_modules !== "all-linear") {
    // PEFT treats a string as a regex matched against the full module name ("all-linear" is its shorthand, read below).
    const re = new RegExp(`^(?:${c.target_modules})$`);
    targets = PROJECTIONS.filter((m) => re.test(modulePath(0, m)) || re.test(m));
  } else targets = projectionTargets(c.target_modules, file);
  if (targets.length === 0) throw new Error(`${file}: target_modules matches none of ${PROJECTIONS.join(", ")}`);
  const scale = loraScale(c.r, c.lora_alpha, c.use_rslora);
  return { cfg: c, targets, scale };
}

/** Loads a PEFT LoRA adapter folder and checks it fits `model`. */
export async function loadLoraAdapter(dir: string, model: ModelConfig, name = dir): Promise<LoraAdapter> {
  const cfgPath = join(dir, "adapter_config.json");
  let json: unknown;
  try {
    json = JSON.parse(await readFile(cfgPath, "utf8"));
  } catch (err) {
    throw new Error(`${cfgPath}: cannot be read as JSON (${(err as Error).message})`);
  }
  const { cfg, targets, scale } = parseAdapterConfig(json, cfgPath);
  const file = await readSafetensors(join(dir, "adapter_model.safetensors"));
  const used = new Set<string>();
  const weights = new Map<string, { a: Float32Array; b: Float32Array }>();
  const find = (base: string): string | undefined => [`${base}.weight`, `${base}.default.weight`].find((n) => file.has(n));
  for (let layer = 0; layer < model.layers; layer++) {
    for (const m of targets) {
      const [out, inF] = projectionDims(model, m);
      const prefix = `base_model.model.${modulePath(layer, m)}`;
      const aName = find(`${prefix}.lora_A`);
      const bName = find(`${prefix}.lora_B`);
      if (!aName || !bName) throw new Error(`${file.path}: missing ${prefix}.lora_A/lora_B.weight for target ${m} of layer ${layer}`);
      const check = (n: string, want: number[]) => {
        const got = file.shape(n);
        if (got.join() !== want.join()) throw new Error(`${file.path}: ${n} has shape [${got}] but r=${cfg.r} and the base model need [${want}]`);
      };
      check(aName, [cfg.r, inF]);
      check(bName, [out, cfg.r]);
      used.add(aName).add(bName);
      weights.set(loraKey(layer, m), { a: file.tensor(aName), b: file.tensor(bName) });
    }
  }
  const extra = file.names().filter((n) => !used.has(n));
  if (extra.length) throw new Error(`${file.path}: tensors ${extra.slice(0, 3).join(", ")}${extra.length > 3 ? " …" : ""} are not LoRA weights of a target module; this adapter does not fit the base model`);
  return { name, rank: cfg.r, alpha: cfg.lora_alpha, scale, targets, weights };
}
