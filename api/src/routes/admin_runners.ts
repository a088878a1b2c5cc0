// Admin: the runners that have registered, with whether each is live and the fine-tuning jobs it holds, so
// an operator can see which machines serve which models and where work is.
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt } from "drizzle-orm";
import type { Router } from "../app.js";
import { jobs, runners } from "../db/schema.js";
import { notFound } from "../errors.js";
import { bearerSecurity, errorResponses, json } from "../lib/openapi.js";
import { liveSince } from "../inference/runners.js";
import { runnerFields, runnerSchema, type RunnerRow } from "./internal_runners.js";

const adminRunnerSchema = runnerSchema
  .omit({ lease_seconds: true })
  .extend({
    active: z.boolean().openapi({ description: "heard from within the lease period (TUNESERVE_LEASE_SECONDS, default 60 s): the runners routing uses and /admin/v1/metrics counts" }),
    running_jobs: z.array(z.string()).openapi({ description: "fine-tuning jobs it holds a lease on that has not run out" }),
  })
  .openapi("AdminRunner");

const list = createRoute({
  method: "get",
  path: "/admin/v1/runners",
  security: bearerSecurity,
  responses: { 200: json(z.object({ object: z.literal("list"), data: z.array(adminRunnerSchema) }), "every registered runner, by name"), ...errorResponses },
});
const get = createRoute({
  method: "get",
  path: "/admin/v1/runners/{runner_id}",
  security: bearerSecurity,
  request: { params: z.object({ runner_id: z.string().max(128) }) },
  responses: { 200: json(adminRunnerSchema, "the runner"), ...errorResponses },
});

/** Running jobs whose lease has not run out (an expired one is anyone's to lease again). */
const leasedAt = (now: number) => and(eq(jobs.status, "running"), gt(jobs.leaseExpiresAt, now));

const toRunner = (r: RunnerRow, since: number, held: string[]): z.infer<typeof adminRunnerSchema> => ({
  ...runnerFields(r),
  active: r.lastSeenAt >= since,
  running_jobs: held,
});

export function registerAdminRunners(app: Router): void {
  app.openapi(list, async (c) => {
    const { db, now } = c.var.deps;
    const rows = await db.select().from(runners).orderBy(asc(runners.name));
    const t = now();
    const leases = await db.select({ id: jobs.id, owner: jobs.leaseOwner }).from(jobs).where(leasedAt(t)).orderBy(asc(jobs.id));
    return c.json({ object: "list" as const, data: rows.map((r) => toRunner(r, liveSince(t, c.var.deps.config.TUNESERVE_LEASE_SECONDS), leases.filter((j) => j.owner === r.id).map((j) => j.id))) }, 200);
  });
  app.openapi(get, async (c) => {
    const { db, now } = c.var.deps;
    const { runner_id } = c.req.valid("param");
    const [row] = await db.select().from(runners).where(eq(runners.id, runner_id));
    if (!row) throw notFound("runner", runner_id, "runner_id");
    const t = now();
    const held = await db.select({ id: jobs.id }).from(jobs).where(and(leasedAt(t), eq(jobs.leaseOwner, runner_id))).orderBy(asc(jobs.id));
    return c.json(toRunner(row, liveSince(t, c.var.deps.config.TUNESERVE_LEASE_SECONDS), held.map((j) => j.id)), 200);
  });
}
