// A job may continue one of the tenant's fine-tuned models or checkpoints (OpenAI's `model: "ft:…"`): its
// LoRA starts from that model's adapter instead of from zero, on the same base model, and keeps that adapter's shape
// (rank, alpha, target modules, rsLoRA); only dropout may change (default 0, whatever the parent's was).
// The job records where it started.
import { parseAdapterConfig } from "../adapters/validate.js";
import { readAllUpTo } from "../blob/port.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../errors.js";
import { linearModules } from "../lib/model-shapes.js";
import type { AdapterInput, JobAdapter } from "./settings.js";

/** Stored with the job (jobs.parent): the fine-tuned model (or checkpoint) it continues, and its adapter's id (null for a checkpoint). */
export type JobParent = { model: string; adapter_id: string | null };

/**
 * The most of a stored adapter_config.json read to continue its model. Uploads and hand-ins take 64 KiB today
 * (maxAdapterConfigBytes), but adapters stored before that bound took any size: 1 MiB is past any real PEFT
 * config (a few hundred bytes; a rank_pattern for every module of a 128-layer model is under 64 KiB), so none
 * of them is refused, while a stored object that is no config is not buffered whole.
 */
export const maxStoredAdapterConfigBytes = 1024 * 1024;

/** The parent's LoRA shape, read from its adapter_config.json; the request's adapter fields must agree with it. */
export async function continuedAdapter(deps: Deps, parent: { modelId: string; blobPrefix: string }, asked: AdapterInput): Promise<JobAdapter> {
  const obj = await deps.blobs.get(`${parent.blobPrefix}adapter_config.json`);
  if (!obj || !(await deps.blobs.head(`${parent.blobPrefix}adapter_model.safetensors`))) {
    await obj?.body.cancel();
    throw new ApiError("conflict", `model '${parent.modelId}': its adapter files are gone; it cannot be continued`, "model");
  }
  const tooLarge = (bytes: number) =>
    new ApiError("invalid_request", `model '${parent.modelId}': its adapter_config.json is ${bytes} bytes, over the ${maxStoredAdapterConfigBytes}-byte bound for it (a PEFT config is a few hundred bytes); it cannot be continued`, "model");
  const { config, targets } = parseAdapterConfig(await readAllUpTo(obj, maxStoredAdapterConfigBytes, tooLarge), Number.MAX_SAFE_INTEGER);
  const maxRank = deps.config.TUNESERVE_MAX_LORA_RANK;
  if (config.r > maxRank) throw new ApiError("invalid_request", `model '${parent.modelId}' has r=${config.r}, over this deployment's largest rank (${maxRank}); it cannot be continued`, "model");
  const kept = { r: config.r, alpha: config.lora_alpha, target_modules: targets, use_rslora: config.use_rslora };
  const same = (k: keyof typeof kept, v: unknown) =>
    k === "target_modules" ? (v === "all-linear" ? [...linearModules] : [...new Set(v as string[])]).sort().join() === [...kept.target_modules].sort().join() : v === kept[k];
  for (const k of Object.keys(kept) as (keyof typeof kept)[]) {
    const v = asked[k];
    if (v !== undefined && !same(k, v)) {
      throw new ApiError("invalid_request", `adapter.${k}: the job continues ${parent.modelId}, whose adapter has ${k}=${JSON.stringify(kept[k])}; leave ${k} out (only dropout may change)`, `adapter.${k}`);
    }
  }
  return { type: "lora", ...kept, dropout: asked.dropout ?? 0 };
}
