// The runner's inference server: one serving worker (session + continuous batching) per base model,
// the adapter registry (disk tier, fetched from the API on a miss) and the internal HTTP protocol the
// API proxies to (docs/inference.md): POST /v1/generate as JSON or SSE, 429 + Retry-After when full.
import { secretsEqual } from "../../../api/src/lib/hash.js";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { generateRequestSchema } from "../../../api/src/inference/runner-protocol.js";
import type { BatchingPolicy } from "./batch.js";
import { errorJson, failure } from "./error-answers.js";
import { jsonGeneration, streamGeneration } from "./generate-answers.js";
import { toSubmits } from "./generate-submits.js";
import { ModelWorkers } from "./model-workers.js";
import { AdapterRegistry, type AdapterHandle } from "./registry.js";
import { TenantShares } from "./tenant-share.js";
import { ApiAdapterSource, SourceError, type AdapterSource } from "./source.js";
import { GenerationError, ServeWorker } from "./worker-client.js";
import type { ServeSubmit } from "./worker-protocol.js";
import { describeIssue } from "../../../api/src/lib/zod-issue.js";

export type InferenceServerOptions = {
  apiUrl: string;
  runnerToken: string;
  /** host:port; port 0 picks a free one. */
  listen: string;
  /** Base model id → local model folder. */
  models: Record<string, string>;
  /** Local-disk tier of the adapter cache. */
  cacheDir: string;
  /** Sequences decoded together (default 8). */
  maxBatch?: number;
  /** Requests waiting beyond the batch before 429 (default 4 × maxBatch). */
  maxQueue?: number;
  /** LoRA slots per session, the base slot included (default 2 × maxBatch + 1: every row can have its own adapter, and as many more stay resident). */
  slots?: number;
  /** Slot rank: the largest adapter r served (default 16). */
  loraRank?: number;
  /** Longest prompt + max_tokens (default 512; each model caps it at its max_position_embeddings and sliding_window). */
  maxContext?: number;
  /** "mixed" (default) or the "per-adapter" baseline. */
  batching?: BatchingPolicy;
  /** Adapters kept on local disk (default 256) and parsed in host memory (default 64). */
  diskAdapters?: number;
  hostAdapters?: number;
  /** Overrides where adapters come from (default: the API). */
  source?: AdapterSource;
  threads?: number;
  /** This runner process's id, answered by /healthz so the API can tell it from an earlier process at the same URL. */
  instance?: string;
};

export type InferenceServer = {
  url: string;
  close(): Promise<void>;
  heldAdapters(): string[];
  /** Drops adapters deleted through the API (the heartbeat's gone_adapters) from every tier; in use, when released. */
  forgetAdapters(models: string[]): void;
  /** Starts serving one more base model (a blob-prefix model whose files arrived after the server started). */
  addModel(id: string, dir: string): Promise<void>;
  /**
   * Serves a base model from new files (its blob-store files were replaced): a worker on `dir` takes the new
   * requests, the old one finishes those it runs and closes; resolves once it has, so its folder may go.
   */
  replaceModel(id: string, dir: string): Promise<void>;
  /**
   * A blob-store model registered but not served yet: `error` null while its files download, else why they
   * could not be had. Requests for it get 503 model_loading or 502 model_unavailable; addModel ends it.
   */
  modelNotReady(id: string, error: string | null): void;
};

const SECONDS_TO_RETRY = "1";
/** A model's download takes seconds to minutes. */
const LOADING_SECONDS_TO_RETRY = "5";

function parseListen(listen: string): { host: string; port: number } {
  const m = listen.match(/^(.*):(\d+)$/);
  if (!m) throw new Error(`listen=${listen}: use host:port, e.g. 127.0.0.1:0`);
  return { host: m[1] || "127.0.0.1", port: Number(m[2]) };
}

