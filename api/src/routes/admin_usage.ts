// Admin usage: every usage event in the order it was recorded, as CloudEvents 1.0 (JSON) or as Stripe meter
// events, for a billing pipeline to pull, and the billing of adapter storage days that have ended
// (usage/storage.ts). The cursor is the event's seq: the one database assigns it in commit order, so paging
// forward never misses an event that committed late with an earlier timestamp (which a time or id cursor
// could). Each event's id (CloudEvents) or identifier (Stripe) is its usage idempotency key, stable across
// reads: a consumer dedupes on it.
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, max } from "drizzle-orm";
import type { Router } from "../app.js";
import type { Db } from "../db/client.js";
import { tenants, usageEvents } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { bearerSecurity, errorResponses, json } from "../lib/openapi.js";
import { limitQuery } from "../lib/pagination.js";
import { billClosedDays, startOfDay } from "../usage/storage.js";

const exportQuery = z.object({
  after: z.string().regex(/^\d{0,15}$/, "after is the next_cursor of a previous page").optional().openapi({ description: "next_cursor of the previous page; omit to start at the first event" }),
  limit: limitQuery(1000, 100),
  tenant_id: z.string().max(128).optional().openapi({ description: "only this tenant's events" }),
});

/** One page of an export, read on with next_cursor (both exports page the same events the same way). */
const eventPage = <T extends z.ZodTypeAny>(item: T) =>
  z.object({
    object: z.literal("list"),
    data: z.array(item),
    has_more: z.boolean(),
    next_cursor: z.string().nullable().openapi({ description: "pass as after to read on; null while no event has been read (poll again without after)" }),
  });

export const usageCloudEventSchema = z
  .object({
    specversion: z.literal("1.0"),
    id: z.string().openapi({ description: "the usage idempotency key (job:<id>:training_tokens, req:<id>:prompt_tokens, adapter:<id>:storage:<day>, …)" }),
    source: z.literal("/tuneserve/usage"),
    type: z.string().openapi({ example: "dev.tuneserve.usage.prompt_tokens" }),
    subject: z.string().openapi({ description: "the tenant id" }),
    time: z.string().openapi({ description: "when it was recorded (RFC 3339); for storage, the start of the span of the day it bills" }),
    datacontenttype: z.literal("application/json"),
    data: z.object({ tenant_id: z.string(), kind: z.string(), model: z.string(), quantity: z.number().int(), ref: z.string().openapi({ description: "the job, request or adapter that used it" }) }),
  })
  .openapi("UsageCloudEvent");

const exportRoute = createRoute({
  method: "get",
  path: "/admin/v1/usage/events",
  security: bearerSecurity,
  request: { query: exportQuery },
  responses: {
    200: json(eventPage(usageCloudEventSchema), "events in the order they were recorded"),
    ...errorResponses,
  },
});

const stripeMeterEventSchema = z
  .object({
    event_name: z.string().openapi({ description: "tuneserve_<kind>: the event name of a Stripe meter per usage kind", example: "tuneserve_prompt_tokens" }),
    identifier: z.string().openapi({ description: "the usage idempotency key: Stripe dedupes meter events on it (within its dedupe window, about a day)" }),
    timestamp: z.number().int(),
    payload: z.object({
      stripe_customer_id: z.string().nullable().openapi({ description: "the tenant's stripe_customer_id as it is when the page is read; null when none is set (hold or skip such events)" }),
      value: z.string().openapi({ description: "the quantity, as Stripe takes it" }),
    }),
  })
  .openapi("StripeMeterEvent");

const stripeRoute = createRoute({
  method: "get",
  path: "/admin/v1/usage/stripe-meter-events",
  description: "The same events, paged the same way, shaped as Stripe Billing meter events (POST /v1/billing/meter_events) for a pipeline to send.",
  security: bearerSecurity,
  request: { query: exportQuery },
  responses: {
    200: json(eventPage(stripeMeterEventSchema), "meter events in the order their usage was recorded"),
    ...errorResponses,
  },
});

