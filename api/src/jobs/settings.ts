// Job settings: the request shapes of `method` and `adapter`, and the pure rules that turn "auto" and
// defaults into the concrete numbers stored with the job (so a runner never has to guess them).
import { z } from "@hono/zod-openapi";
import { MAX_LORA_ALPHA, linearModules, moduleShapes, type LinearModule, type ModelSummary } from "../lib/model-shapes.js";

const auto = z.literal("auto");

/** Tokens per training sequence: the default, and the most a job may ask for (memory and time grow with it). */
export const AUTO_SEQ_LEN = 512;
export const MAX_SEQ_LEN = 8192;

export const hyperparametersInput = z
  .object({
    n_epochs: z.union([auto, z.number().int().min(1).max(50)], { error: 'n_epochs must be "auto" or an integer 1–50' }).default("auto"),
    batch_size: z.union([auto, z.number().int().min(1).max(256)], { error: 'batch_size must be "auto" or an integer 1–256' }).default("auto"),
    learning_rate_multiplier: z.union([auto, z.number().positive().max(10)], { error: 'learning_rate_multiplier must be "auto" or a number in (0, 10]' }).default("auto"),
    /** tuneserve: tokens per training sequence; longer examples are cut (a job event says how many). */
    seq_len: z
      .union([auto, z.number().int().min(16).max(MAX_SEQ_LEN)], { error: `seq_len must be "auto" (${AUTO_SEQ_LEN}) or an integer 16–${MAX_SEQ_LEN}, at most the model's max_position_embeddings` })
      .default("auto")
      .openapi({ description: `tuneserve: tokens per training sequence, "auto" = ${AUTO_SEQ_LEN}; longer examples are cut` }),
  })
  .strict();

const autoHyperparameters = { n_epochs: "auto", batch_size: "auto", learning_rate_multiplier: "auto", seq_len: "auto" } as const;

/** DPO's β: "auto" is 0.1; higher holds the adapter closer to the reference (the model training starts from). */
export const AUTO_BETA = 0.1;
export const dpoHyperparametersInput = hyperparametersInput
  .extend({
    beta: z
      .union([auto, z.number().gt(0).max(2)], { error: 'beta must be "auto" (0.1) or a number in (0, 2]' })
      .default("auto")
      .openapi({ description: "DPO: how strongly the adapter is held near the reference (the base model, or the fine-tuned model the job continues); \"auto\" = 0.1" }),
  })
  .strict();

export const methodInput = z
  .discriminatedUnion("type", [
    z
      .object({
        type: z.literal("supervised"),
        supervised: z.object({ hyperparameters: hyperparametersInput.default(autoHyperparameters) }).strict().default({ hyperparameters: autoHyperparameters }),
      })
      .strict(),
    z
      .object({
        type: z.literal("dpo").openapi({ description: "Direct Preference Optimization on a file of preference pairs; the reference is the model training starts from" }),
        dpo: z.object({ hyperparameters: dpoHyperparametersInput.default({ ...autoHyperparameters, beta: "auto" }) }).strict().default({ hyperparameters: { ...autoHyperparameters, beta: "auto" } }),
      })
      .strict(),
  ], { error: 'type must be "supervised" or "dpo" (reinforcement fine-tuning is not offered)' });

// No defaults in the schema: a job that continues a fine-tuned model takes its LoRA shape from that model,
// so what the request left out must stay visible (adapterWithDefaults fills it in for a new adapter).
export const adapterInput = z
  .object({
    type: z.literal("lora").optional(),
    r: z.number().int().min(1).optional().openapi({ default: 8 }),
    alpha: z.number().positive().max(MAX_LORA_ALPHA).optional().openapi({ default: 16 }),
    dropout: z.number().min(0).lt(1).optional().openapi({ default: 0 }),
    target_modules: z
      .union([z.literal("all-linear"), z.array(z.enum(linearModules)).min(1)], { error: `use "all-linear" or a non-empty list of ${linearModules.join(", ")}` })
      .optional()
      .openapi({ default: "all-linear" }),
    /** rsLoRA: scale the update by alpha/√r instead of alpha/r (stabler at high ranks). */
    use_rslora: z.boolean().optional().openapi({ default: false }),
  })
  .strict();

/** A new adapter's settings: what the request gave, and the defaults for the rest. */
export function adapterWithDefaults(a: AdapterInput) {
  return { type: "lora" as const, r: a.r ?? 8, alpha: a.alpha ?? 16, dropout: a.dropout ?? 0, target_modules: a.target_modules ?? ("all-linear" as const), use_rslora: a.use_rslora ?? false };
}
export type AdapterSettings = ReturnType<typeof adapterWithDefaults>;

