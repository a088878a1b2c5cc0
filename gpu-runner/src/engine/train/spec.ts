// The training job contract (TrainJobSpec / TrainEvent / TrainResult) and the pure resolution of a
// spec into concrete settings: defaults filled in, every field checked with an error naming it.
import { z } from "zod";

export type TrainEvent =
  /** `trainedTokens`: the billable tokens of the steps done so far (training rows plus validation passes). */
  | { type: "progress"; step: number; totalSteps: number; epoch: number; loss: number; lr: number; tokensPerS: number; etaS: number; trainedTokens: number }
  /** SFT reports the mean token accuracy; DPO the share of pairs whose chosen answer the adapter prefers more than the base model does. */
  | { type: "validation"; step: number; loss: number; tokenAccuracy?: number; rewardAccuracy?: number }
  /** `version`: the trainer_state.json version it was written in (checkpoint.ts), the runner protocol's checkpoint format. */
  | { type: "checkpoint"; step: number; dir: string; files: string[]; version: number; metrics: Record<string, number> }
  | { type: "log"; level: "info" | "warn"; message: string };

/** Thrown when `shouldStop` (or a worker's cancel) ends a run between steps. */
export class TrainingCancelled extends Error {
  constructor(readonly step: number) {
    super(`training cancelled after step ${step}`);
    this.name = "TrainingCancelled";
  }
}

/**
 * Thrown when `shouldSuspend` (or a worker's suspend) ends a run between steps. `checkpointed`: whether the
 * run wrote a checkpoint at `step` for this (false when its last checkpoint, or the one it resumed from, is
 * already at that step, or it trained no step).
 */
export class TrainingSuspended extends Error {
  constructor(
    readonly step: number,
    readonly checkpointed: boolean,
  ) {
    super(`training suspended after step ${step}${checkpointed ? ", checkpoint written" : ""}`);
    this.name = "TrainingSuspended";
  }
}

/**
 * Thrown when a step's loss, gradient norm or updated LoRA weights are not finite: the run stops before it
 * reports, checkpoints or exports that step, so no broken adapter is written. `code` reaches the job's error.
 */
export class TrainingDiverged extends Error {
  readonly code = "training_diverged";
  constructor(readonly step: number, message: string) {
    super(message);
    this.name = "TrainingDiverged";
  }
}

/**
 * Thrown when a run refuses the checkpoint it was given to resume from: written with other settings or data,
 * or with another tokenization of the data. Every attempt would refuse it again; `code` reaches the job's error.
 */
export class CheckpointMismatch extends Error {
  readonly code = "checkpoint_mismatch";
  constructor(message: string) {
    super(message);
    this.name = "CheckpointMismatch";
  }
}

/** DPO's β when the spec leaves it out. */
export const DEFAULT_BETA = 0.1;

export type TrainResult = { adapterDir: string; trainedTokens: number; steps: number; finalLoss: number; metrics: Record<string, number> };

const posInt = z.number().int().min(1);
/** The training job contract: what a caller sets (TrainJobSpec, defaults optional) and what the loop reads (ResolvedSpec). */
export const trainSpecSchema = z.object({
  /** Hugging Face folder: config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json chat template). */
  modelDir: z.string().min(1),
  /** The adapter's base_model_name_or_path (default: modelDir's folder name; a runner's cached copy sits in a folder named by its revision). */
  baseModelName: z.string().min(1).optional(),
  /**
   * The revision of the base model's files, as the API names it (a runner's blob-store copy): recorded in the
   * checkpoints beside the weights' digest, so that a resume refused for other weights names both revisions.
   */
  baseRevision: z.string().min(1).optional(),
  /** The sha256 of modelDir's weights (weightsDigest), when the caller has it already; computed otherwise. */
  baseWeightsSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** JSONL: {"messages":[...]} | {"prompt","completion"} | {"text"}, or DPO pairs {"input","preferred_output","non_preferred_output"} */
  dataPath: z.string().min(1),
  validationPath: z.string().min(1).optional(),
  /**
   * How messages name the training file, the validation file and the sequence length, as the caller's user knows
   * them (default: the paths as given, and seqLen). A runner's messages become a job's events and error: it names
   * the API's file ids and the job's seq_len; the CLI names its --data/--validation paths and --seq-len.
   */
  dataName: z.string().min(1).optional(),
  validationName: z.string().min(1).optional(),
  seqLenName: z.string().min(1).default("seqLen"),
  /** The final PEFT adapter is written here (adapter_config.json + adapter_model.safetensors). */
  outDir: z.string().min(1),
  /** Checkpoints go to <checkpointDir>/<step>/ (default <outDir>/checkpoints). */
  checkpointDir: z.string().min(1).optional(),
  method: z.literal("lora", { error: 'only "lora" is supported' }).default("lora"),
  /** sft: next-token cross-entropy; dpo: preference pairs. Default: dpo for a file of pairs, else sft (a mismatch is an error). */
  objective: z.enum(["sft", "dpo"]).optional(),
  /** DPO's β (DEFAULT_BETA when left out): how strongly the adapter is held near the reference. No default
   * here: a beta given for a supervised file is an error. */
  beta: z.number().positive().max(100).optional(),
  rank: posInt.default(8),
  alpha: z.number().positive().default(16),
  dropout: z.number().min(0).lt(1).default(0),
  targets: z.union([z.literal("all-linear"), z.array(z.string()).min(1)]).default("all-linear"),
  useRslora: z.boolean().default(false),
  epochs: posInt.default(3),
  lr: z.number().positive().default(2e-4),
  /** Rows per micro-batch; a step takes batchSize × gradAccum rows. */
  batchSize: posInt.default(8),
  seqLen: z.number().int().min(2).default(512),
  seed: z.number().int().min(0).default(0),
  schedule: z.enum(["cosine", "linear", "constant"]).default("cosine"),
  warmupRatio: z.number().min(0).max(1).default(0.03),
  maxGradNorm: z.number().positive().nullable().default(1),
  gradAccum: posInt.default(1),
  /** Steps between checkpoints; 0 = only at the end. */
  checkpointEvery: z.number().int().min(0).default(0),
  /** A checkpoint folder written by an earlier run of the same spec. */
  resumeFrom: z.string().min(1).optional(),
  /** A PEFT adapter folder to start from (continuing a fine-tuned model) instead of a new LoRA; same rank, targets and scale. */
  initAdapter: z.string().min(1).optional(),
  /** Pack short examples into shared rows of up to seqLen tokens (attention crosses examples). */
  packing: z.boolean().default(false),
  /** ORT intra-op threads. */
  threads: posInt.default(2),
  /**
   * Let ORT's threads spin between the ops of a step (default true, see TrainerOptions.spin). A runner
   * that also serves inference turns it off, so decoding on the same cores is not starved.
   */
  spin: z.boolean().optional(),
});
export type TrainJobSpec = z.input<typeof trainSpecSchema>;
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
