// Runner protocol, part 1: a runner registers (models it serves, capacity, URL) and heartbeats its liveness
// and adapter cache. Guarded by the runner token (routes/index.ts); see docs/runner-protocol.md.
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Router } from "../app.js";
import { runBatch } from "../db/batch.js";
import type { Db } from "../db/client.js";
import { adapters, baseModels, runners } from "../db/schema.js";
import { ApiError, notFound } from "../errors.js";
import { liveSince } from "../inference/runners.js";
import { runnerCheckpointFormats } from "../jobs/checkpoint-formats.js";
import { findCheckpointModel, isCheckpointName } from "../jobs/checkpoint-models.js";
import { assertCurrentInstance, judgeRegistration } from "../jobs/runner-takeover.js";
import { eventInsert, releaseLeasesOf } from "../jobs/store.js";
import { newId } from "../lib/ids.js";
import { bearerSecurity, errorResponses, errorSchema, json, jsonBody } from "../lib/openapi.js";
import { registerRunnerBody, runnerHeartbeatBody, runnerStopBody } from "../jobs/protocol.js";

export const runnerSchema = z
  .object({
    id: z.string(),
    object: z.literal("runner"),
    name: z.string(),
    url: z.string().nullable().openapi({ description: "where it serves inference; null for a training-only runner" }),
    models: z.array(z.string()).openapi({ description: "base models it serves" }),
    adapters: z.array(z.string()).openapi({ description: "fine-tuned models its adapter cache holds, as of its last heartbeat" }),
    capacity: z.number().int(),
    checkpoint_formats: z.array(z.number().int()).openapi({ description: "checkpoint formats it can resume (as it declared; [1] for a runner that declared none): it is leased only jobs whose latest checkpoint is in one of them" }),
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
  checkpoint_formats: runnerCheckpointFormats(r),
  last_seen_at: r.lastSeenAt,
  created_at: r.createdAt,
});

const toRunner = (r: RunnerRow, leaseSeconds: number): Runner => ({ ...runnerFields(r), lease_seconds: leaseSeconds });

const registeredSchema = runnerSchema
  .extend({
    unregistered_models: z.array(z.string()).openapi({ description: "of the models it offers, those the API has no base model for: requests for them get 404 until an admin registers them (POST /admin/v1/models)" }),
  })
  .openapi("RegisteredRunner");

const heartbeatAnswerSchema = runnerSchema
  .extend({
    gone_adapters: z.array(z.string()).openapi({ description: "of the adapters it reported, those deleted since (or never known): the runner should drop its copies" }),
  })
  .openapi("RunnerHeartbeatAnswer");

/** D1 binds at most 100 parameters a statement. */
const IDS_PER_QUERY = 90;

/** The reported adapter model ids that no longer name an adapter or a callable checkpoint. */
async function goneAdapters(db: Db, reported: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (let i = 0; i < reported.length; i += IDS_PER_QUERY) {
    const rows = await db.select({ modelId: adapters.modelId }).from(adapters).where(inArray(adapters.modelId, reported.slice(i, i + IDS_PER_QUERY)));
    for (const r of rows) found.add(r.modelId);
  }
  const gone: string[] = [];
  for (const id of reported) {
    if (found.has(id)) continue;
    if (isCheckpointName(id) && (await findCheckpointModel(db, id))) continue;
    gone.push(id);
  }
  return gone;
}

const register = createRoute({
  method: "post",
  path: "/internal/v1/runners/register",
  security: bearerSecurity,
  request: jsonBody(registerRunnerBody),
  responses: { 200: json(registeredSchema, "the runner; the same name keeps its id"), 409: json(errorSchema, "another live runner has this name"), ...errorResponses },
});
const heartbeat = createRoute({
  method: "post",
  path: "/internal/v1/runners/{runner_id}/heartbeat",
  security: bearerSecurity,
  request: { params: z.object({ runner_id: z.string().max(128) }), ...jsonBody(runnerHeartbeatBody) },
  responses: { 200: json(heartbeatAnswerSchema, "the runner as now recorded"), 409: json(errorSchema, "another process has registered this runner's name since: this one must stop"), ...errorResponses },
});

const stop = createRoute({
  method: "post",
  path: "/internal/v1/runners/{runner_id}/stop",
  security: bearerSecurity,
  request: { params: z.object({ runner_id: z.string().max(128) }), ...jsonBody(runnerStopBody) },
  responses: { 200: json(runnerSchema, "the runner, no longer live: no request is routed to it"), 409: json(errorSchema, "another process has registered this runner's name since"), ...errorResponses },
});

/** Runners not heard from for this long are forgotten (their rows deleted) when any runner registers. */
const FORGET_AFTER_SECONDS = 7 * 24 * 3600;
/** A restart ended the earlier process's attempts: their jobs may be leased again (or fail, with no attempts left) at once. */
async function releaseDeadAttempts(db: Db, row: RunnerRow, now: number): Promise<void> {
  const released = await releaseLeasesOf(db, row.id, now);
  if (released.length === 0) return;
  const message = (attempt: number) => `Runner ${row.name} restarted during attempt ${attempt}; that attempt is over`;
  await runBatch(db, released.map((j) => eventInsert(db, j.id, now, { level: "warn", message: message(j.attempt), data: { attempt: j.attempt } })));
}

