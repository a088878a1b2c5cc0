// The control plane's tables (drizzle, SQLite dialect): D1 in Workers, a local libsql file on Node.
// Times are unix seconds; JSON columns hold zod-validated shapes defined beside the routes that write them.

import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const createdAt = () => integer("created_at").notNull();

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: createdAt(),
  /** Quotas for this tenant; null takes the deployment's setting (api/src/quotas/limits.ts). */
  maxActiveJobs: integer("max_active_jobs"),
  maxAdapters: integer("max_adapters"),
  /** Tokens (all kinds) a calendar month (UTC); 0 means unlimited. */
  monthlyTokens: integer("monthly_tokens"),
  /** API requests a minute; 0 means unlimited. */
  requestsPerMinute: integer("requests_per_minute"),
  /** The Stripe customer its usage is billed to (the Stripe meter-event export), or null. */
  stripeCustomerId: text("stripe_customer_id"),
  /** When an operator suspended it (its keys answer 403, its queued jobs wait); null while it is active. */
  suspendedAt: integer("suspended_at"),
});

/** Each tenant's request count in its current one-minute window (quotas/rate.ts): one row per tenant. */
export const rateWindows = sqliteTable("rate_windows", {
  tenantId: text("tenant_id").primaryKey(),
  /** Unix seconds at the start of the minute counted. */
  windowStart: integer("window_start").notNull(),
  count: integer("count").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull().references(() => tenants.id),
    name: text("name").notNull(),
    /** First characters of the secret, shown in lists so a user can tell keys apart. */
    prefix: text("prefix").notNull(),
    /** SHA-256 hex of the whole secret; the secret itself is never stored. */
    hash: text("hash").notNull(),
    createdAt: createdAt(),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
  },
  (t) => [uniqueIndex("api_keys_hash_idx").on(t.hash), index("api_keys_tenant_idx").on(t.tenantId)],
);

export const files = sqliteTable(
  "files",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull().references(() => tenants.id),
    filename: text("filename").notNull(),
    purpose: text("purpose").notNull(),
    /** chat | prompt_completion | text | preference: the JSONL shape every line has; csv for a job's results file. */
    format: text("format").notNull(),
    bytes: integer("bytes").notNull(),
    lines: integer("lines").notNull(),
    sha256: text("sha256").notNull(),
    blobKey: text("blob_key").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("files_tenant_idx").on(t.tenantId, t.id)],
);

export const baseModels = sqliteTable("base_models", {
  id: text("id").primaryKey(),
  /** Where the Hugging Face folder lives: a blob prefix (`models/<id>/`) or a local folder path. */
  source: text("source").notNull(),
  /** JSON: the normalized sizes from config.json that adapters are validated against. */
  config: text("config").notNull(),
  createdAt: createdAt(),
});

export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull().references(() => tenants.id),
    model: text("model").notNull().references(() => baseModels.id),
    trainingFile: text("training_file").notNull(),
    validationFile: text("validation_file"),
    suffix: text("suffix"),
    seed: integer("seed").notNull(),
    /** JSON: {type: "supervised", supervised: {hyperparameters}} or {type: "dpo", dpo: {hyperparameters}}, every "auto" resolved at creation. */
    method: text("method").notNull(),
    /** JSON: {type:"lora", r, alpha, dropout, target_modules}. */
    adapter: text("adapter").notNull(),
    /** JSON {model, adapter_id}: the fine-tuned model the job continues (its LoRA starts from that adapter), or null. */
    parent: text("parent"),
    /** The id of the results file (step metrics CSV) written when the job succeeded, or null. */
    resultFile: text("result_file"),
    status: text("status").notNull(),
    fineTunedModel: text("fine_tuned_model"),
    /** JSON {code, message} once failed. */
    error: text("error"),
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: integer("lease_expires_at"),
    /** The runner's idempotency key of the lease call that took the current lease (null when it sent none). */
    leaseKey: text("lease_key"),
    cancelRequested: integer("cancel_requested").notNull().default(0),
    /** JSON: the last heartbeat's {step, total_steps, epoch, loss, tokens_per_s, eta_s}. */
    progress: text("progress"),
    trainedTokens: integer("trained_tokens"),
    /** JSON {key: value} the tenant attached (OpenAI's job metadata), or null. */
    metadata: text("metadata"),
    createdAt: createdAt(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
  },
  (t) => [index("jobs_tenant_idx").on(t.tenantId, t.id), index("jobs_status_idx").on(t.status, t.createdAt)],
);

export const jobEvents = sqliteTable(
  "job_events",
  {
    id: text("id").primaryKey(),
    jobId: text("job_id").notNull().references(() => jobs.id),
    level: text("level").notNull(),
    /** message | metrics (OpenAI's event type; metrics events carry step/loss in data). */
    type: text("type").notNull().default("message"),
    message: text("message").notNull(),
    /** JSON metrics attached to the event (step, loss, …), or null. */
    data: text("data"),
    createdAt: createdAt(),
  },
  (t) => [index("job_events_job_idx").on(t.jobId, t.id)],
);

