// Job creation under an Idempotency-Key (lib/idempotency-keys.ts): a retried creation answers with the job
// the first attempt created, so a client that retries after a timeout never starts, or pays for, a second
// job. The job and the key's "done" record are written in one batch; the attempt holds the key (heartbeat)
// and is registered with waitUntil, so a slow or disconnected attempt is not taken over.
import type { Context } from "hono";
import { and, eq } from "drizzle-orm";
import { idempotencyKeys, jobs } from "../db/schema.js";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { claimKey, holdKey, reopenKeyQuery, requestHash, settleKey, settleKeyQuery } from "../lib/idempotency-keys.js";
import { keepRunning } from "../lib/keep-running.js";
import { linearModules } from "../lib/model-shapes.js";
import { createJob, requestedMethod, type CreateJobBody, type RequestedMethod } from "./create.js";
import { adapterWithDefaults, AUTO_BETA, AUTO_SEQ_LEN, autoEpochs, type AdapterInput } from "./settings.js";
import type { JobRow } from "./shape.js";
import { cancelJob } from "./store.js";

/**
 * "auto" written as the value it always stands for (batch_size's "auto" depends on the data, so it stays;
 * seq_len's fixed value is written "auto", as keys stored before this rule hashed it).
 * A DPO request also names its method (a supervised one does not, so keys stored before DPO still match).
 */
function fixedDefaults(m: RequestedMethod) {
  const h = m.hyperparameters;
  const fixed = {
    ...h,
    n_epochs: h.n_epochs === "auto" ? autoEpochs : h.n_epochs,
    learning_rate_multiplier: h.learning_rate_multiplier === "auto" ? 1 : h.learning_rate_multiplier,
    seq_len: h.seq_len === AUTO_SEQ_LEN ? "auto" : h.seq_len,
  };
  return m.type === "dpo" ? { ...fixed, beta: m.hyperparameters.beta === "auto" ? AUTO_BETA : m.hyperparameters.beta, method: "dpo" } : fixed;
}

/**
 * The adapter fields in one spelling. A new adapter's are the request's with the defaults; a continued
 * model's come from that model, so the request's own fields (only dropout defaults, to 0) are the request.
 */
function adapterAsRun(body: CreateJobBody) {
  const a = body.adapter ?? {};
  if (body.model.startsWith("ft:")) return { ...a, type: undefined, dropout: a.dropout ?? 0, target_modules: a.target_modules && modulesAsRun(a.target_modules) };
  const full = adapterWithDefaults(a);
  return { ...full, target_modules: modulesAsRun(full.target_modules) };
}

/** Target modules in one spelling: sorted, once each, and every linear module as "all-linear". */
function modulesAsRun(t: AdapterInput["target_modules"]): string | string[] {
  const list = t === "all-linear" ? [...linearModules] : [...new Set(t)].sort();
  return list.length === linearModules.length ? "all-linear" : list;
}

/** The job for this key: created now, or (replayed) the one an earlier attempt created, as it is now. */
export async function createJobOnce(c: Context<AppEnv>, body: CreateJobBody, key: string): Promise<{ row: JobRow; replayed: boolean }> {
  const { db, now } = c.var.deps;
  const ref = { tenantId: c.var.tenant.tenantId, key, requestId: c.var.requestId };
  // The request as it will run: omitted and null fields, defaults written out or not, and hyperparameters in
  // `method` or at the top level are the same request.
  const normalised = {
    model: body.model,
    training_file: body.training_file,
    validation_file: body.validation_file ?? null,
    suffix: body.suffix ?? null,
    seed: body.seed ?? null,
    hyperparameters: fixedDefaults(requestedMethod(body)),
    adapter: adapterAsRun(body),
    metadata: body.metadata ?? null,
  };
  const claim = await claimKey<{ job_id: string }>(db, { ...ref, hash: await requestHash("fine_tuning.jobs", normalised), now: now() });
  if (claim.kind === "replay") {
    const row = await db.query.jobs.findFirst({ where: and(eq(jobs.id, claim.result.job_id), eq(jobs.tenantId, ref.tenantId)) });
    if (!row) throw new ApiError("internal_error", `the job this Idempotency-Key created (${claim.result.job_id}) is gone`);
    return { row, replayed: true };
  }
  const release = holdKey(db, ref, now);
  const attempt = (async () => {
    try {
      const row = await createJob(c.var.deps, c.var.tenant, body, {
        record: (jobId) => [settleKeyQuery(db, { ...ref, result: { job_id: jobId }, now: now() })],
        withdraw: () => [reopenKeyQuery(db, { ...ref, now: now() })],
      });
      // The key was taken over while this attempt stalled (past STALE_RUNNING_SECONDS without a heartbeat):
      // the other attempt's job is the one; this one is withdrawn before it trains or bills.
      const [held] = await db.select({ requestId: idempotencyKeys.requestId }).from(idempotencyKeys).where(and(eq(idempotencyKeys.tenantId, ref.tenantId), eq(idempotencyKeys.key, key)));
      if (held?.requestId !== ref.requestId) {
        await cancelJob(db, { jobId: row.id, tenantId: ref.tenantId, now: now() });
        throw new ApiError("conflict", `a retry with Idempotency-Key '${key}' created the job meanwhile; fetch it with the same key`, "Idempotency-Key", { "Retry-After": "1" });
      }
      return row;
    } catch (err) {
      await settleKey(db, { ...ref, result: null, now: now() }).catch((e: unknown) => console.error("settling an Idempotency-Key failed:", e));
      throw err;
    } finally {
      release();
    }
  })();
  keepRunning(c, attempt.catch(() => undefined));
  return { row: await attempt, replayed: false };
}
