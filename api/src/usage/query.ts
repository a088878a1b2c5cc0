// Usage aggregation for GET /v1/usage: the tenant's usage events summed into buckets by day, kind and/or
// model over a time range. Pure parsing of the range lives here too so it can be unit-tested.
import { and, asc, eq, gte, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { usageEvents } from "../db/schema.js";
import { roundMicro, type PriceList } from "./prices.js";

export const usageGroups = ["day", "kind", "model"] as const;
export type UsageGroup = (typeof usageGroups)[number];

export const day = 86_400;

/** Parses unix seconds ("1735689600") or an ISO date/time ("2025-01-01", "2025-01-01T12:00:00Z"); null when neither. */
export function parseTime(s: string): number | null {
  if (/^\d{1,12}$/.test(s)) return Number(s);
  const m = isoTime.exec(s);
  if (!m) return null;
  // Date.parse rolls 2025-02-30 over into March: only a day the calendar has is a date.
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/** Why a `start` or `end` is refused; an offset's '+' sent unescaped reaches the server as a space, so that is named. */
export function badTimeMessage(param: string, raw: string): string {
  const refused = `${param}=${raw} is neither unix seconds nor an ISO date like 2025-01-31`;
  const plus = raw.replace(/ (\d{2}:\d{2})$/, "+$1");
  if (plus === raw || parseTime(plus) === null) return refused;
  return `${refused}: a '+' in a URL's query arrives as a space; write the offset as %2B${plus.slice(-5)}`;
}

/** The whole string an ISO date or date-time: Date.parse reads text after a date its own way (2025-01-01junk is a June day). */
const isoTime = /^(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;

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
  /** USD at the current prices; null when some of it has no price. */
  cost_usd: number | null;
}

/**
 * Sums the tenant's usage in [start, end) into buckets; days are UTC days clipped to the range. Buckets are
 * always per kind, whether or not `groups` names it: tokens trained, read and generated are priced apart.
 * Rows are summed per model in SQL either way, since prices are per model; without "model" in `groups` they
 * are then added up here.
 */
export async function queryUsage(db: Db, opts: { tenantId: string; start: number; end: number; groups: UsageGroup[]; prices: PriceList }): Promise<UsageBucket[]> {
  const byDay = opts.groups.includes("day");
  const byModel = opts.groups.includes("model");
  const dayExpr = sql<number>`(${usageEvents.createdAt} - (${usageEvents.createdAt} % ${day}))`;
  const keys: SQL[] = [];
  if (byDay) keys.push(dayExpr);
  keys.push(sql`${usageEvents.kind}`, sql`${usageEvents.model}`);
  const rows = await db
    .select({
      day: byDay ? dayExpr.mapWith(Number) : sql<number>`0`.mapWith(Number),
      kind: usageEvents.kind,
      model: usageEvents.model,
      quantity: sql<number>`sum(${usageEvents.quantity})`.mapWith(Number),
    })
    .from(usageEvents)
    .where(and(eq(usageEvents.tenantId, opts.tenantId), gte(usageEvents.createdAt, opts.start), lt(usageEvents.createdAt, opts.end)))
    .groupBy(...keys)
    .orderBy(...keys.map((k) => asc(k)));
  const buckets = new Map<string, UsageBucket>();
  for (const r of rows) {
    if (r.quantity === null || Number.isNaN(r.quantity)) continue;
    const model = byModel ? r.model : null;
    const key = `${r.day}\u0000${r.kind}\u0000${model}`;
    const cost = opts.prices.cost(r.kind, r.model, r.quantity);
    const b = buckets.get(key);
    if (b) {
      b.quantity += r.quantity;
      b.cost_usd = b.cost_usd === null || cost === null ? null : roundMicro(b.cost_usd + cost);
      continue;
    }
    buckets.set(key, {
      start_time: byDay ? Math.max(opts.start, r.day) : opts.start,
      end_time: byDay ? Math.min(opts.end, r.day + day) : opts.end,
      kind: r.kind,
      model,
      quantity: r.quantity,
      cost_usd: cost,
    });
  }
  // SQL ordered by (day, kind, model): the buckets come out in (day, kind[, model]) order.
  return [...buckets.values()];
}