export const checkpoints = sqliteTable(
  "checkpoints",
  {
    id: text("id").primaryKey(),
    jobId: text("job_id").notNull().references(() => jobs.id),
    step: integer("step").notNull(),
    blobPrefix: text("blob_prefix").notNull(),
    /** JSON: {train_loss, valid_loss?, …} at that step. */
    metrics: text("metrics").notNull(),
    /** The format version its runner wrote it in (jobs/checkpoint-formats.ts); null when the runner did not say: format 1. */
    format: integer("format"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("checkpoints_job_step_idx").on(t.jobId, t.step)],
);

export const adapters = sqliteTable(
  "adapters",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull().references(() => tenants.id),
    /** The model name callers use: ft:<base>:<tenant>:<suffix>:<id>. */
    modelId: text("model_id").notNull(),
    baseModel: text("base_model").notNull().references(() => baseModels.id),
    method: text("method").notNull(),
    rank: integer("rank").notNull(),
    alpha: real("alpha").notNull(),
    targetModules: text("target_modules").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    sha256: text("sha256").notNull(),
    blobPrefix: text("blob_prefix").notNull(),
    jobId: text("job_id"),
    createdAt: createdAt(),
    /** Storage is billed up to this time (usage/storage.ts): created_at when inserted. */
    storageBilledUntil: integer("storage_billed_until"),
  },
  (t) => [
    uniqueIndex("adapters_model_idx").on(t.modelId),
    index("adapters_tenant_idx").on(t.tenantId, t.id),
    // The hourly storage run finds the adapters with days to bill without reading the others.
    index("adapters_storage_billed_idx").on(t.storageBilledUntil),
  ],
);

export const runners = sqliteTable(
  "runners",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    url: text("url"),
    /** The registered process (random per start; null for runners that predate it): tells a restart from a second process with the same name. */
    instance: text("instance"),
    /** JSON string[]: base model ids this runner serves. */
    models: text("models").notNull(),
    /** JSON string[]: adapter model ids currently held in its cache. */
    adapters: text("adapters").notNull().default("[]"),
    capacity: integer("capacity").notNull(),
    /** JSON number[]: the checkpoint formats it can resume (jobs/checkpoint-formats.ts); null when it declared none: format 1 only. */
    checkpointFormats: text("checkpoint_formats"),
    lastSeenAt: integer("last_seen_at").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("runners_name_idx").on(t.name)],
);

export const usageEvents = sqliteTable(
  "usage_events",
  {
    /** Commit order: the one database assigns it, so an export cursor never passes an event that commits late. */
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    /** One per billable fact (job id + kind, request id + kind): a retry inserts nothing. */
    idempotencyKey: text("idempotency_key").notNull(),
    tenantId: text("tenant_id").notNull().references(() => tenants.id),
    /** training_tokens | prompt_tokens | completion_tokens | storage_byte_hours */
    kind: text("kind").notNull(),
    model: text("model").notNull(),
    quantity: integer("quantity").notNull(),
    ref: text("ref").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("usage_idem_idx").on(t.idempotencyKey),
    index("usage_tenant_time_idx").on(t.tenantId, t.createdAt),
    // One tenant's events in commit order (the usage export filtered by tenant).
    index("usage_tenant_seq_idx").on(t.tenantId, t.seq),
  ],
);

/**
 * Tokens billed per tenant and calendar month (UTC, "YYYY-MM"), kept by a trigger on usage_events (migrations
 * 0005, 0006: token kinds only, not storage) in the same transaction as each event, so a monthly quota check reads one row instead of a month.
 */
export const usageMonthly = sqliteTable(
  "usage_monthly",
  {
    tenantId: text("tenant_id").notNull(),
    month: text("month").notNull(),
    quantity: integer("quantity").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.month] })],
);

/**
 * Prices per usage kind, for one base model ('' = every model without its own price): what GET /v1/usage
 * shows as cost (usage/prices.ts). Fine-tuned models are priced as their base model.
 */
export const prices = sqliteTable(
  "prices",
  {
    kind: text("kind").notNull(),
    model: text("model").notNull(),
    /** US dollars per million units (tokens, byte-hours). */
    usdPerMillion: real("usd_per_million").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.model] })],
);

/** Requests sent with an Idempotency-Key (completions, job creation): a retry gets the first attempt's outcome (lib/idempotency-keys.ts). */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    tenantId: text("tenant_id").notNull().references(() => tenants.id),
    key: text("key").notNull(),
    /** SHA-256 of the normalised request: the same key with another request is refused. */
    requestHash: text("request_hash").notNull(),
    /** running | done | incomplete (failed or cut short: the next retry runs it again) */
    state: text("state").notNull(),
    /** The attempt running now, or the last one. */
    requestId: text("request_id").notNull(),
    /** The finished attempt's outcome as JSON (a completion's answer, a created job's id); null until done. */
    result: text("result"),
    /** Completions: tokens billed under this key so far, over all attempts (each kind at most its largest attempt). */
    billedPromptTokens: integer("billed_prompt_tokens").notNull(),
    billedCompletionTokens: integer("billed_completion_tokens").notNull(),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] }), index("idempotency_tenant_created_idx").on(t.tenantId, t.createdAt)],
);

export const schema = { tenants, apiKeys, files, baseModels, jobs, jobEvents, checkpoints, adapters, runners, usageEvents, idempotencyKeys };
