// Admin: queue depth and runner counts, the signal the runner autoscaler (infra/k8s) scales on.
import { createRoute, z } from "@hono/zod-openapi";
import { and, count, eq, gt, gte, or, type SQL } from "drizzle-orm";
import { liveSince } from "../inference/runners.js";
import type { Router } from "../app.js";
import { jobs, runners } from "../db/schema.js";
import { waitingForCheckpointFormat } from "../jobs/checkpoint-formats.js";
import { leasable, tenantActive } from "../jobs/store.js";
import { bearerSecurity, errorResponses, json } from "../lib/openapi.js";

const metricsSchema = z
  .object({
    jobs: z.object({
      queued: z.number().int(),
      running: z.number().int(),
      waiting_for_checkpoint_format: z.number().int().openapi({
        description: "of these, the jobs whose latest checkpoint no live runner of their model can resume (only older runners are live, as in a rolling upgrade): they wait for a runner that can",
      }),
      /** What a runner autoscaler targets: each running job keeps its runner busy, each queued one wants one. */
      needing_runner: z.number().int().openapi({ description: "queued + running: the jobs that need a runner now (the autoscaling signal)" }),
    }),
    runners: z.object({ active: z.number().int() }),
  })
  .openapi("Metrics");

const metrics = createRoute({
  method: "get",
  path: "/admin/v1/metrics",
  security: bearerSecurity,
  request: { query: z.object({ format: z.enum(["json", "prometheus"]).default("json") }) },
  responses: { 200: json(metricsSchema, "queue depth and active runners (Prometheus text with format=prometheus)"), ...errorResponses },
});

export function registerAdminMetrics(app: Router): void {
  app.openapi(metrics, async (c) => {
    const { db, now } = c.var.deps;
    const jobCount = async (where: SQL | undefined) => (await db.select({ n: count() }).from(jobs).where(where))[0].n;
    // Queue depth for autoscaling: a suspended tenant's queued jobs, and running ones whose runner is gone,
    // wait for no runner, so they do not count.
    const t = now();
    const live = liveSince(t, c.var.deps.config.TUNESERVE_LEASE_SECONDS);
    const [queued, running, waiting] = await Promise.all([
      jobCount(and(eq(jobs.status, "queued"), tenantActive)),
      jobCount(and(eq(jobs.status, "running"), or(tenantActive, gt(jobs.leaseExpiresAt, t)))),
      // The jobs a lease would hand out (as the waiting event's: jobs/checkpoint-wait.ts) that no live runner can resume.
      jobCount(and(leasable(t), waitingForCheckpointFormat(live))),
    ]);
    const [{ n: active }] = await db.select({ n: count() }).from(runners).where(gte(runners.lastSeenAt, live));
    const body = { jobs: { queued, running, needing_runner: queued + running, waiting_for_checkpoint_format: waiting }, runners: { active } };
    if (c.req.valid("query").format === "prometheus") {
      const text = [
        "# TYPE tuneserve_jobs_queued gauge",
        `tuneserve_jobs_queued ${queued}`,
        "# TYPE tuneserve_jobs_running gauge",
        `tuneserve_jobs_running ${running}`,
        "# TYPE tuneserve_jobs_waiting_for_checkpoint_format gauge",
        `tuneserve_jobs_waiting_for_checkpoint_format ${waiting}`,
        "# TYPE tuneserve_jobs_needing_runner gauge",
        `tuneserve_jobs_needing_runner ${queued + running}`,
        "# TYPE tuneserve_runners_active gauge",
        `tuneserve_runners_active ${active}`,
        "",
      ].join("\n");
      return c.body(text, 200, { "Content-Type": "text/plain; version=0.0.4" }) as never;
    }
    return c.json(body, 200);
  });
}
