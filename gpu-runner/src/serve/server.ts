// The runner's inference server: one serving worker (session + continuous batching) per base model,
// the adapter registry (disk tier, fetched from the API on a miss) and the internal HTTP protocol the
// API proxies to (docs/inference.md): POST /v1/generate as JSON or SSE, 429 + Retry-After when full.
import { secretsEqual } from "../../../api/src/lib/hash.js";
import { serve } from "@hono/node-server";
import { Hono, type Context } from "hono";
import { generateRequestSchema, type GenerateChoice, type GenerateEvent, type GenerateRequest, type GenerateResponse, type LogprobEntry, type ResponseFormat } from "../../../api/src/inference/runner-protocol.js";
import type { BatchingPolicy } from "./batch.js";
import { AdapterRegistry, type AdapterHandle } from "./registry.js";
import { SettledDeltas, type TokenDelta } from "./settled-deltas.js";
import { TenantShares } from "./tenant-share.js";
import { ApiAdapterSource, SourceError, type AdapterSource } from "./source.js";
import { assertReadableToolCalls, autoCallGrammar, toolCallGrammar } from "./tool-call.js";
import { GenerationError, ServeWorker } from "./worker-client.js";
import type { ServeResult, ServeSubmit } from "./worker-protocol.js";
import type { ToolCallFormat } from "../engine/tokenizer/tool-call-format.js";

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

const errorJson = (c: Context, status: 400 | 401 | 404 | 429 | 500 | 502 | 503, code: string, message: string, param: string | null = null) =>
  c.json({ error: { code, message, param } }, status);

function parseListen(listen: string): { host: string; port: number } {
  const m = listen.match(/^(.*):(\d+)$/);
  if (!m) throw new Error(`listen=${listen}: use host:port, e.g. 127.0.0.1:0`);
  return { host: m[1] || "127.0.0.1", port: Number(m[2]) };
}

