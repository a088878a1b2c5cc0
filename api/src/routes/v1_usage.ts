// The tenant's metered usage (trained, prompt and completion tokens, adapter storage), summed per day, kind
// and/or model and priced, with its quotas and this month's tokens, so a client can see a 429 coming.
import { createRoute, z } from "@hono/zod-openapi";
import type { Router } from "../app.js";
import { ApiError } from "../errors.js";
import { bearerSecurity, json, tenantErrorResponses } from "../lib/openapi.js";
import { limitsOf, limitsSchema, monthOf, tokensThisMonth } from "../quotas/limits.js";
import { loadPrices } from "../usage/prices.js";
import { badTimeMessage, day, parseGroupBy, parseTime, queryUsage } from "../usage/query.js";

/** Longest range one query may cover, to keep the aggregation cheap. */
const maxRangeDays = 366;

const usageQuery = z.object({
  start: z.string().max(40).optional().openapi({ description: "unix seconds or ISO date; default: 30 days before end" }),
  end: z.string().max(40).optional().openapi({ description: "unix seconds or ISO date (exclusive); default: now" }),
  group_by: z.string().max(40).default("day,kind").openapi({ description: "comma-separated: day, kind, model; kind is always added (different kinds are never summed)", example: "day,kind" }),
});
export const usageBucketSchema = z
  .object({
    object: z.literal("usage.bucket"),
    start_time: z.number().int(),
    end_time: z.number().int(),
    kind: z.string().openapi({ description: "training_tokens | prompt_tokens | completion_tokens | storage_byte_hours (an adapter's bytes × hours kept, billed per UTC day once it has ended)" }),
    model: z.string().nullable().openapi({ description: "null when not grouped by model" }),
    quantity: z.number().int(),
    cost_usd: z.number().nullable().openapi({ description: "what it costs at the current prices (admin /admin/v1/prices), to the micro-dollar; null when no price is set for some of it" }),
  })
  .openapi("UsageBucket");
const quotaSchema = z
  .object({
    limits: limitsSchema,
    month: z.string().openapi({ description: "the current calendar month (UTC)", example: "2026-11" }),
    month_tokens: z.number().int().openapi({ description: "tokens billed so far this month (trained, prompt, completion), counted against monthly_tokens" }),
  })
  .openapi("UsageQuota", { description: "the tenant's quotas and this month's use of them" });
const usageListSchema = z.object({ object: z.literal("list"), start_time: z.number().int(), end_time: z.number().int(), group_by: z.array(z.string()), data: z.array(usageBucketSchema), quota: quotaSchema });

export type UsageQuery = z.infer<typeof usageQuery>;
export type UsageBucketObject = z.infer<typeof usageBucketSchema>;

const usage = createRoute({
  method: "get",
  path: "/v1/usage",
  security: bearerSecurity,
  request: { query: usageQuery },
  responses: { 200: json(usageListSchema, "usage buckets in time order"), ...tenantErrorResponses },
});

function time(param: "start" | "end", raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const t = parseTime(raw);
  if (t === null) throw new ApiError("invalid_request", badTimeMessage(param, raw), param);
  return t;
}

export function registerUsage(app: Router): void {
  app.openapi(usage, async (c) => {
    const q = c.req.valid("query");
    const end = time("end", q.end, c.var.deps.now() + 1);
    const start = time("start", q.start, Math.max(0, end - 30 * day));
    if (start >= end) throw new ApiError("invalid_request", `start (${start}) must be before end (${end})`, "start");
    if (end - start > maxRangeDays * day) throw new ApiError("invalid_request", `the range covers more than ${maxRangeDays} days; query it in parts`, "start");
    const g = parseGroupBy(q.group_by);
    if (!g.ok) throw new ApiError("invalid_request", `group_by: '${g.bad}' is not one of day, kind, model`, "group_by");
    // Quantities of different kinds (tokens trained, read, generated) are priced apart: never summed together.
    const groups = g.groups.includes("kind") ? g.groups : [...g.groups, "kind" as const];
    const { deps, tenant } = c.var;
    const rows = await queryUsage(deps.db, { tenantId: tenant.tenantId, start, end, groups, prices: await loadPrices(deps.db) });
    const now = deps.now();
    const quota = { limits: limitsOf(tenant.quotas, deps.config), month: monthOf(now).key, month_tokens: await tokensThisMonth(deps, tenant.tenantId, now) };
    return c.json({ object: "list" as const, start_time: start, end_time: end, group_by: groups, data: rows.map((r) => ({ object: "usage.bucket" as const, ...r })), quota }, 200);
  });
}
