// Serving for blob-prefix base models: with no lease to hand out their URLs, the runner asks the API for them
// (GET /internal/v1/models/{id}/files), downloads the files into the model cache and adds the model to the
// inference server. A model the API does not know is dropped; a failed download is tried again with backoff.
// Served models are looked up again now and then: files replaced in the blob store (a new revision) are
// fetched into a new copy and the model's serving worker is replaced by one on them.
import { ApiCallError, type BaseModelFilesAnswer, type RunnerApiClient } from "./api-client.js";
import type { BaseModelCopy, ModelCache } from "./model-cache.js";
import type { Logger } from "./executor-deps.js";

export type BlobServingDeps = {
  /** Ids of the configured models without a local folder. */
  ids: string[];
  client: Pick<RunnerApiClient, "baseModelFiles">;
  cache: Pick<ModelCache, "acquire">;
  /** The inference server's addModel: starts a serving worker on the downloaded folder. */
  addModel(id: string, dir: string): Promise<void>;
  /** The inference server's replaceModel: serves the model from a new folder; resolves once the old worker is closed. */
  replaceModel(id: string, dir: string): Promise<void>;
  log: Logger;
  /** The inference server's modelNotReady: what requests for a model not served yet are told (null: downloading). */
  modelNotReady?(id: string, error: string | null): void;
  /** Called once for a model that will not be served after all (the API forgot it, or its files do not load). */
  giveUp?(id: string): void;
  /** Wait before the first retry, doubling up to maxMs (defaults 5 s and 5 min). */
  retry?: { firstMs: number; maxMs: number };
  /** How often served models are looked up again for replaced files (default 5 min). */
  checkEveryMs?: number;
};

/** One try at serving a model; `retry` says whether another try may help. */
export type ServeOutcome = { served: true; copy: BaseModelCopy } | { served: false; retry: boolean; message: string };

/**
 * The API says it has no such base model. Any other 404 (an API older than the files route, say) is not
 * that: the model stays registered for training and its serving is retried.
 */
const isUnknownModel = (err: unknown): err is ApiCallError => err instanceof ApiCallError && err.status === 404 && err.code === "not_found" && err.param === "model_id";

const unknownModel = (id: string, apiMessage: string) =>
  `base model ${id}: the API has no files for it (${apiMessage}); register it with POST /admin/v1/models (source "blob:<prefix>/"), upload its files there and restart the runner, or configure it as ${id}=/local/folder`;

export class BlobModelServing {
  /** Models still to serve, with the URLs from the look-up at start (used once, then asked for afresh). */
  private readonly pending = new Map<string, BaseModelFilesAnswer | null>();
  /** Served models, each with the copy its serving worker reads (held while it does). */
  private readonly served = new Map<string, BaseModelCopy>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  private check: Promise<void> | null = null;
  private rounds = 0;

  constructor(private readonly d: BlobServingDeps) {}

  /**
   * Asks the API once for each model's files. Returns the ids it does not know, each logged as an error: the
   * runner must not advertise them. Other failures (API unreachable) leave the model to the download rounds.
   */
  async lookUp(): Promise<string[]> {
    const unknown: string[] = [];
    await Promise.all(
      this.d.ids.map(async (id) => {
        try {
          this.pending.set(id, await this.d.client.baseModelFiles(id, this.abort.signal));
        } catch (err) {
          if (isUnknownModel(err)) {
            unknown.push(id);
            this.d.log("error", "not serving or training an unknown base model", { model: id, error: unknownModel(id, err.message) });
            return;
          }
          this.pending.set(id, null);
        }
        // Requests that come before its files are in are told so (503), not that the model is unknown here. (The
        // runner registers after this look-up, so none are routed here before it.) An unknown model stays a 404.
        this.d.modelNotReady?.(id, null);
      }),
    );
    return unknown;
  }

  /** Models now served from the cache. */
  get servedIds(): string[] {
    return [...this.served.keys()];
  }

  /** Starts the download rounds in the background; each model is served as soon as its files are in. */
  start(): void {
    if (this.round) return;
    this.round = this.runRound();
    this.scheduleCheck();
  }

