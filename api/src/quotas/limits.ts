// Per-tenant quotas (ARCHITECTURE.md §7): fine-tuning jobs queued, running or paused at once, adapters kept, and
// tokens a calendar month (the requests-a-minute rate limit is in rate.ts). Each is the deployment's setting
// unless the admin API set one for the tenant; training files kept (TUNESERVE_MAX_FILES) and their bytes
// (TUNESERVE_MAX_FILE_BYTES_PER_TENANT) are one setting each for all.
// They are checked before the work that would pass them, so requests already running may go a little over (a
// month's last completions, creations racing each other); the next request is refused.
import { z } from "@hono/zod-openapi";
import { and, count, eq, inArray, sql } from "drizzle-orm";
import type { ApiConfig } from "../config.js";
import { adapters, files, jobs, usageMonthly } from "../db/schema.js";
import type { Deps, TenantAuth } from "../deps.js";
import { ApiError } from "../errors.js";
import { sourcesOf } from "../jobs/state.js";

/** What an admin stored for one tenant; null takes the deployment's setting. */
export interface QuotaOverrides {
  maxActiveJobs: number | null;
  maxAdapters: number | null;
  monthlyTokens: number | null;
  requestsPerMinute: number | null;
}

/** The limits in force for a tenant, as the admin API's tenant and GET /v1/usage show them. */
export const limitsSchema = z
  .object({
    max_active_jobs: z.number().int().openapi({ description: "fine-tuning jobs queued, running or paused at once" }),
    max_adapters: z.number().int().openapi({ description: "adapters kept (uploaded or fine-tuned), jobs in progress included" }),
    monthly_tokens: z.number().int().openapi({ description: "billed tokens a calendar month (UTC); 0: unlimited" }),
    requests_per_minute: z.number().int().openapi({ description: "API requests a minute, all keys together; 0: unlimited" }),
  })
  .openapi("TenantLimits", { description: "the quotas in force: the tenant's own where set, else the deployment's" });

export type Limits = z.infer<typeof limitsSchema>;

export function limitsOf(o: QuotaOverrides, config: ApiConfig): Limits {
  return {
    max_active_jobs: o.maxActiveJobs ?? config.TUNESERVE_MAX_ACTIVE_JOBS,
    max_adapters: o.maxAdapters ?? config.TUNESERVE_MAX_ADAPTERS,
    monthly_tokens: o.monthlyTokens ?? config.TUNESERVE_MONTHLY_TOKENS,
    requests_per_minute: o.requestsPerMinute ?? config.TUNESERVE_REQUESTS_PER_MINUTE,
  };
}

/** Jobs that hold a slot: not yet ended (they will make an adapter, so they count against max_adapters too). */
const activeStatuses = sourcesOf("cancelled");

async function activeJobs(deps: Deps, tenantId: string): Promise<number> {
  const [row] = await deps.db.select({ n: count() }).from(jobs).where(and(eq(jobs.tenantId, tenantId), inArray(jobs.status, activeStatuses)));
  return row?.n ?? 0;
}

async function keptAdapters(deps: Deps, tenantId: string): Promise<number> {
  const [row] = await deps.db.select({ n: count() }).from(adapters).where(eq(adapters.tenantId, tenantId));
  return row?.n ?? 0;
}

