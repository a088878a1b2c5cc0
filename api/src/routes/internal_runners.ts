// Runner protocol, part 1: a runner registers (models it serves, capacity, URL) and heartbeats its liveness
// and adapter cache. Guarded by the runner token (routes/index.ts); see docs/runner-protocol.md.
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Router } from "../app.js";
import { runners } from "../db/schema.js";
import { notFound } from "../errors.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";
import { registerRunnerBody, runnerHeartbeatBody } from "../jobs/protocol.js";

export const runnerSchema = z
  .object({
    id: z.string(),
    object: z.literal("runner"),
    name: z.string(),
    url: z.string().nullable().openapi({ description: "where it serves inference; null for a training-only runner" }),
    models: z.array(z.string()).openapi({ description: "base models it serves" }),
    adapters: z.array(z.string()).openapi({ description: "fine-tuned models its adapter cache holds, as of its last heartbeat" }),
    capacity: z.number().int(),
    last_seen_at: z.number().int(),
    created_at: z.number().int(),
    lease_seconds: z.number().int().openapi({ description: "heartbeat a leased job well within this (a third is a good period)" }),
  })
  .openapi("Runner");

export type Runner = z.infer<typeof runnerSchema>;

export type RunnerRow = typeof runners.$inferSelect;

/** A runner row as the runner protocol and the admin API show it. */
export const runnerFields = (r: RunnerRow) => ({
  id: r.id,
  object: "runner" as const,
  name: r.name,
  url: r.url,
  models: JSON.parse(r.models) as string[],
  adapters: JSON.parse(r.adapters) as string[],
  capacity: r.capacity,
  last_seen_at: r.lastSeenAt,
  created_at: r.createdAt,
});

const toRunner = (r: RunnerRow, leaseSeconds: number): Runner => ({ ...runnerFields(r), lease_seconds: leaseSeconds });

const register = createRoute({
  method: "post",
  path: "/internal/v1/runners/register",
  security: bearerSecurity,
  request: jsonBody(registerRunnerBody),
  responses: { 200: json(runnerSchema, "the runner; the same name keeps its id"), ...errorResponses },
});
const heartbeat = createRoute({
  method: "post",
  path: "/internal/v1/runners/{runner_id}/heartbeat",
  security: bearerSecurity,
  request: { params: z.object({ runner_id: z.string().max(128) }), ...jsonBody(runnerHeartbeatBody) },
  responses: { 200: json(runnerSchema, "the runner as now recorded"), ...errorResponses },
});

export function registerInternalRunners(app: Router): void {
  app.openapi(register, async (c) => {
    const { db, now, config } = c.var.deps;
    const body = c.req.valid("json");
    const t = now();
    const models = JSON.stringify([...new Set(body.models)]);
    // One upsert keyed by the unique name: a restarted runner gets its old id back, whatever races it.
    const [row] = await db
      .insert(runners)
      .values({ id: newId("run_"), name: body.name, url: body.url ?? null, models, adapters: "[]", capacity: body.capacity, lastSeenAt: t, createdAt: t })
      .onConflictDoUpdate({ target: runners.name, set: { url: body.url ?? null, models, adapters: "[]", capacity: body.capacity, lastSeenAt: t } })
      .returning();
    return c.json(toRunner(row, config.TUNESERVE_LEASE_SECONDS), 200);
  });
  app.openapi(heartbeat, async (c) => {
    const { db, now, config } = c.var.deps;
    const { runner_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const [row] = await db
      .update(runners)
      .set({ lastSeenAt: now(), ...(body.adapters ? { adapters: JSON.stringify(body.adapters) } : {}) })
      .where(eq(runners.id, runner_id))
      .returning();
    if (!row) throw notFound("runner", runner_id, "runner_id");
    return c.json(toRunner(row, config.TUNESERVE_LEASE_SECONDS), 200);
  });
}