/** Starts the workers (one per base model) and the HTTP server; resolves once it listens. */
export async function startInferenceServer(opts: InferenceServerOptions): Promise<InferenceServer> {
  const maxBatch = opts.maxBatch ?? 8;
  const maxQueue = opts.maxQueue ?? 4 * maxBatch;
  const startWorker = (dir: string) =>
    ServeWorker.start({
      modelDir: dir,
      maxBatch,
      maxContext: opts.maxContext ?? 512,
      slots: opts.slots ?? 2 * maxBatch + 1,
      rank: opts.loraRank ?? 16,
      policy: opts.batching ?? "mixed",
      hostAdapters: opts.hostAdapters ?? 64,
      threads: opts.threads,
    });
  const workers = await ModelWorkers.start(opts.models, startWorker);
  let closed = false;
  const shares = new TenantShares(maxBatch + Math.ceil(maxQueue / 2));
  const registry = new AdapterRegistry(opts.source ?? new ApiAdapterSource(opts.apiUrl, opts.runnerToken), opts.cacheDir, opts.diskAdapters ?? 256);
  await registry.open();
  let seq = 0;
  /** Each model's sequences admitted but still waiting for their adapter's files: not in the worker's count yet, they hold queue places too. */
  const awaitingAdapter = new Map<string, number>();
  const inFlight = (id: string, w: ServeWorker) => w.inFlight + (awaitingAdapter.get(id) ?? 0);

  const app = new Hono();
  app.use("*", async function runnerToken(c, next) {
    if (c.req.path === "/healthz") return next();
    if (!(await secretsEqual(c.req.header("Authorization") ?? "", `Bearer ${opts.runnerToken}`))) return errorJson(c, 401, "unauthorized", "send 'Authorization: Bearer <runner token>'");
    await next();
  });
  app.get("/healthz", (c) => c.json({ ok: true, ...(opts.instance ? { instance: opts.instance } : {}) }));
  app.get("/v1/status", async (c) => {
    const models: Record<string, unknown> = {};
    for (const [id, w] of workers.entries()) models[id] = { in_flight: inFlight(id, w), ...(await w.stats().catch((err: Error) => ({ error: err.message }))) };
    return c.json({ models, adapters: registry.held(), max_batch: maxBatch, max_queue: maxQueue });
  });
  app.post("/v1/generate", async (c) => {
    if (closed) {
      // Draining: the API takes a 5xx to the next runner. The connection closes after, so none idles into the listener's close.
      c.header("Retry-After", SECONDS_TO_RETRY);
      c.header("Connection", "close");
      return errorJson(c, 503, "shutting_down", "this runner is shutting down and takes no new generations; send the request to another runner");
    }
    const raw = await c.req.json().catch(() => undefined);
    const parsed = generateRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const { param, message } = describeIssue(parsed.error.issues[0], "request");
      return errorJson(c, 400, "invalid_request", param ? `${param}: ${message}` : message, param);
    }
    const body = parsed.data;
    let worker: ServeWorker | undefined;
    try {
      worker = await workers.for(body.model);
    } catch (err) {
      return errorJson(c, 500, "generation_failed", `base model ${body.model}: its serving worker failed and could not be started again: ${err instanceof Error ? err.message : String(err)}`);
    }
    const pending = worker ? null : workers.pending(body.model);
    if (pending) {
      const error = pending.error;
      if (error) return errorJson(c, 502, "model_unavailable", `base model ${body.model} is not served by this runner yet: ${error}`, "model");
      c.header("Retry-After", LOADING_SECONDS_TO_RETRY);
      return errorJson(c, 503, "model_loading", `base model ${body.model}: its files are being downloaded to this runner; retry after ${LOADING_SECONDS_TO_RETRY} s`, "model");
    }
    if (!worker) return errorJson(c, 404, "model_not_served", `base model ${body.model} is not served here; this runner serves ${workers.ids().join(", ")}`, "model");
    if (body.n > maxBatch + maxQueue) {
      return errorJson(c, 400, "invalid_request", `n: this runner runs or queues at most ${maxBatch + maxQueue} sequences; ask for fewer choices`, "n");
    }
    const held = inFlight(body.model, worker);
    if (held + body.n > maxBatch + maxQueue) {
      c.header("Retry-After", SECONDS_TO_RETRY);
      return errorJson(c, 429, "rate_limited", `runner is full (${held} sequences running or queued); retry after ${SECONDS_TO_RETRY} s`);
    }
    const share = body.tenant ? `${body.model}\n${body.tenant}` : null;
    if (share && !shares.take(share, body.n)) {
      c.header("Retry-After", SECONDS_TO_RETRY);
      return errorJson(c, 429, "rate_limited", `this tenant has ${shares.of(share)} sequences on this runner, its share of ${shares.limit} (the rest is kept for other tenants); retry after ${SECONDS_TO_RETRY} s`);
    }
    const giveBack = () => share && shares.give(share, body.n);
    let adapter: AdapterHandle | null = null;
    if (body.adapter) {
      // Counted until the worker counts them: generate() below takes them over synchronously.
      awaitingAdapter.set(body.model, (awaitingAdapter.get(body.model) ?? 0) + body.n);
      try {
        adapter = await registry.acquire(body.adapter, body.model);
      } catch (err) {
        giveBack();
        const msg = err instanceof Error ? err.message : String(err);
        return err instanceof SourceError && err.notFound ? errorJson(c, 404, "adapter_not_found", msg, "adapter") : errorJson(c, 502, "adapter_unavailable", msg, "adapter");
      } finally {
        const left = (awaitingAdapter.get(body.model) ?? 0) - body.n;
        if (left > 0) awaitingAdapter.set(body.model, left);
        else awaitingAdapter.delete(body.model);
      }
    }
    // Its files replaced while the adapter was fetched: the new worker takes the request (the old one is closing).
    const current = workers.current(body.model);
    if (current && current !== worker && !current.broken) worker = current;
    let submits: ServeSubmit[];
    try {
      submits = toSubmits(body, `${body.request_id}#${++seq}`, adapter ? { id: body.adapter!, dir: adapter.dir } : null, worker.toolCallFormat);
    } catch (err) {
      adapter?.release();
      giveBack();
      return failure(c, new GenerationError(err instanceof Error ? err.message : String(err), true));
    }
    const release = (err?: unknown) => {
      adapter?.release();
      giveBack();
      // The engine refused the adapter's files (a corrupt download, say): dropped, and fetched again by the next request.
      if (err instanceof GenerationError && err.badAdapter) adapter?.refuse(err.message);
    };
    return body.stream ? streamGeneration(c, worker, submits, release) : jsonGeneration(c, worker, submits, release);
  });

  const { host, port } = parseListen(opts.listen);
  /** Requests being answered (streams until their last event), and what close() waits on once they are done. */
  let open = 0;
  let drained: (() => void) | null = null;
  const server = await new Promise<ReturnType<typeof serve>>((ok) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }, () => ok(s));
    s.on("request", (_req, res) => {
      open++;
      res.once("close", () => --open === 0 && drained?.());
    });
  });
  const addr = server.address();
  const url = `http://${host}:${addr && typeof addr === "object" ? addr.port : port}`;
  return {
    url,
    heldAdapters: () => registry.held(),
    forgetAdapters(models) {
      for (const m of models) registry.invalidate(m);
      workers.forget(models);
    },
    addModel: (id, dir) => workers.add(id, dir),
    modelNotReady: (id, error) => workers.markNotReady(id, error),
    replaceModel: (id, dir) => workers.replace(id, dir),
    async close() {
      closed = true;
      workers.stop();
      // The listener stays open until the answers in flight are done: the API's watch asks /healthz about a quiet
      // one (a long JSON answer) and would give up on it, and run it again elsewhere, were the runner unreachable.
      if (open > 0) await new Promise<void>((ok) => (drained = ok));
      await new Promise<void>((ok) => server.close(() => ok()));
      await workers.close();
    },
  };
}