  /** Stops retrying and breaks off running downloads (their half-fetched folders are fetched again next start). */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    await this.round;
    await this.check;
  }

  private scheduleCheck(): void {
    if (this.abort.signal.aborted) return;
    this.checkTimer = setTimeout(() => {
      this.check = this.checkServed().finally(() => this.scheduleCheck());
    }, this.d.checkEveryMs ?? 300_000);
    this.checkTimer.unref();
  }

  /**
   * Asks the API again for each served model's files: when they changed (a new revision), serves the model from a
   * fresh copy of them and lets go of the old one. Any failure keeps the model served as it is, until the next check.
   */
  private async checkServed(): Promise<void> {
    const { log } = this.d;
    const signal = this.abort.signal;
    for (const [id, old] of [...this.served]) {
      if (signal.aborted) return;
      let fresh: BaseModelCopy;
      try {
        fresh = await this.d.cache.acquire(await this.d.client.baseModelFiles(id, signal), signal);
      } catch (err) {
        if (!signal.aborted) log("warn", "checking a served base model for new files failed; it is served as it is", { model: id, error: (err as Error).message });
        continue;
      }
      if (fresh.dir === old.dir) {
        fresh.release();
        continue;
      }
      try {
        await this.d.replaceModel(id, fresh.dir);
      } catch (err) {
        fresh.release();
        log("error", "the new files of a served base model could not be loaded; still serving its previous files", { model: id, dir: fresh.dir, error: (err as Error).message });
        continue;
      }
      this.served.set(id, fresh);
      old.release();
      log("info", "serving the new files of a base model", { model: id, dir: fresh.dir });
    }
  }

  /** Gets one model's files and serves it. */
  private async serveOne(id: string, urls: BaseModelFilesAnswer | null): Promise<ServeOutcome> {
    const signal = this.abort.signal;
    try {
      urls ??= await this.d.client.baseModelFiles(id, signal);
    } catch (err) {
      if (isUnknownModel(err)) return { served: false, retry: false, message: unknownModel(id, err.message) };
      return { served: false, retry: true, message: `asking the API for the files of base model ${id}: ${(err as Error).message}` };
    }
    let copy: BaseModelCopy;
    try {
      copy = await this.d.cache.acquire(urls, signal);
    } catch (err) {
      // A local-folder source (files null) this machine cannot read stays unreadable; a download may work next time.
      // (The cache's errors name the model, and the file a download failed on.)
      return { served: false, retry: urls.files !== null, message: (err as Error).message };
    }
    try {
      await this.d.addModel(id, copy.dir);
    } catch (err) {
      copy.release();
      return { served: false, retry: false, message: `base model ${id} in ${copy.dir} could not be loaded for serving: ${(err as Error).message}; fix the files under ${urls.source} and restart the runner` };
    }
    return { served: true, copy };
  }

  private async runRound(): Promise<void> {
    const { log } = this.d;
    // One model at a time: downloads share the link, and each serving worker loads its weights on start.
    for (const [id, urls] of [...this.pending]) {
      if (this.abort.signal.aborted) return;
      const o = await this.serveOne(id, urls);
      if (this.abort.signal.aborted) return;
      if (o.served) {
        this.pending.delete(id);
        this.served.set(id, o.copy);
        log("info", "serving base model", { model: id, dir: o.copy.dir });
      } else if (!o.retry) {
        this.pending.delete(id);
        log("error", "not serving base model", { model: id, error: o.message });
        this.d.modelNotReady?.(id, o.message);
        this.d.giveUp?.(id);
      } else {
        this.pending.set(id, null);
        log("warn", "base model not served yet; trying again", { model: id, error: o.message });
        this.d.modelNotReady?.(id, `${o.message} (the runner tries again)`);
      }
    }
    if (this.pending.size === 0) return;
    const { firstMs, maxMs } = this.d.retry ?? { firstMs: 5_000, maxMs: 300_000 };
    const wait = Math.min(maxMs, firstMs * 2 ** this.rounds++);
    log("info", "retrying base model downloads", { models: [...this.pending.keys()], in_s: wait / 1000 });
    this.timer = setTimeout(() => (this.round = this.runRound()), wait);
    this.timer.unref();
  }
}
