// Assembles one runner from its settings: register with the API, start the inference server (when given),
// heartbeat the adapters it holds, and run the lease loop. Used by `tuneserve runner` and `tuneserve serve`.
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { RESUMABLE_CHECKPOINT_VERSIONS } from "../engine/train/checkpoint.js";
import { ApiCallError, isSuperseded, RunnerApiClient, type RegisteredRunner } from "./api-client.js";
import { BlobModelServing } from "./blob-serving.js";
import type { RunnerConfig } from "./config.js";
import { LeaseLoop } from "./lease-loop.js";
import { ModelCache } from "./model-cache.js";
import type { Logger, TrainingStarter } from "./executor-deps.js";
import type { InferenceServer } from "../serve/server.js";

export type RunningRunner = {
  id: string;
  name: string;
  /** The inference server's URL, when one runs. */
  url: string | null;
  loop: LeaseLoop;
  stop(): Promise<void>;
};

/** JSON lines on stdout: one object per event, easy to grep and to parse in tests. */
export const jsonLogger =
  (name: string): Logger =>
  (level, msg, data = {}) => {
    const line = JSON.stringify({ t: new Date().toISOString(), level, runner: name, msg, ...data });
    if (level === "error") console.error(line);
    else console.log(line);
  };

/** The engine's worker-thread trainer, loaded on first use so an idle runner does not load onnxruntime. */
const engineTrainer: TrainingStarter = (spec, onEvent) => {
  let inner: { cancel(): void; suspend(): void } | null = null;
  // What was asked before the worker existed (a cancel stays a cancel).
  let asked: "cancel" | "suspend" | null = null;
  const result = import("../engine/train/loop.js").then((m) => {
    const w = m.startTrainingWorker(spec, onEvent);
    inner = w;
    if (asked === "cancel") w.cancel();
    else if (asked === "suspend") w.suspend();
    return w.result;
  });
  return {
    result,
    cancel() {
      asked = "cancel";
      inner?.cancel();
    },
    suspend() {
      if (asked !== "cancel") asked = "suspend";
      inner?.suspend();
    },
  };
};

/**
 * The runner's inference server (gpu-runner/src/serve), serving the models with a local folder from the start;
 * blob-store models join once their files are in the cache (BlobModelServing). Started before registering, so
 * that its URL can be announced; its module (and ORT) is loaded only when inference is on.
 */
async function serveInference(config: RunnerConfig, instance: string): Promise<InferenceServer> {
  const local = Object.fromEntries(config.models.filter((m) => m.dir !== null).map((m) => [m.id, m.dir!]));
  const { startInferenceServer } = await import("../serve/server.js");
  return startInferenceServer({ apiUrl: config.apiUrl, runnerToken: config.token, listen: config.listen, models: local, cacheDir: join(config.cacheDir, "adapters"), maxBatch: config.capacity, maxContext: config.maxContext, loraRank: config.loraRank, instance });
}