export const hyperparametersSchema = z
  .object({
    n_epochs: z.number().int(),
    batch_size: z.number().int(),
    learning_rate_multiplier: z.number(),
    learning_rate: z.number().openapi({ description: "tuneserve: the peak learning rate, 2e-4 × learning_rate_multiplier" }),
    seq_len: z.number().int().optional().openapi({ description: `tuneserve: tokens per training sequence (jobs from before it was set train at ${AUTO_SEQ_LEN})` }),
  })
  .openapi("FineTuningHyperparameters");
export const dpoHyperparametersSchema = hyperparametersSchema.extend({ beta: z.number() }).openapi("FineTuningDpoHyperparameters");
export const methodSchema = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("supervised"), supervised: z.object({ hyperparameters: hyperparametersSchema }) }),
    z.object({ type: z.literal("dpo"), dpo: z.object({ hyperparameters: dpoHyperparametersSchema }) }),
  ])
  .openapi("FineTuningMethod");
export const adapterSchema = z
  .object({
    type: z.literal("lora"),
    r: z.number().int(),
    alpha: z.number(),
    dropout: z.number(),
    target_modules: z.array(z.enum(linearModules)),
    use_rslora: z.boolean().openapi({ description: "scale alpha/√r (rsLoRA) instead of alpha/r" }),
  })
  .openapi("FineTuningAdapter");

export type HyperparametersInput = z.infer<typeof hyperparametersInput>;
export type Hyperparameters = z.infer<typeof hyperparametersSchema>;
export type JobMethod = z.infer<typeof methodSchema>;
export type DpoHyperparametersInput = z.infer<typeof dpoHyperparametersInput>;

/** The resolved hyperparameters of either method. */
export const methodHyperparameters = (m: JobMethod): Hyperparameters & { beta?: number } => (m.type === "dpo" ? m.dpo.hyperparameters : m.supervised.hyperparameters);
export type AdapterInput = z.infer<typeof adapterInput>;
export type JobAdapter = z.infer<typeof adapterSchema>;

/** The learning rate that multiplier 1 means: the usual LoRA learning rate. */
export const baseLearningRate = 2e-4;
export const autoEpochs = 3;

/**
 * The "auto" rules: 3 epochs; a batch size that grows with the dataset (1 below 64 examples, 2 below 256,
 * 4 below 1024, else 8) so small datasets still get enough optimizer steps; multiplier 1.
 */
export function resolveHyperparameters(h: z.input<typeof hyperparametersInput>, trainingExamples: number): Hyperparameters {
  const n = Math.max(0, trainingExamples);
  const batch = n < 64 ? 1 : n < 256 ? 2 : n < 1024 ? 4 : 8;
  const mult = h.learning_rate_multiplier === "auto" || h.learning_rate_multiplier === undefined ? 1 : h.learning_rate_multiplier;
  return {
    n_epochs: h.n_epochs === "auto" || h.n_epochs === undefined ? autoEpochs : h.n_epochs,
    batch_size: h.batch_size === "auto" || h.batch_size === undefined ? batch : h.batch_size,
    learning_rate_multiplier: mult,
    learning_rate: baseLearningRate * mult,
    seq_len: h.seq_len === "auto" || h.seq_len === undefined ? AUTO_SEQ_LEN : h.seq_len,
  };
}

/** Checks the adapter options against the base model; returns them resolved, or an error naming the field. */
export function resolveAdapter(a: AdapterSettings, model: ModelSummary, maxRank: number): { ok: true; adapter: JobAdapter } | { ok: false; param: string; message: string } {
  if (a.r > maxRank) return { ok: false, param: "adapter.r", message: `adapter.r=${a.r} exceeds the largest rank this deployment accepts (${maxRank}); use r ≤ ${maxRank}` };
  const targets: LinearModule[] = a.target_modules === "all-linear" ? [...linearModules] : [...new Set(a.target_modules)];
  const shapes = moduleShapes(model);
  for (const m of targets) {
    const smallest = Math.min(...shapes[m]);
    if (a.r > smallest) {
      return { ok: false, param: "adapter.r", message: `adapter.r=${a.r} is larger than ${m}'s smallest dimension (${smallest}) in this model; use r ≤ ${smallest}` };
    }
  }
  return { ok: true, adapter: { type: "lora", r: a.r, alpha: a.alpha, dropout: a.dropout, target_modules: targets, use_rslora: a.use_rslora } };
}