/** Starts the workers (one per base model) and the HTTP server; resolves once it listens. */
export async function startInferenceServer(opts: InferenceServerOptions): Promise<InferenceServer> {
  const maxBatch = opts.maxBatch ?? 8;
  const maxQueue = opts.maxQueue ?? 4 * maxBatch;
  const workers = new Map<string, ServeWorker>();
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
  let closed = false;
  /** Each served model's folder, for starting its worker again. */
  const dirs = new Map<string, string>();
  /** Models registered but not served yet, with the error of their last download (null: downloading). */
  const notReady = new Map<string, string | null>();
  const restarts = new Map<string, Promise<ServeWorker>>();
  /**
   * The model's worker. One whose thread died (out of memory, say) has failed its requests; it is replaced, once
   * however many requests ask, so that the runner serves again rather than failing every request while its
   * heartbeat says it is fine.
   */
  const workerFor = (id: string): Promise<ServeWorker | undefined> | ServeWorker | undefined => {
    const old = workers.get(id);
    if (!old?.broken || closed) return old;
    let fresh = restarts.get(id);
    if (!fresh) {
      console.error(`serving worker of ${id} failed (${old.broken.message}); starting a new one`);
      fresh = startWorker(dirs.get(id)!)
        .then(async (w) => {
          // Closed meanwhile, or the model's files replaced (replaceModel put their worker in): this one, on the
          // old folder, is not wanted.
          const current = workers.get(id);
          if (closed || current !== old) {
            await w.close();
            return closed || !current ? old : current;
          }
          workers.set(id, w);
          return w;
        })
        .finally(() => restarts.delete(id));
      restarts.set(id, fresh);
    }
    return fresh;
  };
  try {
    for (const [id, dir] of Object.entries(opts.models)) {
      dirs.set(id, dir);
      workers.set(id, await startWorker(dir));
    }
  } catch (err) {
    await Promise.all([...workers.values()].map((w) => w.close()));
    throw err;
  }
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
    for (const [id, w] of workers) models[id] = { in_flight: inFlight(id, w), ...(await w.stats().catch((err: Error) => ({ error: err.message }))) };
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
      const issue = parsed.error.issues[0];
      const param = issue.path.join(".") || null;
      return errorJson(c, 400, "invalid_request", param ? `${param}: ${issue.message}` : issue.message, param);
    }
    const body = parsed.data;
    let worker: ServeWorker | undefined;
    try {
      worker = await workerFor(body.model);
    } catch (err) {
      return errorJson(c, 500, "generation_failed", `base model ${body.model}: its serving worker failed and could not be started again: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!worker && notReady.has(body.model)) {
      const error = notReady.get(body.model);
      if (error) return errorJson(c, 502, "model_unavailable", `base model ${body.model} is not served by this runner yet: ${error}`, "model");
      c.header("Retry-After", LOADING_SECONDS_TO_RETRY);
      return errorJson(c, 503, "model_loading", `base model ${body.model}: its files are being downloaded to this runner; retry after ${LOADING_SECONDS_TO_RETRY} s`, "model");
    }
    if (!worker) return errorJson(c, 404, "model_not_served", `base model ${body.model} is not served here; this runner serves ${[...workers.keys()].join(", ")}`, "model");
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
    const current = workers.get(body.model);
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
      for (const w of workers.values()) w.forget(models);
    },
    async addModel(id, dir) {
      if (workers.has(id)) return;
      const worker = await startWorker(dir);
      // The server may have closed, or another call added the model, while the worker started.
      if (closed || workers.has(id)) return void (await worker.close());
      dirs.set(id, dir);
      workers.set(id, worker);
      notReady.delete(id);
    },
    modelNotReady(id, error) {
      if (!workers.has(id)) notReady.set(id, error);
    },
    async replaceModel(id, dir) {
      const fresh = await startWorker(dir);
      if (closed) return void (await fresh.close());
      const old = workers.get(id);
      dirs.set(id, dir);
      workers.set(id, fresh);
      await old?.closeWhenIdle();
    },
    async close() {
      closed = true;
      // The listener stays open until the answers in flight are done: the API's watch asks /healthz about a quiet
      // one (a long JSON answer) and would give up on it, and run it again elsewhere, were the runner unreachable.
      if (open > 0) await new Promise<void>((ok) => (drained = ok));
      await new Promise<void>((ok) => server.close(() => ok()));
      await Promise.allSettled(restarts.values());
      await Promise.all([...workers.values()].map((w) => w.close()));
    },
  };
}

/**
 * One sequence per choice; choice i samples with seed + i, so the choices differ. Without a seed the request
 * draws one at random, so that sampling differs from call to call as in OpenAI's API. `callFormat`: how the
 * model's chat template writes tool calls, which the calls' grammar follows.
 */
function toSubmits(b: GenerateRequest, id: string, adapter: ServeSubmit["adapter"], callFormat: ToolCallFormat | null): ServeSubmit[] {
  const seed = b.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  // "auto" reads the calls the model writes: only in a format this server knows (a 400 naming tool_choice).
  if (b.response_format === "tool_auto") assertReadableToolCalls(callFormat);
  // Throws (a 400 naming the tool's parameters) for what the grammar cannot enforce.
  const tools = "messages" in b.input ? (b.input.tools ?? []) : [];
  const grammar = b.response_format === "tool_call" ? toolCallGrammar(tools, b.tool_names ?? [], { format: callFormat }) : b.json_schema ? { jsonSchema: b.json_schema } : {};
  const autoCalls = b.response_format === "tool_auto" ? autoCallGrammar(tools, b.tool_names ?? [], callFormat!) : null;
  return Array.from({ length: b.n }, (_, i) => ({
    id: b.n === 1 ? id : `${id}.${i}`,
    input: b.input,
    adapter,
    tenant: b.tenant,
    maxTokens: b.max_tokens,
    fitMaxTokens: b.fit_max_tokens,
    temperature: b.temperature,
    topP: b.top_p,
    topK: b.top_k,
    frequencyPenalty: b.frequency_penalty,
    presencePenalty: b.presence_penalty,
    logitBias: b.logit_bias,
    seed: (seed + i) % 2 ** 32,
    stop: b.stop,
    stream: b.stream,
    logprobs: b.logprobs ?? undefined,
    format: b.response_format,
    ...(b.tool_names ? { toolNames: b.tool_names } : {}),
    json: b.response_format !== "text" && b.response_format !== "tool_auto",
    ...grammar,
    ...(autoCalls ? { autoCalls: { ...autoCalls, parallel: b.parallel_tool_calls } } : {}),
  }));
}

/**
 * The response format the runner applies, said back so that the API can tell it from an older runner's silence;
 * with tool calls, the format the template writes them in, which the API reads them by.
 */
function formatOf(submits: ServeSubmit[], worker: ServeWorker): { response_format: ResponseFormat; tool_call_format?: ToolCallFormat } {
  const format = submits[0].format ?? "text";
  const calls = (format === "tool_auto" || format === "tool_call") && worker.toolCallFormat;
  return { response_format: format, ...(calls ? { tool_call_format: calls } : {}) };
}

/** Usage over all choices: the prompt once (every choice read the same one), the completions summed. */
const totalUsage = (rs: ServeResult[]) => ({ prompt_tokens: rs[0].promptTokens, completion_tokens: rs.reduce((n, r) => n + r.completionTokens, 0) });

/** Runs every choice; the first to fail cancels the others. */
function generateAll(worker: ServeWorker, submits: ServeSubmit[], onToken: (i: number, token: number | null, text: string, logprob?: LogprobEntry) => void = () => {}, onStart: (n: number) => void = () => {}): Promise<ServeResult[]> {
  const all = Promise.all(submits.map((s, i) => worker.generate(s, (token, text, logprob) => onToken(i, token, text, logprob), onStart)));
  all.catch(() => submits.forEach((s) => worker.cancel(s.id)));
  return all;
}

function failure(c: Context, err: unknown): Response {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof GenerationError && err.invalid) {
    const param = msg.match(/^([a-z_][\w.$]*):/)?.[1] ?? null;
    return errorJson(c, 400, "invalid_request", msg, param);
  }
  return errorJson(c, 500, "generation_failed", msg);
}

async function jsonGeneration(c: Context, worker: ServeWorker, submits: ServeSubmit[], release: (err?: unknown) => void): Promise<Response> {
  // The caller went away (the API gave up on this runner while it was frozen): nobody will read the answer.
  const gone = () => submits.forEach((s) => worker.cancel(s.id));
  c.req.raw.signal.addEventListener("abort", gone, { once: true });
  // Gone before this point (while the runner read the request or fetched the adapter): no event will come.
  if (c.req.raw.signal.aborted) gone();
  let failed: unknown;
  try {
    const rs = await generateAll(worker, submits);
    const choices: GenerateChoice[] = rs.map((r) => ({ text: r.text, tokens: r.tokens, finish_reason: r.finishReason, ...(r.logprobs ? { logprobs: r.logprobs } : {}) }));
    const out: GenerateResponse = { text: rs[0].text, tokens: rs[0].tokens, finish_reason: rs[0].finishReason, usage: totalUsage(rs), choices, ...formatOf(submits, worker) };
    return c.json(out);
  } catch (err) {
    failed = err;
    return failure(c, err);
  } finally {
    c.req.raw.signal.removeEventListener("abort", gone);
    release(failed);
  }
}

/**
 * SSE: headers go out with the first token (or the request's error as a plain JSON error), then one
 * `data:` event per token and a final done or error event. A client that disconnects cancels the sequence.
 * The first delta carries `prompt_tokens` (the worker reports it before any token): with the deltas counted,
 * the API can bill a stream that is cut short.
 */
async function streamGeneration(c: Context, worker: ServeWorker, submits: ServeSubmit[], release: (err?: unknown) => void): Promise<Response> {
  const enc = new TextEncoder();
  const buffered: GenerateEvent[] = [];
  let push: ((e: GenerateEvent) => void) | null = null;
  let first: () => void = () => {};
  const started = new Promise<void>((ok) => (first = ok));
  const emit = (e: GenerateEvent) => (push ? push(e) : buffered.push(e));
  let promptTokens: number | undefined;
  let sentPrompt = false;
  const several = submits.length > 1;
  const send = (i: number, { token, text, logprob }: TokenDelta) => {
    // The first delta sent carries what the API checks and bills a stream cut short by.
    const opening = sentPrompt ? {} : { prompt_tokens: promptTokens, ...formatOf(submits, worker) };
    emit({ type: "delta", ...(several ? { index: i } : {}), text, token, ...opening, ...(logprob ? { logprob } : {}) });
    sentPrompt = true;
    first();
  };
  // A token's delta waits while its text_offset may still be cut by a stop string, so the stream's offsets are the JSON answer's.
  const settling = submits.map(() => new SettledDeltas());
  // Before done or error: the tokens cut by a stop string, and on a failure those generated (the API bills them).
  const sendHeld = () => settling.forEach((s, i) => s.end().forEach((d) => send(i, d)));
  const result = generateAll(
    worker,
    submits,
    (i, token, text, logprob) => settling[i].push({ token, text, logprob }).forEach((d) => send(i, d)),
    (n) => (promptTokens = n),
  ).then(
    (rs) => (release(), rs),
    (err: unknown) => {
      release(err);
      throw err;
    },
  );
  const ended = result.then(
    (rs) => {
      sendHeld();
      emit({ type: "done", finish_reason: rs[0].finishReason, ...(several ? { finish_reasons: rs.map((r) => r.finishReason) } : {}), usage: totalUsage(rs) });
    },
    (err: unknown) => {
      sendHeld();
      emit({ type: "error", message: err instanceof Error ? err.message : String(err) });
    },
  );
  // The client may leave while the request waits for a row or prefills: the stream's cancel() below is not
  // there yet, and without this the sequence would hold its place until its first token found the socket closed.
  const gone = () => submits.forEach((s) => worker.cancel(s.id));
  c.req.raw.signal.addEventListener("abort", gone, { once: true });
  if (c.req.raw.signal.aborted) gone();
  await Promise.race([started, result.catch(() => undefined)]);
  c.req.raw.signal.removeEventListener("abort", gone);
  if (!buffered.some((e) => e.type === "delta")) {
    // Failed before any token: an ordinary error answer, not a stream.
    const err = await result.then(() => null, (e: unknown) => e);
    if (err) return failure(c, err);
  }
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const write = (e: GenerateEvent) => {
        try {
          controller.enqueue(enc.encode(`data: ${JSON.stringify(e)}\n\n`));
          if (e.type !== "delta") controller.close();
        } catch {
          // The client went away (the stream was cancelled); nothing to tell it.
        }
      };
      for (const e of buffered.splice(0)) write(e);
      push = write;
      void ended;
    },
    cancel() {
      for (const s of submits) worker.cancel(s.id);
    },
  });
  return new Response(stream, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" } });
}
