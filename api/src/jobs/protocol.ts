// zod shapes of the runner protocol's messages (docs/runner-protocol.md): what runners send and what the
// API stores from them. The routes in internal_*.ts use these; the runner can import them too.
import { z } from "@hono/zod-openapi";
import { MAX_JSON_DEPTH, TOO_DEEP, jsonDepth } from "../lib/json-depth.js";

export const runnerId = z.string().min(1).max(128);
/** A runner process's random id (runners from before it send none). */
const runnerInstance = z.string().min(8).max(64).optional();

export const progressInput = z
  .object({
    step: z.number().int().min(0),
    total_steps: z.number().int().min(1),
    epoch: z.number().min(0),
    loss: z.number().nullable(),
    lr: z.number().min(0).optional(),
    tokens_per_s: z.number().min(0).optional(),
    eta_s: z.number().min(0).optional(),
    trained_tokens: z.number().int().min(0).optional().openapi({ description: "billable tokens of the steps done so far; a job cancelled now is billed for these" }),
  })
  .openapi("TrainingProgressInput");

/** Progress as stored on the job and shown to tenants: the last heartbeat's report and when it came. */
export const progressSchema = progressInput.extend({ updated_at: z.number().int() }).openapi("TrainingProgress");
export type Progress = z.infer<typeof progressSchema>;

/** A checkpoint format version (jobs/checkpoint-formats.ts): the `version` of the trainer_state.json a runner writes. */
const checkpointFormat = z.number().int().min(1).max(1_000_000);

export const registerRunnerBody = z.object({
  name: z.string().trim().min(1).max(128).openapi({ description: "stable per runner; registering the same name again keeps the id" }),
  url: z.string().url().max(2048).regex(/^https?:\/\//i, "must be an http:// or https:// URL").optional().openapi({ description: "where the runner serves inference" }),
  instance: runnerInstance.openapi({ description: "random per process start, also answered by its /healthz: a new instance under a live runner's name is refused (409 conflict) while the old one answers at its URL, and otherwise takes the runner over (the old one's leases ended when the API could see it is gone)" }),
  models: z.array(z.string().min(1).max(64)).max(64).openapi({ description: "base model ids this runner can train and serve" }),
  capacity: z.number().int().min(1).max(4096).openapi({ description: "concurrent sequences it can serve" }),
  checkpoint_formats: z
    .array(checkpointFormat)
    .min(1)
    .max(16)
    .optional()
    .openapi({ description: "checkpoint format versions it can resume: a job whose latest checkpoint is in another format is not leased to it. Runners before it send none, and resume format 1 only" }),
});

export const runnerHeartbeatBody = z.object({
  instance: runnerInstance.openapi({ description: "the process's instance, as registered: 409 conflict once another process has registered the name" }),
  adapters: z.array(z.string().max(256)).max(10_000).optional().openapi({ description: "adapter model ids now in its cache" }),
  load: z.number().min(0).optional().openapi({ description: "accepted and ignored for now; routing by load is a later feature" }),
});

export const runnerStopBody = z.object({
  instance: runnerInstance.openapi({ description: "the process's instance, as registered: a later process with the name is not marked stopped" }),
});

export const leaseBody = z.object({
  runner_id: runnerId,
  instance: runnerInstance.openapi({ description: "as on the runner heartbeat" }),
  idempotency_key: z.string().min(8).max(64).optional().openapi({ description: "random per lease the runner asks for, the same on every retry of that call: a retry whose first answer was lost gets the job that call leased, not another (runners before it send none)" }),
});

/**
 * Who reports on a leased job: the runner and the attempt its lease answer gave (the lease's fencing token).
 * With `attempt`, a report from an earlier lease of the same runner (a stale copy of the job, after a pause
 * and resume or a re-lease) is refused with 409 lease_lost.
 */
export const holderFields = {
  runner_id: runnerId,
  attempt: z.number().int().min(1).optional().openapi({ description: "lease.attempt from the lease answer; send it so that a stale copy of the job is told to stop" }),
};
export type Holder = { runner_id: string; attempt?: number };

export const outputUploadsBody = z.object(holderFields);

export const jobHeartbeatBody = z.object({ ...holderFields, progress: progressInput });

export const eventLevel = z.enum(["info", "warn", "error"]);
export const appendEventsBody = z.object({
  ...holderFields,
  events: z
    // data is stored as JSON text: nested deeper, JSON.stringify would overflow the stack.
    .array(z.object({ level: eventLevel.default("info"), message: z.string().min(1).max(4000), data: z.record(z.string(), z.unknown()).refine((d) => jsonDepth(d) <= MAX_JSON_DEPTH, TOO_DEEP).optional() }))
    .min(1)
    .max(100),
});

/** File names inside one checkpoint or output folder: plain names, no paths. */
export const objectName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "use a plain file name (letters, digits, '.', '_', '-')");

export const checkpointUploadsBody = z.object({
  ...holderFields,
  step: z.number().int().min(0),
  files: z.array(objectName).min(1).max(32),
});

export const metricsSchema = z.record(z.string(), z.number()).openapi("Metrics");

export const recordCheckpointBody = z.object({
  ...holderFields,
  step: z.number().int().min(0),
  metrics: metricsSchema.default({}),
  format: checkpointFormat.optional().openapi({ description: "the format version the checkpoint was written in; runners before it send none, read as 1" }),
});

export const completeBody = z.object({
  ...holderFields,
  trained_tokens: z.number().int().min(0).openapi({ description: "tokens processed over all epochs (the billed quantity)" }),
  metrics: metricsSchema.optional(),
});

export const failBody = z.object({
  ...holderFields,
  error: z.object({ code: z.string().min(1).max(64), message: z.string().min(1).max(4000) }),
  retryable: z.boolean(),
});

/** Names of the two files a LoRA run must upload before complete (Hugging Face PEFT format). */
export const adapterFiles = ["adapter_config.json", "adapter_model.safetensors"] as const;
