// Settings of the API, parsed once from the environment (Worker bindings or process.env) with zod.
import { z } from "zod";
import { issueLine } from "./lib/zod-issue.js";

const int = (def: number) => z.coerce.number().int().positive().default(def);

const settings = z.object({
  TUNESERVE_ADMIN_TOKEN: z.string().min(16, "TUNESERVE_ADMIN_TOKEN must be at least 16 characters").optional(),
  TUNESERVE_RUNNER_TOKEN: z.string().min(16, "TUNESERVE_RUNNER_TOKEN must be at least 16 characters").optional(),
  /** Largest accepted JSON request body. */
  TUNESERVE_MAX_BODY_BYTES: int(1024 * 1024),
  /** Largest accepted training file and its longest line. */
  TUNESERVE_MAX_FILE_BYTES: int(512 * 1024 * 1024),
  TUNESERVE_MAX_LINE_BYTES: int(1024 * 1024),
  /** Largest uploaded adapter (both files together) and the highest LoRA rank accepted. */
  TUNESERVE_MAX_ADAPTER_BYTES: int(256 * 1024 * 1024),
  /**
   * Largest object a presigned /blobs/ PUT link takes (local and R2 stores: runners' checkpoint and adapter files).
   * A checkpoint's optimizer.safetensors holds two float32 moments per adapter weight, twice the adapter's size:
   * 1 GiB leaves room for one of TUNESERVE_MAX_ADAPTER_BYTES (256 MiB). One under twice TUNESERVE_MAX_ADAPTER_BYTES is refused (apiConfigSchema).
   */
  TUNESERVE_MAX_BLOB_BYTES: int(1024 * 1024 * 1024),
  /** The largest LoRA rank a job or upload may have: runners serve up to their TUNESERVE_RUNNER_LORA_RANK (16 by default). */
  TUNESERVE_MAX_LORA_RANK: int(16),
  /** How long a runner's lease on a job lasts without a heartbeat. */
  TUNESERVE_LEASE_SECONDS: int(60),
  /** How many times a job is leased before a retryable failure becomes final. */
  TUNESERVE_MAX_ATTEMPTS: int(3),
  /** Validity of presigned URLs handed to runners and clients. */
  TUNESERVE_PRESIGN_SECONDS: int(3600),
  /** Default quotas of a tenant (the admin API sets its own): jobs queued, running or paused at once, adapters kept, tokens a month (0: unlimited). */
  TUNESERVE_MAX_ACTIVE_JOBS: int(10),
  TUNESERVE_MAX_ADAPTERS: int(1000),
  TUNESERVE_MONTHLY_TOKENS: z.coerce.number().int().min(0).default(0),
  /** Training files (purpose fine-tune) a tenant may keep, so that one API key cannot fill the blob store with uploads. */
  TUNESERVE_MAX_FILES: int(1000),
  /**
   * Bytes of training files a tenant may keep (0: unlimited). Without it a key could store TUNESERVE_MAX_FILES
   * files of TUNESERVE_MAX_FILE_BYTES each (500 GiB by default); 10 GiB is twenty of the largest files.
   */
  TUNESERVE_MAX_FILE_BYTES_PER_TENANT: z.coerce.number().int().min(0).default(10 * 1024 * 1024 * 1024),
  /** Default API requests a tenant may send a minute (0: unlimited). */
  TUNESERVE_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).default(0),
});

export const apiConfigSchema = settings
  .refine((c) => c.TUNESERVE_RUNNER_TOKEN === undefined || c.TUNESERVE_RUNNER_TOKEN !== c.TUNESERVE_ADMIN_TOKEN, {
    path: ["TUNESERVE_RUNNER_TOKEN"],
    message: "must differ from TUNESERVE_ADMIN_TOKEN (a runner token is kept on every runner machine; one equal to the admin token would open /admin to each)",
  })
  .superRefine((c, ctx) => {
    // A runner PUTs a checkpoint's optimizer.safetensors through a /blobs/ link: twice the adapter's size. Refused
    // here, at startup, rather than as jobs failing at their first checkpoint.
    const need = 2 * c.TUNESERVE_MAX_ADAPTER_BYTES;
    if (c.TUNESERVE_MAX_BLOB_BYTES >= need) return;
    ctx.addIssue({
      code: "custom",
      path: ["TUNESERVE_MAX_BLOB_BYTES"],
      message: `${c.TUNESERVE_MAX_BLOB_BYTES} is under twice TUNESERVE_MAX_ADAPTER_BYTES (${c.TUNESERVE_MAX_ADAPTER_BYTES}); a checkpoint's optimizer.safetensors holds two float32 moments per adapter weight, so runners could not store it: set TUNESERVE_MAX_BLOB_BYTES to at least ${need} or lower TUNESERVE_MAX_ADAPTER_BYTES`,
    });
  });

export type ApiConfig = z.infer<typeof apiConfigSchema>;

/** Parses settings, naming the offending variable in the error. */
export function parseApiConfig(env: Record<string, unknown>): ApiConfig {
  const r = apiConfigSchema.safeParse(env);
  if (!r.success) {
    throw new Error(`invalid setting ${issueLine(r.error.issues[0], "configuration")}`);
  }
  return r.data;
}
