// Usage aggregation for GET /v1/usage: the tenant's usage events summed into buckets by day, kind and/or
// model over a time range. Pure parsing of the range lives here too so it can be unit-tested.
import { and, asc, eq, gte, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { usageEvents } from "../db/schema.js";

export const usageGroups = ["day", "kind", "model"] as const;
export type UsageGroup = (typeof usageGroups)[number];

export const day = 86_400;

/** Parses unix seconds ("1735689600") or an ISO date/time ("2025-01-01", "2025-01-01T12:00:00Z"); null when neither. */
export function parseTime(s: string): number | null {
  if (/^\d{1,12}$/.test(s)) return Number(s);
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/** Parses "day,kind" style group_by lists; null names the first unknown entry. */
export function parseGroupBy(s: string): { ok: true; groups: UsageGroup[] } | { ok: false; bad: string } {
  const groups: UsageGroup[] = [];
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    if (!(usageGroups as readonly string[]).includes(part)) return { ok: false, bad: part };
    if (!groups.includes(part as UsageGroup)) groups.push(part as UsageGroup);
  }
  return { ok: true, groups };
}

export interface UsageBucket {
  start_time: number;
  end_time: number;
  kind: string;
  model: string | null;
  quantity: number;
}

/**
 * Sums the tenant's usage in [start, end) into buckets; days are UTC days clipped to the range. Buckets are
 * always per kind, whether or not `groups` names it: tokens trained, read and generated are priced apart.
 */
export async function queryUsage(db: Db, opts: { tenantId: string; start: number; end: number; groups: UsageGroup[] }): Promise<UsageBucket[]> {
  const byDay = opts.groups.includes("day");
  const byModel = opts.groups.includes("model");
  const dayExpr = sql<number>`(${usageEvents.createdAt} - (${usageEvents.createdAt} % ${day}))`;
  const keys: SQL[] = [];
  if (byDay) keys.push(dayExpr);
  keys.push(sql`${usageEvents.kind}`);
  if (byModel) keys.push(sql`${usageEvents.model}`);
  const base = db
    .select({
      day: byDay ? dayExpr.mapWith(Number) : sql<number>`0`.mapWith(Number),
      kind: usageEvents.kind,
      model: byModel ? usageEvents.model : sql<string | null>`null`,
      quantity: sql<number>`sum(${usageEvents.quantity})`.mapWith(Number),
    })
    .from(usageEvents)
    .where(and(eq(usageEvents.tenantId, opts.tenantId), gte(usageEvents.createdAt, opts.start), lt(usageEvents.createdAt, opts.end)));
  const rows = await base.groupBy(...keys).orderBy(...keys.map((k) => asc(k)));
  return rows
    .filter((r) => r.quantity !== null && !Number.isNaN(r.quantity))
    .map((r) => ({
      start_time: byDay ? Math.max(opts.start, r.day) : opts.start,
      end_time: byDay ? Math.min(opts.end, r.day + day) : opts.end,
      kind: r.kind,
      model: r.model ?? null,
      quantity: r.quantity,
    }));
}
