// Main-thread handle on one serving worker: starts it for a model folder, submits generations (tokens
// stream back through a callback) and reads the scheduler's counters. The HTTP event loop stays free.
import { Worker } from "node:worker_threads";
import type { LogprobEntry } from "../../../api/src/inference/runner-protocol.js";
import type { SchedulerStats } from "./scheduler.js";
import type { ToolCallFormat } from "../engine/tokenizer/tool-call-format.js";
import type { FromWorker, ServeResult, ServeSubmit, ServeWorkerInit, ToWorker } from "./worker-protocol.js";

/** A generation the worker refused (`invalid`: the request is at fault) or failed (`badAdapter`: its adapter's files would not load). */
export class GenerationError extends Error {
  constructor(
    message: string,
    readonly invalid: boolean,
    readonly badAdapter?: string,
  ) {
    super(message);
    this.name = "GenerationError";
  }
}

type Pending = {
  onToken: (token: number | null, text: string, logprob?: LogprobEntry) => void;
  onStart: (promptTokens: number) => void;
  resolve: (r: ServeResult) => void;
  reject: (e: Error) => void;
};

export class ServeWorker {
  private readonly pending = new Map<string, Pending>();
  private readonly statsWaiters = new Map<string, { ok: (s: SchedulerStats) => void; fail: (e: Error) => void }>();
  private failed: Error | null = null;
  private nextStats = 1;
  /** Called when the worker confirms it stopped between steps (close()). */
  private onClosed: () => void = () => {};

  private constructor(
    private readonly worker: Worker,
    readonly vocab: number,
    /** How the model's chat template writes tool calls: the grammar of "auto" calls and of forced ones follows it. */
    readonly toolCallFormat: ToolCallFormat | null,
    /** Whether the template writes call ids (mistral_v11's `[CALL_ID]`): said back, so the API reads calls as the grammar held them. */
    readonly writesCallIds: boolean,
  ) {
    worker.on("message", (m: FromWorker) => this.onMessage(m));
    worker.on("error", (err) => this.failAll(err));
    worker.on("exit", (code) => this.failAll(new Error(`serving worker exited with code ${code}`)));
  }

  /** Starts a worker and opens the model in it; rejects with the worker's load error. */
  static async start(init: ServeWorkerInit): Promise<ServeWorker> {
    const worker = new Worker(new URL("./worker-entry.mjs", import.meta.url));
    const ready = await new Promise<{ vocab: number; toolCallFormat: ToolCallFormat | null; writesCallIds: boolean }>((ok, fail) => {
      const onMsg = (m: FromWorker) => {
        if (m.kind === "ready") ok(m);
        else if (m.kind === "initError") fail(new Error(`${init.modelDir}: ${m.message}`));
        else return;
        worker.off("message", onMsg);
      };
      worker.on("message", onMsg);
      worker.once("error", fail);
      worker.postMessage({ kind: "init", init } satisfies ToWorker);
    }).catch(async (err) => {
      await worker.terminate();
      throw err;
    });
    return new ServeWorker(worker, ready.vocab, ready.toolCallFormat, ready.writesCallIds);
  }

  private onMessage(m: FromWorker): void {
    if (m.kind === "stats") {
      this.statsWaiters.get(m.id)?.ok(m.stats);
      this.statsWaiters.delete(m.id);
      return;
    }
    if (m.kind === "closed") return this.onClosed();
    if (m.kind === "ready" || m.kind === "initError") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.kind === "start") return p.onStart(m.promptTokens);
    if (m.kind === "token") return p.onToken(m.token, m.text, m.logprob);
    this.pending.delete(m.id);
    if (m.kind === "done") p.resolve(m.result);
    else p.reject(new GenerationError(m.message, m.invalid, m.badAdapter));
  }

  private failAll(err: Error): void {
    // The first cause stays: a thread that throws emits "error", then "exit".
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.statsWaiters.values()) w.fail(err);
    this.statsWaiters.clear();
  }

  /** Why the worker can serve no more (its thread died or it was closed), or null while it serves. */
  get broken(): Error | null {
    return this.failed;
  }

  /** Sequences submitted and not yet finished. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Runs one generation; `onToken` sees each token and the text it released, `onStart` (streams) the prompt's token count first. */
  generate(req: ServeSubmit, onToken: Pending["onToken"] = () => {}, onStart: Pending["onStart"] = () => {}): Promise<ServeResult> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.pending.has(req.id)) return Promise.reject(new GenerationError(`request id ${req.id} is already running`, true));
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { onToken, onStart, resolve, reject });
      this.worker.postMessage({ kind: "submit", req } satisfies ToWorker);
    });
  }

  /** Stops a generation (the client went away); its promise rejects. */
  cancel(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.worker.postMessage({ kind: "cancel", id } satisfies ToWorker);
    p.reject(new GenerationError(`request ${id} was cancelled`, false));
  }

  /** Drops the worker's copies of adapters deleted through the API (a running row keeps its slot until it ends). */
  forget(adapters: string[]): void {
    if (!this.failed) this.worker.postMessage({ kind: "forget", adapters } satisfies ToWorker);
  }

  /** The scheduler's counters; rejects when the worker is gone (a dead thread would never answer). */
  stats(): Promise<SchedulerStats> {
    if (this.failed) return Promise.reject(this.failed);
    const id = String(this.nextStats++);
    return new Promise((ok, fail) => {
      this.statsWaiters.set(id, { ok, fail });
      this.worker.postMessage({ kind: "stats", id } satisfies ToWorker);
    });
  }

  /**
   * Closes the worker once the requests it runs are done (it takes no new ones from the server any more: its
   * model is served by a newer worker), or after `maxWaitMs`, failing those left.
   */
  async closeWhenIdle(maxWaitMs = 300_000, pollMs = 100): Promise<void> {
    const end = Date.now() + maxWaitMs;
    while (this.pending.size > 0 && !this.failed && Date.now() < end) await new Promise((ok) => setTimeout(ok, pollMs));
    await this.close();
  }

  /**
   * Asks the worker to stop after its current step (its requests left fail with a "shutting down" error), then
   * terminates the thread; after `deadlineMs` without an answer it terminates anyway. Terminating a thread inside
   * onnxruntime's session.run aborted the whole process once ("terminate called after throwing an instance of
   * 'Napi::Error'"), hence the step boundary.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    if (!this.failed) {
      this.failed = new Error("serving worker closed: the runner's inference server is shutting down");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((ok) => {
        timer = setTimeout(ok, deadlineMs);
        this.onClosed = ok;
        this.worker.once("exit", () => ok());
        this.worker.postMessage({ kind: "close" } satisfies ToWorker);
      });
      clearTimeout(timer);
    }
    this.worker.removeAllListeners("exit");
    this.failAll(new Error("serving worker closed"));
    await this.worker.terminate();
  }
}
