// A tenant job's history: its events (messages and training metrics) and its checkpoints, OpenAI-shaped and
// paginated newest first with after/limit.
import { createRoute } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import type { Router } from "../app.js";
import { checkpoints, jobEvents } from "../db/schema.js";
import { checkpointSchema, eventSchema, toCheckpoint, toEvent } from "../jobs/shape.js";
import { bearerSecurity, json, tenantErrorResponses } from "../lib/openapi.js";
import { listEnvelope, listQueryOf, page } from "../lib/pagination.js";
import { getTenantJob, jobIdParam } from "./v1_fine_tuning_jobs.js";

const events = createRoute({
  method: "get",
  path: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/events",
  security: bearerSecurity,
  request: { params: jobIdParam, query: listQueryOf("ftevent-") },
  responses: { 200: json(listEnvelope(eventSchema), "the job's events, newest first"), ...tenantErrorResponses },
});
const checkpointList = createRoute({
  method: "get",
  path: "/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints",
  security: bearerSecurity,
  request: { params: jobIdParam, query: listQueryOf("ftckpt-") },
  responses: { 200: json(listEnvelope(checkpointSchema), "the job's checkpoints, newest first"), ...tenantErrorResponses },
});

export function registerFineTuningEvents(app: Router): void {
  app.openapi(events, async (c) => {
    const { db } = c.var.deps;
    const job = await getTenantJob(db, c.var.tenant.tenantId, c.req.valid("param").fine_tuning_job_id);
    const { limit, after } = c.req.valid("query");
    const rows = await db
      .select()
      .from(jobEvents)
      .where(and(eq(jobEvents.jobId, job.id), after ? lt(jobEvents.id, after) : undefined))
      .orderBy(desc(jobEvents.id))
      .limit(limit + 1);
    return c.json(page(rows.map(toEvent), limit), 200);
  });
  app.openapi(checkpointList, async (c) => {
    const { db } = c.var.deps;
    const job = await getTenantJob(db, c.var.tenant.tenantId, c.req.valid("param").fine_tuning_job_id);
    const { limit, after } = c.req.valid("query");
    const rows = await db
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.jobId, job.id), after ? lt(checkpoints.id, after) : undefined))
      .orderBy(desc(checkpoints.id))
      .limit(limit + 1);
    return c.json(page(rows.map((r) => toCheckpoint(r, job)), limit), 200);
  });
}
