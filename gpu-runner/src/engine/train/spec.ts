// The training job contract (TrainJobSpec / TrainEvent / TrainResult) and the pure resolution of a
// spec into concrete settings: defaults filled in, every field checked with an error naming it.
import { z } from "zod";

export type TrainJobSpec = {
  /** Hugging Face folder: config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json chat template). */
  modelDir: string;
  /** JSONL: {"messages":[...]} | {"prompt","completion"} | {"text"}, or DPO pairs {"input","preferred_output","non_preferred_output"} */
  dataPath: string;
  validationPath?: string;
  /** The final PEFT adapter is written here (adapter_config.json + adapter_model.safetensors). */
  outDir: string;
  /** Checkpoints go to <checkpointDir>/<step>/ (default <outDir>/checkpoints). */
  checkpointDir?: string;
  method?: "lora";
  /** sft: next-token cross-entropy; dpo: preference pairs. Default: dpo for a file of pairs, else sft (a mismatch is an error). */
  objective?: "sft" | "dpo";
  /** DPO's β (default 0.1): how strongly the adapter is held near the base model. */
  beta?: number;
  rank?: number;
  alpha?: number;
  dropout?: number;
  targets?: string[] | "all-linear";
  useRslora?: boolean;
  epochs?: number;
  lr?: number;
  /** Rows per micro-batch; a step takes batchSize × gradAccum rows. */
  batchSize?: number;
  seqLen?: number;
  seed?: number;
  schedule?: "cosine" | "linear" | "constant";
  warmupRatio?: number;
  maxGradNorm?: number | null;
  gradAccum?: number;
  /** Steps; 0 = only at the end. */
  checkpointEvery?: number;
  /** A checkpoint folder written by an earlier run of the same spec. */
  resumeFrom?: string;
  /** A PEFT adapter folder to start from (continuing a fine-tuned model) instead of a new LoRA; same rank, targets and scale. */
  initAdapter?: string;
  /** Pack short examples into shared rows of up to seqLen tokens (attention crosses examples). Default false. */
  packing?: boolean;
  /** ORT intra-op threads (default 2). */
  threads?: number;
  /**
   * Let ORT's threads spin between the ops of a step (default true, see TrainerOptions.spin). A runner
   * that also serves inference turns it off, so decoding on the same cores is not starved.
   */
  spin?: boolean;
};

export type TrainEvent =
  /** `trainedTokens`: the billable tokens of the steps done so far (training rows plus validation passes). */
  | { type: "progress"; step: number; totalSteps: number; epoch: number; loss: number; lr: number; tokensPerS: number; etaS: number; trainedTokens: number }
  /** SFT reports the mean token accuracy; DPO the share of pairs whose chosen answer the adapter prefers more than the base model does. */
  | { type: "validation"; step: number; loss: number; tokenAccuracy?: number; rewardAccuracy?: number }
  | { type: "checkpoint"; step: number; dir: string; files: string[]; metrics: Record<string, number> }
  | { type: "log"; level: "info" | "warn"; message: string };

/** Thrown when `shouldStop` (or a worker's cancel) ends a run between steps. */
export class TrainingCancelled extends Error {
  constructor(readonly step: number) {
    super(`training cancelled after step ${step}`);
    this.name = "TrainingCancelled";
  }
}

/** DPO's β when the spec leaves it out. */
export const DEFAULT_BETA = 0.1;

export type TrainResult = { adapterDir: string; trainedTokens: number; steps: number; finalLoss: number; metrics: Record<string, number> };

const posInt = z.number().int().min(1);
export const trainSpecSchema = z.object({
  modelDir: z.string().min(1),
  dataPath: z.string().min(1),
  validationPath: z.string().min(1).optional(),
  outDir: z.string().min(1),
  checkpointDir: z.string().min(1).optional(),
  method: z.literal("lora", { error: 'only "lora" is supported' }).default("lora"),
  objective: z.enum(["sft", "dpo"]).optional(),
  // No default here: a beta given for a supervised file is an error (the loop applies DEFAULT_BETA for DPO).
  beta: z.number().positive().max(100).optional(),
  rank: posInt.default(8),
  alpha: z.number().positive().default(16),
  dropout: z.number().min(0).lt(1).default(0),
  targets: z.union([z.literal("all-linear"), z.array(z.string()).min(1)]).default("all-linear"),
  useRslora: z.boolean().default(false),
  epochs: posInt.default(3),
  lr: z.number().positive().default(2e-4),
  batchSize: posInt.default(8),
  seqLen: z.number().int().min(2).default(512),
  seed: z.number().int().min(0).default(0),
  schedule: z.enum(["cosine", "linear", "constant"]).default("cosine"),
  warmupRatio: z.number().min(0).max(1).default(0.03),
  maxGradNorm: z.number().positive().nullable().default(1),
  gradAccum: posInt.default(1),
  checkpointEvery: z.number().int().min(0).default(0),
  resumeFrom: z.string().min(1).optional(),
  initAdapter: z.string().min(1).optional(),
  packing: z.boolean().default(false),
  threads: posInt.default(2),
  spin: z.boolean().optional(),
});
export type ResolvedSpec = z.infer<typeof trainSpecSchema>;

/** Fills in the defaults and checks every field; errors read `train spec: <field>: <problem>`. */
export function resolveSpec(spec: TrainJobSpec): ResolvedSpec {
  const r = trainSpecSchema.safeParse(spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`train spec: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}