export function registerInternalRunners(app: Router): void {
  app.openapi(register, async (c) => {
    const { db, now, config } = c.var.deps;
    const body = c.req.valid("json");
    const t = now();
    const [earlier] = await db.select().from(runners).where(eq(runners.name, body.name));
    const judged = await judgeRegistration(earlier, body.instance, { liveSince: liveSince(t, config.TUNESERVE_LEASE_SECONDS), runnerToken: config.TUNESERVE_RUNNER_TOKEN! });
    const models = JSON.stringify([...new Set(body.models)]);
    const instance = body.instance ?? null;
    // Declared nothing (a runner from before formats): null, read as format 1 only, also over what an upgraded
    // process under this name declared before.
    const checkpointFormats = body.checkpoint_formats ? JSON.stringify([...new Set(body.checkpoint_formats)].sort((a, b) => a - b)) : null;
    // One upsert keyed by the unique name (a restarted runner gets its old id back), and only over the row as
    // judged: of two processes registering one name at once, one gets a 409 here. A row this same process wrote
    // meanwhile (its retry of this call, racing it) is its own: the process keeps the id instead of exiting on a 409.
    const asJudged = sql`${runners.instance} is ${earlier?.instance ?? null}`;
    const [row] = await db
      .insert(runners)
      .values({ id: newId("run_"), name: body.name, url: body.url ?? null, instance, models, adapters: "[]", capacity: body.capacity, checkpointFormats, lastSeenAt: t, createdAt: t })
      .onConflictDoUpdate({ target: runners.name, set: { url: body.url ?? null, instance, models, adapters: "[]", capacity: body.capacity, checkpointFormats, lastSeenAt: t }, setWhere: instance === null ? asJudged : or(asJudged, eq(runners.instance, instance)) })
      .returning();
    if (!row) throw new ApiError("conflict", `another runner registered the name '${body.name}' at the same moment; give each runner its own name (TUNESERVE_RUNNER_NAME)`, "name");
    if (judged === "restart") await releaseDeadAttempts(db, row, t);
    await db.delete(runners).where(lt(runners.lastSeenAt, t - FORGET_AFTER_SECONDS));
    const offered = [...new Set(body.models)];
    const known = offered.length ? await db.select({ id: baseModels.id }).from(baseModels).where(inArray(baseModels.id, offered)) : [];
    const unregistered = offered.filter((m) => !known.some((k) => k.id === m));
    return c.json({ ...toRunner(row, config.TUNESERVE_LEASE_SECONDS), unregistered_models: unregistered }, 200);
  });
  app.openapi(heartbeat, async (c) => {
    const { db, now, config } = c.var.deps;
    const { runner_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const [current] = await db.select().from(runners).where(eq(runners.id, runner_id));
    if (!current) throw notFound("runner", runner_id, "runner_id");
    assertCurrentInstance(current, body.instance);
    // The instance is checked again in the update: a new process that registered the name since the read above
    // keeps its row (its adapters, its liveness) and this superseded one is told to stop.
    const sameProcess = body.instance === undefined ? undefined : or(isNull(runners.instance), eq(runners.instance, body.instance));
    const [row] = await db
      .update(runners)
      .set({ lastSeenAt: now(), ...(body.adapters ? { adapters: JSON.stringify(body.adapters) } : {}) })
      .where(and(eq(runners.id, runner_id), sameProcess))
      .returning();
    if (!row) {
      const [latest] = await db.select().from(runners).where(eq(runners.id, runner_id));
      if (!latest) throw notFound("runner", runner_id, "runner_id");
      assertCurrentInstance(latest, body.instance);
      throw new Error(`runner ${runner_id}: heartbeat update matched no row though its instance matches`);
    }
    const gone = body.adapters ? await goneAdapters(db, [...new Set(body.adapters)]) : [];
    return c.json({ ...toRunner(row, config.TUNESERVE_LEASE_SECONDS), gone_adapters: gone }, 200);
  });
  app.openapi(stop, async (c) => {
    const { db, now, config } = c.var.deps;
    const { runner_id } = c.req.valid("param");
    const { instance } = c.req.valid("json");
    // Seen last just before the live window: no request is routed to it from now on (it drains what it has),
    // and its name may be registered again at once, as after a restart.
    const [row] = await db
      .update(runners)
      .set({ lastSeenAt: liveSince(now(), config.TUNESERVE_LEASE_SECONDS) - 1 })
      .where(and(eq(runners.id, runner_id), instance === undefined ? undefined : or(isNull(runners.instance), eq(runners.instance, instance))))
      .returning();
    if (!row) {
      const [latest] = await db.select().from(runners).where(eq(runners.id, runner_id));
      if (!latest) throw notFound("runner", runner_id, "runner_id");
      assertCurrentInstance(latest, instance);
      throw new Error(`runner ${runner_id}: stop matched no row though its instance matches`);
    }
    return c.json(toRunner(row, config.TUNESERVE_LEASE_SECONDS), 200);
  });
}
