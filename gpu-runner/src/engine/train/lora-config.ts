// The LoRA settings of a training job in PEFT's terms (r, lora_alpha, lora_dropout, target_modules
// incl. "all-linear", use_rslora), validated with zod and turned into what the trainer needs.
import { z } from "zod";
import type { Projection } from "../model/names.js";
import { loraScale, projectionTargets } from "../lora/targets.js";

export const loraTrainConfigSchema = z.object({
  r: z.number().int().min(1, "r must be ≥ 1"),
  lora_alpha: z.number().positive("lora_alpha must be > 0"),
  lora_dropout: z.number().min(0).lt(1, "lora_dropout must be < 1").default(0),
  target_modules: z.union([z.literal("all-linear"), z.array(z.string()).min(1, "target_modules must name at least one module")]).default("all-linear"),
  use_rslora: z.boolean().default(false),
});

export type LoraTrainSettings = { rank: number; alpha: number; scale: number; dropout: number; targets: Projection[] };

/**
 * Validates LoRA training settings. "all-linear" is PEFT's shorthand for every linear layer but the
 * output head: here the seven projections. The scale is alpha/r, or alpha/√r with use_rslora.
 */
export function resolveLoraConfig(raw: unknown, where = "lora"): LoraTrainSettings {
  const r = loraTrainConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${where}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const c = r.data;
  return { rank: c.r, alpha: c.lora_alpha, scale: loraScale(c.r, c.lora_alpha, c.use_rslora), dropout: c.lora_dropout, targets: projectionTargets(c.target_modules, where) };
}