const billStorageRoute = createRoute({
  method: "post",
  path: "/admin/v1/usage/bill-storage",
  security: bearerSecurity,
  responses: {
    200: json(
      z.object({
        object: z.literal("storage_billing"),
        billed_until: z.number().int().openapi({ description: "the start of today (UTC): every adapter kept before it is billed up to it" }),
        adapters: z.number().int().openapi({ description: "adapters that had days to bill (some may have been billed by a run at the same time)" }),
        events: z.number().int().openapi({ description: "storage_byte_hours events written now (0 for days already billed)" }),
      }),
      "days that have ended, billed",
    ),
    ...errorResponses,
  },
});

export function registerAdminUsage(app: Router): void {
  // The server runs this every hour (Node timer, Worker cron); an admin may run it at any time, twice is harmless.
  app.openapi(billStorageRoute, async (c) => {
    const now = c.var.deps.now();
    const done = await billClosedDays(c.var.deps.db, now);
    return c.json({ object: "storage_billing" as const, billed_until: startOfDay(now), ...done }, 200);
  });

  app.openapi(exportRoute, async (c) => {
    const { rows, has_more, next_cursor } = await pageOfEvents(c.var.deps.db, c.req.valid("query"));
    const data = rows.map(({ event: e }) => ({
      specversion: "1.0" as const,
      id: e.idempotencyKey,
      source: "/tuneserve/usage" as const,
      type: `dev.tuneserve.usage.${e.kind}`,
      subject: e.tenantId,
      time: new Date(e.createdAt * 1000).toISOString(),
      datacontenttype: "application/json" as const,
      data: { tenant_id: e.tenantId, kind: e.kind, model: e.model, quantity: e.quantity, ref: e.ref },
    }));
    return c.json({ object: "list" as const, data, has_more, next_cursor }, 200);
  });

  app.openapi(stripeRoute, async (c) => {
    const { rows, has_more, next_cursor } = await pageOfEvents(c.var.deps.db, c.req.valid("query"));
    const data = rows.map(({ event: e, customer }) => ({
      event_name: `tuneserve_${e.kind}`,
      identifier: e.idempotencyKey,
      timestamp: e.createdAt,
      payload: { stripe_customer_id: customer, value: String(e.quantity) },
    }));
    return c.json({ object: "list" as const, data, has_more, next_cursor }, 200);
  });
}

/**
 * One page of usage events in commit order after the cursor, with the cursor to read on from. The cursor of
 * the last event read is returned also when the page is the last one: the next poll starts there.
 */
async function pageOfEvents(db: Db, q: z.infer<typeof exportQuery>) {
  const rows = await db
    // The tenant's Stripe customer as it is now (the Stripe export names it; a join, so a page of many
    // tenants costs one query).
    .select({ event: usageEvents, customer: tenants.stripeCustomerId })
    .from(usageEvents)
    .leftJoin(tenants, eq(tenants.id, usageEvents.tenantId))
    .where(and(q.after ? gt(usageEvents.seq, Number(q.after)) : undefined, q.tenant_id ? eq(usageEvents.tenantId, q.tenant_id) : undefined))
    .orderBy(asc(usageEvents.seq))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  // A cursor this database never handed out would skip every event up to it: refuse it rather than wait.
  if (page.length === 0 && q.after) {
    const [newest] = await db.select({ seq: max(usageEvents.seq) }).from(usageEvents);
    if (Number(q.after) > (newest?.seq ?? 0)) throw new ApiError("invalid_request", `after=${q.after} is past the newest event; use a next_cursor this endpoint returned, or omit after to start over`, "after");
  }
  return { rows: page, has_more: rows.length > q.limit, next_cursor: page.length > 0 ? String(page[page.length - 1].event.seq) : q.after || null };
}
