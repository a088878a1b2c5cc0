// Checks an uploaded PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) against the base
// model it claims to fit: config options the engine supports, key names, layers, targets and every shape.
import { z } from "zod";
import { ApiError } from "../errors.js";
import { MAX_LORA_ALPHA, linearModules, moduleParent, moduleShapes, type LinearModule, type ModelSummary } from "../lib/model-shapes.js";
import { SafetensorsError, type SafetensorsDtype, type SafetensorsHeader } from "./safetensors-header.js";
import { SafetensorsStreamReader } from "./safetensors-stream.js";

const CONFIG = "adapter_config.json";
const WEIGHTS = "adapter_model.safetensors";
/** Form field names of the upload, used as the error's param. */
export const uploadFields = { config: "adapter_config", weights: "adapter_model" } as const;

/**
 * A config value as an error message quotes it: a scalar as JSON, cut to 64 characters; a list or object by its
 * brackets (JSON.stringify would overflow the stack on one nested thousands deep, and a 500 would follow).
 */
const quoted = (v: unknown) => {
  if (v !== null && typeof v === "object") return Array.isArray(v) ? "[…]" : "{…}";
  const s = String(JSON.stringify(v));
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
};

const isEmpty = (v: unknown) => v === null || v === undefined || (typeof v === "object" && Object.keys(v as object).length === 0);

/** The PEFT options the engine can apply; keys it does not know (PEFT boilerplate) pass through unread. */
export const adapterConfigSchema = z.looseObject({
  peft_type: z.literal("LORA", { error: (i) => `peft_type=${quoted(i.input)} is not supported; only LORA adapters can be uploaded` }),
  task_type: z.literal("CAUSAL_LM", { error: (i) => `task_type=${quoted(i.input)} is not supported; use CAUSAL_LM` }).nullish(),
  r: z.number({ error: "r must be a number" }).int("r must be an integer").min(1, { error: (i) => `r=${i.input} must be ≥ 1` }),
  lora_alpha: z
    .number({ error: "lora_alpha must be a number" })
    .positive({ error: (i) => `lora_alpha=${i.input} must be > 0` })
    .max(MAX_LORA_ALPHA, { error: (i) => `lora_alpha=${i.input} must be ≤ ${MAX_LORA_ALPHA}` }),
  target_modules: z.union([z.array(z.string()).min(1, "target_modules must name at least one module"), z.string()], {
    error: "target_modules must be a list of module names or \"all-linear\"",
  }),
  use_rslora: z.boolean("use_rslora must be true or false").default(false),
  use_dora: z.literal(false, { error: "use_dora=true (DoRA) is not supported for uploads; upload a plain LoRA adapter (use_dora=false)" }).default(false),
  bias: z.literal("none", { error: (i) => `bias=${quoted(i.input)} is not supported; LoRA adapters must be saved with bias="none"` }).default("none"),
  fan_in_fan_out: z.literal(false, { error: "fan_in_fan_out=true is not supported; Llama-style models store weights as [out, in]" }).default(false),
  modules_to_save: z.unknown().optional().refine((v) => v === null || v === undefined || (Array.isArray(v) && v.length === 0), {
    error: "modules_to_save is not supported (it stores full copies of modules); save the adapter with modules_to_save=null",
  }),
  layers_to_transform: z.unknown().optional().refine((v) => v === null || v === undefined, {
    error: "layers_to_transform is not supported; the adapter must target every layer (layers_to_transform=null)",
  }),
  rank_pattern: z.unknown().optional().refine(isEmpty, { error: "rank_pattern is not supported; every module must use the same rank r" }),
  alpha_pattern: z.unknown().optional().refine(isEmpty, { error: "alpha_pattern is not supported; every module must use the same lora_alpha" }),
});

export type AdapterConfig = z.infer<typeof adapterConfigSchema>;

/** What the API records about a validated adapter. */
export interface AdapterFacts {
  rank: number;
  alpha: number;
  useRslora: boolean;
  /** In the order of linearModules, whatever order the config listed them in. */
  targetModules: LinearModule[];
  dtype: SafetensorsDtype;
  tensorCount: number;
}

const invalid = (file: string, param: string, msg: string) => new ApiError("invalid_file", `${file}: ${msg}`, param);

