// The serving workers of an inference server, one per base model: started, restarted when their thread dies,
// added once a model's files arrive, replaced when its files change, and the models not served yet.
import type { ServeWorker } from "./worker-client.js";

export class ModelWorkers {
  private readonly workers = new Map<string, ServeWorker>();
  /** Each served model's folder, for starting its worker again. */
  private readonly dirs = new Map<string, string>();
  /** Models registered but not served yet, with the error of their last download (null: downloading). */
  private readonly notReady = new Map<string, string | null>();
  private readonly restarts = new Map<string, Promise<ServeWorker>>();
  private stopped = false;

  private constructor(private readonly startWorker: (dir: string) => Promise<ServeWorker>) {}

  /** Starts a worker for each model (id → folder); if one fails, those started are closed. */
  static async start(models: Record<string, string>, startWorker: (dir: string) => Promise<ServeWorker>): Promise<ModelWorkers> {
    const pool = new ModelWorkers(startWorker);
    try {
      for (const [id, dir] of Object.entries(models)) {
        pool.dirs.set(id, dir);
        pool.workers.set(id, await startWorker(dir));
      }
    } catch (err) {
      await Promise.all([...pool.workers.values()].map((w) => w.close()));
      throw err;
    }
    return pool;
  }

  /** The models served, each with its current worker. */
  entries(): IterableIterator<[string, ServeWorker]> {
    return this.workers.entries();
  }

  ids(): string[] {
    return [...this.workers.keys()];
  }

  /** The model's current worker, as it is (a broken one is not replaced here). */
  current(id: string): ServeWorker | undefined {
    return this.workers.get(id);
  }

  /**
   * The model's worker. One whose thread died (out of memory, say) has failed its requests; it is replaced, once
   * however many requests ask, so that the runner serves again rather than failing every request while its
   * heartbeat says it is fine.
   */
  for(id: string): Promise<ServeWorker | undefined> | ServeWorker | undefined {
    const old = this.workers.get(id);
    if (!old?.broken || this.stopped) return old;
    let fresh = this.restarts.get(id);
    if (!fresh) {
      console.error(`serving worker of ${id} failed (${old.broken.message}); starting a new one`);
      fresh = this.startWorker(this.dirs.get(id)!)
        .then(async (w) => {
          // Closed meanwhile, or the model's files replaced (replaceModel put their worker in): this one, on the
          // old folder, is not wanted.
          const current = this.workers.get(id);
          if (this.stopped || current !== old) {
            await w.close();
            return this.stopped || !current ? old : current;
          }
          this.workers.set(id, w);
          return w;
        })
        .finally(() => this.restarts.delete(id));
      this.restarts.set(id, fresh);
    }
    return fresh;
  }

  /** Whether the model is registered but not served yet, and the error of its last download (null: downloading). */
  pending(id: string): { error: string | null } | null {
    return this.notReady.has(id) ? { error: this.notReady.get(id) ?? null } : null;
  }

  /** Starts serving one more model; a no-op if it is served already. */
  async add(id: string, dir: string): Promise<void> {
    if (this.workers.has(id)) return;
    const worker = await this.startWorker(dir);
    // The server may have closed, or another call added the model, while the worker started.
    if (this.stopped || this.workers.has(id)) return void (await worker.close());
    this.dirs.set(id, dir);
    this.workers.set(id, worker);
    this.notReady.delete(id);
  }

  /** A model not served yet: `error` null while its files download, else why they could not be had. */
  markNotReady(id: string, error: string | null): void {
    if (!this.workers.has(id)) this.notReady.set(id, error);
  }

  /** A worker on `dir` takes the model's new requests; resolves once the old one finished those it runs and closed. */
  async replace(id: string, dir: string): Promise<void> {
    const fresh = await this.startWorker(dir);
    if (this.stopped) return void (await fresh.close());
    const old = this.workers.get(id);
    this.dirs.set(id, dir);
    this.workers.set(id, fresh);
    await old?.closeWhenIdle();
  }

  /** Drops adapters deleted through the API from every worker. */
  forget(adapters: string[]): void {
    for (const w of this.workers.values()) w.forget(adapters);
  }

  /** No worker starts, restarts or is added from now on (the server is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** Closes every worker, once the restarts in flight have settled. */
  async close(): Promise<void> {
    this.stop();
    await Promise.allSettled(this.restarts.values());
    await Promise.all([...this.workers.values()].map((w) => w.close()));
  }
}
