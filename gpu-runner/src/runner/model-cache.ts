// Where a base model lives on this machine: a configured local folder is used in place; a blob-store model is
// downloaded once through presigned URLs (a lease's, or the serving side's) into the cache folder and reused.
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LeaseAnswer } from "./api-client.js";
import type { ModelSpec } from "./config.js";
import { downloadTo } from "./transfer.js";

type BaseModelUrls = LeaseAnswer["urls"]["base_model"];

/** Marker written after every file of a cached model arrived; its absence means "download again". */
const completeMarker = ".tuneserve-complete.json";

const exists = (p: string) => access(p).then(() => true, () => false);

/** A file name from the model's listing, refused when it could escape the cache folder. */
function safeRelative(name: string): string {
  const parts = name.split("/");
  if (!name || name.startsWith("/") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new Error(`base model file "${name}": not a plain relative path; re-upload the model without such names`);
  }
  return name;
}

/** A download several jobs wait on: it stops only when every one of them has given up. */
type SharedDownload = { promise: Promise<string>; abort: AbortController; waiting: number; forget(): void };

export class ModelCache {
  private readonly pending = new Map<string, SharedDownload>();

  constructor(
    private readonly models: ModelSpec[],
    private readonly cacheDir: string,
  ) {}

  /** Base model ids this runner offers to the API. */
  get ids(): string[] {
    return this.models.map((m) => m.id);
  }

  /** The configured local folder of a model, if any (the inference side reads it too). */
  localDir(id: string): string | null {
    return this.models.find((m) => m.id === id)?.dir ?? null;
  }

  /** The folder holding `model`'s files, downloading them first when they come from the blob store. */
  async resolve(model: BaseModelUrls, signal?: AbortSignal): Promise<string> {
    const configured = this.localDir(model.id);
    if (configured) return configured;
    if (!model.files) {
      // A local-folder source (the embedded default): readable here only when API and runner share a disk.
      if (await exists(join(model.source, "config.json"))) return model.source;
      throw new Error(`base model ${model.id}: its source ${model.source} is a folder on the API's machine that this runner cannot read; configure it as ${model.id}=/local/folder`);
    }
    const key = `${model.id}`;
    let shared = this.pending.get(key);
    if (!shared) {
      const abort = new AbortController();
      const promise = this.download(model.id, model.files, abort.signal);
      // Done, failed or given up by all: the next caller starts a fresh download.
      const forget = () => this.pending.get(key) === entry && this.pending.delete(key);
      const entry: SharedDownload = { promise, abort, waiting: 0, forget };
      promise.then(forget, forget);
      shared = entry;
      this.pending.set(key, entry);
    }
    return waitFor(shared, signal);
  }

  private async download(id: string, files: Record<string, string>, signal?: AbortSignal): Promise<string> {
    const dir = join(this.cacheDir, "models", id);
    const names = Object.keys(files).map(safeRelative).sort();
    const marker = join(dir, completeMarker);
    try {
      const done = JSON.parse(await readFile(marker, "utf8")) as { files: string[] };
      if (JSON.stringify(done.files) === JSON.stringify(names)) return dir;
    } catch {
      // not cached yet, or a download broke off: fetch everything again
    }
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const name of names) await downloadTo(files[name], join(dir, name), signal);
    await writeFile(marker, JSON.stringify({ files: names, fetched_at: new Date().toISOString() }));
    return dir;
  }
}

/**
 * Waits on a shared download as one of its callers. A caller that gives up (its job was cancelled, paused or
 * replaced by a newer lease) stops waiting at once, but the download goes on for the others; only when every
 * caller has given up is it aborted.
 */
function waitFor(shared: SharedDownload, signal?: AbortSignal): Promise<string> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  shared.waiting++;
  return new Promise<string>((ok, fail) => {
    let waiting = true;
    const leave = () => {
      if (!waiting) return;
      waiting = false;
      signal?.removeEventListener("abort", giveUp);
      shared.waiting--;
    };
    const giveUp = () => {
      leave();
      if (shared.waiting === 0) {
        shared.forget();
        shared.abort.abort(signal!.reason);
      }
      fail(signal!.reason);
    };
    signal?.addEventListener("abort", giveUp, { once: true });
    shared.promise.then(
      (dir) => (leave(), ok(dir)),
      (err: unknown) => (leave(), fail(err)),
    );
  });
}