/** adapter_config.json is a few hundred bytes; anything near this is not a PEFT config. */
export const maxAdapterConfigBytes = 64 * 1024;

/** The fault of an adapter_config.json of `bytes` bytes, over maxAdapterConfigBytes. */
export const configTooLarge = (bytes: number) =>
  new ApiError("invalid_file", `${CONFIG} is ${bytes} bytes; a PEFT config is under ${maxAdapterConfigBytes}`, uploadFields.config);

/** Maps target_modules (names or "all-linear") to the base model's linear modules. */
function resolveTargets(raw: string[] | string): LinearModule[] {
  const p = uploadFields.config;
  if (typeof raw === "string") {
    if (raw === "all-linear") return [...linearModules];
    throw invalid(CONFIG, p, `target_modules="${raw}" is not supported; list module names (${linearModules.join(", ")}) or use "all-linear"`);
  }
  for (const name of raw) {
    if (!(linearModules as readonly string[]).includes(name)) {
      throw invalid(CONFIG, p, `target_modules contains '${name}'; LoRA can target only ${linearModules.join(", ")}`);
    }
  }
  return linearModules.filter((m) => raw.includes(m));
}

/** Parses and checks adapter_config.json against the rank limit. */
export function parseAdapterConfig(bytes: Uint8Array, maxRank: number): { config: AdapterConfig; targets: LinearModule[] } {
  const p = uploadFields.config;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalid(CONFIG, p, "is not valid JSON; upload the adapter_config.json that PEFT's save_pretrained wrote");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw invalid(CONFIG, p, "must be a JSON object");
  const r = adapterConfigSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.join(".");
    // A missing required field would get its wrong-value message; name the field instead.
    const msg = issue.path.length === 1 && !(field in (json as object)) ? `${field} is required` : issue.message;
    throw invalid(CONFIG, p, msg);
  }
  const config = r.data;
  if (config.r > maxRank) throw invalid(CONFIG, p, `r=${config.r} exceeds the maximum rank ${maxRank}; retrain with r ≤ ${maxRank}`);
  return { config, targets: resolveTargets(config.target_modules) };
}

/**
 * The largest safetensors header an adapter of `model` can need: one entry per layer, module and A/B (about 130
 * bytes each in PEFT's files; 1 KiB allowed) plus room for __metadata__. Decoding a header is JSON.parse on the
 * event loop: a 100 MB one of a million entries blocks the API for seconds and takes half a gigabyte, so a
 * larger header is refused before it is decoded.
 */
export const maxAdapterHeaderBytes = (model: ModelSummary) => 64 * 1024 + model.num_hidden_layers * linearModules.length * 2 * 1024;

const keyPattern = /^base_model\.model\.model\.layers\.(\d+)\.([a-z_]+)\.([a-z_]+)\.lora_([AB])\.weight$/;
const keyName = (layer: number, m: LinearModule, ab: "A" | "B") => `base_model.model.model.layers.${layer}.${moduleParent(m)}.${m}.lora_${ab}.weight`;

/**
 * Validates an adapter's two files against a base model summary: the config (see parseAdapterConfig), the
 * safetensors layout, and that the tensors are exactly lora_A [r, in] and lora_B [out, r] for every layer
 * and target module. Throws ApiError invalid_file naming the file, the key and the fix.
 */
export function validateAdapter(configBytes: Uint8Array, weightsBytes: Uint8Array, model: ModelSummary, maxRank: number): AdapterFacts {
  const { config, targets } = parseAdapterConfig(configBytes, maxRank);
  const check = new AdapterWeightsCheck(model);
  check.push(weightsBytes);
  return adapterFacts(check.end(), config, targets, model);
}

/**
 * Checks adapter_model.safetensors as it streams (validateAdapter's checks of it, chunk by chunk): the header
 * from the first bytes, bounded by what the base model needs, and the data's length against it at the end.
 * Throws ApiError invalid_file.
 */
export class AdapterWeightsCheck {
  private readonly reader: SafetensorsStreamReader;
  private readonly maxHeader: number;

  constructor(private readonly model: ModelSummary) {
    this.maxHeader = maxAdapterHeaderBytes(model);
    this.reader = new SafetensorsStreamReader(WEIGHTS, this.maxHeader);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.reader.bytes;
  }