/** Registers the runner, starts serving and leasing; resolves once registered. */
export async function startRunner(config: RunnerConfig, opts: { log?: Logger; onSuperseded?: () => void } = {}): Promise<RunningRunner> {
  const log = opts.log ?? jsonLogger(config.name);
  /** Another process registered this runner's name since: two runners must not share one id, so this one stops (once). */
  let supersededOnce = false;
  const superseded = (err: Error) => {
    if (supersededOnce) return;
    supersededOnce = true;
    log("error", "another process has registered this runner's name; this one stops (give each runner its own name)", { error: err.message });
    void handle.stop().then(
      () => opts.onSuperseded?.(),
      (e: unknown) => (log("error", "stopping failed", { error: (e as Error).message }), opts.onSuperseded?.()),
    );
  };
  // This process: a restart under the same name is told from a second runner given the name by it.
  const instance = randomUUID();
  const client = new RunnerApiClient(config.apiUrl, config.token, undefined, instance);
  const models = new ModelCache(config.models, config.cacheDir);
  const inference = config.inference === "on" ? await serveInference(config, instance) : null;
  const url = config.publicUrl ?? inference?.url ?? null;
  const blobIds = config.models.filter((m) => m.dir === null).map((m) => m.id);
  const blobServing =
    inference && blobIds.length
      ? new BlobModelServing({
          ids: blobIds,
          client,
          cache: models,
          addModel: (id, dir) => inference.addModel(id, dir),
          replaceModel: (id, dir) => inference.replaceModel(id, dir),
          modelNotReady: (id, error) => inference.modelNotReady(id, error),
          giveUp: (id) => void withdraw(id),
          log,
          checkEveryMs: config.modelCheckSeconds * 1000,
        })
      : null;
  // A model the API does not know can neither be served nor leased: leave it out of what the runner offers.
  const unknown = new Set(blobServing ? await blobServing.lookUp() : []);
  const offered = new Set(models.ids.filter((id) => !unknown.has(id)));
  // The checkpoint formats its engine resumes: the API leases it no job whose checkpoint it would refuse.
  const checkpointFormats = [...RESUMABLE_CHECKPOINT_VERSIONS];
  const register = (): Promise<RegisteredRunner> =>
    client.register({ name: config.name, url: url ?? undefined, models: [...offered], capacity: config.capacity, checkpoint_formats: checkpointFormats });
  /** Stops offering a model found unusable after registering (re-registering replaces the list), so the API routes nothing more to it here. */
  async function withdraw(id: string): Promise<void> {
    offered.delete(id);
    try {
      await register();
      log("info", "re-registered without a base model it cannot serve", { model: id, models: [...offered] });
    } catch (err) {
      if (isSuperseded(err)) return superseded(err as Error);
      log("warn", "re-registering without a base model failed; it stays listed until the next registration", { model: id, error: (err as Error).message });
    }
  }
  // Refused (another live runner has the name) or unreachable: the process must not stay up serving unannounced.
  const me = await register().catch(async (err: unknown) => {
    await inference?.close();
    throw err;
  });
  // A process killed mid-attempt (SIGKILL, out of memory) left its attempt's folder: a tenant's data and
  // optimizer state that no one will use. Only once registered: a second process refused the name (a second
  // `tuneserve serve` on one data folder) shares the cache folder with the live runner's attempts in progress.
  await rm(join(config.cacheDir, "jobs"), { recursive: true, force: true });
  // Likewise base model downloads it broke off, and the copies of models this runner is no longer given.
  await models.open();
  log("info", "registered", { runner_id: me.id, models: [...offered], url, lease_seconds: me.lease_seconds, checkpoint_formats: checkpointFormats });
  for (const id of me.unregistered_models ?? []) {
    log("warn", "the API has no base model of this id: it answers requests for it with 404 and queues no jobs for it until an admin registers it (POST /admin/v1/models)", { model: id });
  }
  blobServing?.start();

  const loop = new LeaseLoop({
    client,
    register,
    runnerId: me.id,
    leaseSeconds: me.lease_seconds,
    trainingJobs: config.trainingJobs,
    pollSeconds: config.pollSeconds,
    pollMaxSeconds: config.pollMaxSeconds,
    executor: {
      runnerName: config.name,
      models,
      workRoot: join(config.cacheDir, "jobs"),
      checkpointEvery: config.checkpointEvery,
      shutdownCheckpointMs: config.shutdownCheckpointSeconds * 1000,
      spinTraining: !inference,
      startTraining: engineTrainer,
      log,
    },
    onSuperseded: (err) => superseded(err),
  });
  loop.start();

  // Runner liveness plus the adapters the inference cache holds, so the API routes requests well; under the
  // loop's current id, which registering again (after the API forgot the runner) changes.
  let beating: Promise<unknown> = Promise.resolve();
  const beat = () => (beating = heartbeatOnce());
  const heartbeatOnce = async () => {
    try {
      const answer = await client.runnerHeartbeat(loop.currentRunnerId, { adapters: inference?.heldAdapters(), load: loop.jobs.length });
      // Adapters deleted through the API since: their weights leave this runner too.
      if (inference && answer.gone_adapters?.length) {
        inference.forgetAdapters(answer.gone_adapters);
        log("info", "dropped adapters deleted through the API", { models: answer.gone_adapters });
      }
    } catch (err) {
      if (isSuperseded(err)) return superseded(err as Error);
      if (err instanceof ApiCallError && err.status === 404) return loop.reRegister();
      log("warn", "runner heartbeat failed", { error: (err as Error).message });
    }
  };
  const timer = setInterval(() => void beat(), Math.max(1000, (me.lease_seconds * 1000) / 3));
  timer.unref();

  let stopped: Promise<void> | null = null;
  const handle: RunningRunner = {
    id: me.id,
    name: config.name,
    url,
    loop,
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(timer);
        // No lease call from here on (one would mark the runner live again); its jobs go on to their checkpoints.
        await loop.stopLeasing();
        // Then the API routes no new request here while the answers in flight finish; best effort.
        await beating;
        await client.stopping(loop.currentRunnerId).catch((err: Error) => log("warn", "could not tell the API this runner is stopping; it stops routing here once the lease period passes", { error: err.message }));
        await blobServing?.stop();
        await loop.stop();
        await inference?.close();
        log("info", "stopped", { runner_id: me.id });
      })()),
  };
  return handle;
}