/** The calendar month (UTC) of `now`: its key as usage_monthly writes it ("2026-11"), and when the next one begins. */
export function monthOf(now: number): { key: string; end: number } {
  const d = new Date(now * 1000);
  const key = `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
  return { key, end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000 };
}

/** Tokens the tenant has been billed in the month (UTC) of `now`. */
export async function tokensThisMonth(deps: Deps, tenantId: string, now: number): Promise<number> {
  const [row] = await deps.db.select({ used: usageMonthly.quantity }).from(usageMonthly).where(and(eq(usageMonthly.tenantId, tenantId), eq(usageMonthly.month, monthOf(now).key)));
  return row?.used ?? 0;
}

/** Refuses work that bills tokens once the tenant's monthly tokens are used up, until the month turns. */
export async function assertTokensLeft(deps: Deps, tenant: TenantAuth): Promise<void> {
  const limit = limitsOf(tenant.quotas, deps.config).monthly_tokens;
  if (limit === 0) return;
  const now = deps.now();
  const used = await tokensThisMonth(deps, tenant.tenantId, now);
  if (used < limit) return;
  const wait = Math.max(1, monthOf(now).end - now);
  throw new ApiError("quota_exceeded", `this tenant has used ${used} of its ${limit} tokens this month (UTC); the quota resets in ${wait} s, or ask the operator to raise it`, null, { "Retry-After": String(wait) });
}

/** Refuses a new fine-tuning job past the tenant's active-job, adapter or token quota. */
export async function assertCanStartJob(deps: Deps, tenant: TenantAuth): Promise<void> {
  const limits = limitsOf(tenant.quotas, deps.config);
  if (limits.max_active_jobs === 0) throw new ApiError("quota_exceeded", "this tenant may not run fine-tuning jobs (its max_active_jobs is 0); ask the operator");
  const active = await activeJobs(deps, tenant.tenantId);
  if (active >= limits.max_active_jobs) throw tooManyJobs(active);
  await assertRoomWith(deps, tenant, active);
  await assertTokensLeft(deps, tenant);
}

/**
 * The job quotas re-checked once job `jobId` is written, counting only the active jobs written before it or
 * it (SQLite's rowid grows with each insert): of creations racing past a limit, each one that sees the
 * others ahead of it withdraws, so the limit holds. The error to answer with, or null when it fits.
 */
export async function jobQuotaOverrun(deps: Deps, tenant: TenantAuth, jobId: string): Promise<ApiError | null> {
  const limits = limitsOf(tenant.quotas, deps.config);
  const ahead = sql`rowid <= (select rowid from ${jobs} where ${jobs.id} = ${jobId})`;
  const [row] = await deps.db.select({ n: count() }).from(jobs).where(and(eq(jobs.tenantId, tenant.tenantId), inArray(jobs.status, activeStatuses), ahead));
  const active = row?.n ?? 0;
  if (active > limits.max_active_jobs) return tooManyJobs(limits.max_active_jobs);
  const taken = (await keptAdapters(deps, tenant.tenantId)) + active;
  return taken > limits.max_adapters ? tooManyAdapters(limits.max_adapters, limits.max_adapters) : null;
}

/**
 * max_adapters re-checked once adapter `adapterId` is written, counting the adapters written before it or it,
 * and the active jobs: of uploads racing past the limit, those written after it was reached withdraw.
 */
export async function adapterQuotaOverrun(deps: Deps, tenant: TenantAuth, adapterId: string): Promise<ApiError | null> {
  const limit = limitsOf(tenant.quotas, deps.config).max_adapters;
  const ahead = sql`rowid <= (select rowid from ${adapters} where ${adapters.id} = ${adapterId})`;
  const [row] = await deps.db.select({ n: count() }).from(adapters).where(and(eq(adapters.tenantId, tenant.tenantId), ahead));
  const taken = (row?.n ?? 0) + (await activeJobs(deps, tenant.tenantId));
  return taken > limit ? tooManyAdapters(limit, limit) : null;
}

/** Refuses a new adapter upload once kept adapters plus active jobs (adapters to be) reach the limit. */
export async function assertRoomForAdapter(deps: Deps, tenant: TenantAuth): Promise<void> {
  await assertRoomWith(deps, tenant, await activeJobs(deps, tenant.tenantId));
}

async function assertRoomWith(deps: Deps, tenant: TenantAuth, active: number): Promise<void> {
  const limit = limitsOf(tenant.quotas, deps.config).max_adapters;
  if (limit === 0) throw new ApiError("quota_exceeded", "this tenant may not keep adapters (its max_adapters is 0); ask the operator");
  const taken = (await keptAdapters(deps, tenant.tenantId)) + active;
  if (taken >= limit) throw tooManyAdapters(taken, limit);
}

/** Uploaded training files (results files, which jobs write, are bounded by the jobs). */
const uploaded = (tenantId: string) => and(eq(files.tenantId, tenantId), eq(files.purpose, "fine-tune"));

/** The bytes a training-file upload may still take under TUNESERVE_MAX_FILE_BYTES_PER_TENANT, and the error for passing them. */
export interface FileRoom {
  /** Infinity when the setting is 0 (unlimited). */
  bytes: number;
  exceeded(): ApiError;
}

/** Files counted and bytes summed in one statement (the bytes a number on D1 and libsql alike). */
const countAndBytes = { n: count(), bytes: sql<number>`coalesce(sum(${files.bytes}), 0)` };

/**
 * Refuses a training-file upload once the tenant keeps TUNESERVE_MAX_FILES of them or its files fill
 * TUNESERVE_MAX_FILE_BYTES_PER_TENANT; otherwise returns the bytes left for this one, which the upload is cut at.
 */
export async function assertRoomForFile(deps: Deps, tenant: TenantAuth): Promise<FileRoom> {
  const limit = deps.config.TUNESERVE_MAX_FILES;
  const [row] = await deps.db.select(countAndBytes).from(files).where(uploaded(tenant.tenantId));
  if ((row?.n ?? 0) >= limit) throw tooManyFiles(limit);
  const maxBytes = deps.config.TUNESERVE_MAX_FILE_BYTES_PER_TENANT;
  const used = Number(row?.bytes ?? 0);
  const exceeded = () => tooManyFileBytes(used, maxBytes);
  if (maxBytes === 0) return { bytes: Infinity, exceeded };
  if (used >= maxBytes) throw exceeded();
  return { bytes: maxBytes - used, exceeded };
}

/**
 * TUNESERVE_MAX_FILES and TUNESERVE_MAX_FILE_BYTES_PER_TENANT re-checked once file `fileId` is written, counting
 * the files written before it or it: of uploads racing past a limit, those written after it was reached withdraw.
 */
export async function fileQuotaOverrun(deps: Deps, tenant: TenantAuth, fileId: string): Promise<ApiError | null> {
  const limit = deps.config.TUNESERVE_MAX_FILES;
  const ahead = sql`rowid <= (select rowid from ${files} where ${files.id} = ${fileId})`;
  const own = sql<number>`coalesce(sum(case when ${files.id} = ${fileId} then ${files.bytes} else 0 end), 0)`;
  const [row] = await deps.db.select({ ...countAndBytes, own }).from(files).where(and(uploaded(tenant.tenantId), ahead));
  if ((row?.n ?? 0) > limit) return tooManyFiles(limit);
  const maxBytes = deps.config.TUNESERVE_MAX_FILE_BYTES_PER_TENANT;
  const total = Number(row?.bytes ?? 0);
  return maxBytes > 0 && total > maxBytes ? tooManyFileBytes(total - Number(row?.own ?? 0), maxBytes) : null;
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** The 429 for a tenant that has `active` jobs at its max_active_jobs. */
const tooManyJobs = (active: number) =>
  new ApiError("quota_exceeded", `this tenant has ${plural(active, "fine-tuning job")} queued, running or paused, its limit; wait for one to end, or cancel one`, null, { "Retry-After": "60" });

/** The 429 for a tenant that keeps `limit` training files. */
const tooManyFiles = (limit: number) =>
  new ApiError("quota_exceeded", `this tenant keeps ${plural(limit, "training file")}, the deployment's limit (TUNESERVE_MAX_FILES); delete one (DELETE /v1/files/{file_id}) first`);

/** The 429 for an upload that would take the tenant's training files (`used` bytes before it) past `limit` bytes. */
const tooManyFileBytes = (used: number, limit: number) =>
  new ApiError(
    "quota_exceeded",
    `this tenant's training files take ${used} bytes, and this upload would take them past ${limit} bytes, the deployment's limit (TUNESERVE_MAX_FILE_BYTES_PER_TENANT); delete files (DELETE /v1/files/{file_id}) first`,
  );

/** The 429 for a tenant whose kept adapters and jobs in progress (`taken`) fill its max_adapters. */
const tooManyAdapters = (taken: number, limit: number) =>
  new ApiError("quota_exceeded", `this tenant keeps ${plural(taken, "adapter")} (fine-tuning jobs in progress included) of its ${limit}; delete one (DELETE /v1/models/{model}) first`);