  /** The most bytes held at once: the header while it arrives. */
  get mostHeld(): number {
    return this.reader.mostHeld;
  }

  /** Feeds the next bytes; returns the header the one time it is complete, for adapterFacts. */
  push(chunk: Uint8Array): SafetensorsHeader | null {
    return asApiError(() => this.reader.push(chunk));
  }

  /** The file has ended: checks its length against the header and returns the header. */
  end(): SafetensorsHeader {
    const declared = this.reader.declared;
    // A header longer than the file is no adapter at all (a text file's first bytes, say): end() names that.
    if (this.reader.oversized && declared !== null && declared <= this.reader.bytes - 8) {
      const m = this.model;
      throw invalid(WEIGHTS, uploadFields.weights, `header is ${declared} bytes, over the ${this.maxHeader} an adapter of this ${m.num_hidden_layers}-layer base model needs (${m.num_hidden_layers} × ${linearModules.length} modules × lora_A and lora_B entries); upload the adapter_model.safetensors PEFT's save_pretrained wrote`);
    }
    return asApiError(() => this.reader.end());
  }
}

function asApiError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ApiError("invalid_file", e.message, uploadFields.weights);
    throw e;
  }
}

/** Checks a decoded header's tensors against the config and the base model: names, layers, targets, shapes, one dtype. */
export function adapterFacts(header: SafetensorsHeader, config: AdapterConfig, targets: LinearModule[], model: ModelSummary): AdapterFacts {
  const p = uploadFields.weights;
  const shapes = moduleShapes(model);
  const r = config.r;
  const dtypes = new Set<SafetensorsDtype>();
  for (const [key, t] of header.tensors) {
    const m = keyPattern.exec(key);
    if (!m) {
      throw invalid(WEIGHTS, p, `unexpected tensor ${key}; a LoRA adapter holds only base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_{A|B}.weight`);
    }
    const layer = Number(m[1]);
    const [, , parent, mod, ab] = m;
    if (layer >= model.num_hidden_layers) {
      throw invalid(WEIGHTS, p, `${key} names layer ${layer} but the base model has ${model.num_hidden_layers} layers (0–${model.num_hidden_layers - 1}); was it trained for another model?`);
    }
    if (!(linearModules as readonly string[]).includes(mod)) throw invalid(WEIGHTS, p, `${key} targets '${mod}', which is not a linear module of ${model.architecture}`);
    const module = mod as LinearModule;
    if (parent !== moduleParent(module)) throw invalid(WEIGHTS, p, `${key}: ${module} lives under ${moduleParent(module)}, not ${parent}`);
    if (!targets.includes(module)) throw invalid(WEIGHTS, p, `${key} targets ${module}, which is not in adapter_config.json target_modules; add it there or remove the tensor`);
    const [out, inF] = shapes[module];
    const expected = ab === "A" ? [r, inF] : [out, r];
    if (t.shape.length !== 2 || t.shape[0] !== expected[0] || t.shape[1] !== expected[1]) {
      const what = ab === "A" ? `r × in_features of ${module}` : `out_features × r of ${module}`;
      throw invalid(WEIGHTS, p, `${key} has shape [${t.shape.join(",")}], expected [${expected.join(",")}] (${what})`);
    }
    dtypes.add(t.dtype);
  }
  let missing = 0;
  let firstMissing = "";
  for (let layer = 0; layer < model.num_hidden_layers; layer++) {
    for (const module of targets) {
      for (const ab of ["A", "B"] as const) {
        const key = keyName(layer, module, ab);
        if (!header.tensors.has(key)) {
          missing++;
          firstMissing ||= key;
        }
      }
    }
  }
  if (missing > 0) {
    throw invalid(WEIGHTS, p, `${firstMissing} is missing (${missing} tensor${missing > 1 ? "s" : ""} missing in all); every layer needs lora_A and lora_B for each of ${targets.join(", ")}`);
  }
  if (dtypes.size > 1) throw invalid(WEIGHTS, p, `tensors mix dtypes ${[...dtypes].join(", ")}; save every LoRA weight in one dtype`);
  return {
    rank: r,
    alpha: config.lora_alpha,
    useRslora: config.use_rslora,
    targetModules: targets,
    dtype: [...dtypes][0] ?? "F32",
    tensorCount: header.tensors.size,
  };
}
