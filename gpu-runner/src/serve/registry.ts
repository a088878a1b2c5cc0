// The runner's adapter registry: metadata and status of every adapter it has seen, and the local-disk
// tier of the adapter cache (LRU with pins for in-flight requests). A miss fetches the files once (one
// download however many requests wait for it) from the AdapterSource.
import { access, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { LruTier } from "./cache.js";
import { ADAPTER_FILES, SourceError, type AdapterSource } from "./source.js";

export type AdapterStatus = "fetching" | "ready" | "failed";
/** `download`: which fetch of this runner brought the files (0: found on disk at start). */
export type AdapterRecord = { model: string; baseModel: string; dir: string; bytes: number; download: number };

/**
 * How long an adapter whose files the engine refused on two downloads in a row is answered with that refusal,
 * without fetching it again: the same bytes would be refused again (a rank or shape this runner cannot take).
 */
export const REFUSAL_MS = 10 * 60_000;

/** An acquired adapter: its folder, pinned until release; `refuse` reports that the engine could not load it. */
export type AdapterHandle = { dir: string; release(): void; refuse(message: string): void };

const metaSchema = z.object({ format: z.literal("tuneserve-adapter-cache"), version: z.literal(1), model: z.string(), base_model: z.string(), bytes: z.number().int() });
const META = "tuneserve-adapter.json";

/** A folder name for a model id (ids hold ':'; keep names portable). */
const folderName = (model: string) => Buffer.from(model).toString("base64url");

export class AdapterRegistry {
  private readonly disk: LruTier<string, AdapterRecord>;
  private readonly fetching = new Map<string, Promise<AdapterRecord>>();
  private readonly failures = new Map<string, string>();
  /** Entries whose files the engine could not load while requests held them: fetched again on the next acquire. */
  private readonly stale = new Set<string>();
  private downloads = 0;
  /** The download whose files the engine last refused, per adapter, until the next download replaces it. */
  private readonly refusedDownload = new Map<string, number>();
  /** The download that replaced a refused one, per adapter: refused too, it makes two in a row. */
  private readonly retryDownload = new Map<string, number>();
  /** Adapters refused on two downloads in a row: the engine's message, and until when it stands. */
  private readonly refused = new Map<string, { message: string; until: number }>();

  constructor(
    private readonly source: AdapterSource,
    private readonly cacheDir: string,
    diskCapacity = 256,
  ) {
    // An entry evicted while its files are being fetched again keeps its folder: the fetch is renaming the
    // new files into it (and adds the entry back).
    // A download that finds every entry pinned is indexed past the bound (its requests wait for it, and the
    // files are there); the tier shrinks back as those requests finish.
    this.disk = new LruTier("adapter disk", diskCapacity, (model, rec) => void (this.stale.delete(model), this.fetching.has(model) || rm(rec.dir, { recursive: true, force: true })), true);
  }

  /** Indexes adapters already on disk from an earlier run (the disk tier survives restarts). */
  async open(): Promise<void> {
    await mkdir(this.cacheDir, { recursive: true });
    for (const name of await readdir(this.cacheDir)) {
      if (name.includes(".part-")) {
        await rm(join(this.cacheDir, name), { recursive: true, force: true });
        continue;
      }
      const dir = join(this.cacheDir, name);
      const meta = metaSchema.safeParse(await readFile(join(dir, META), "utf8").then(JSON.parse, () => null));
      if (meta.success && this.disk.canInsert()) this.disk.set(meta.data.model, { model: meta.data.model, baseModel: meta.data.base_model, dir, bytes: meta.data.bytes, download: 0 });
      else if (!meta.success) await rm(dir, { recursive: true, force: true });
    }
  }

  status(model: string): AdapterStatus | null {
    if (this.disk.has(model)) return "ready";
    if (this.fetching.has(model)) return "fetching";
    return this.failures.has(model) || this.refused.has(model) ? "failed" : null;
  }

  /** Adapter model ids on local disk (what the runner reports as held), less those dropped while in use. */
  held(): string[] {
    return this.disk.keys().filter((model) => !this.stale.has(model));
  }

  /**
   * The adapter's folder, fetched on a miss, pinned until `release()`; throws SourceError when it
   * cannot be had, belongs to another base model, or was refused by the engine (see `refuse`).
   */
  async acquire(model: string, baseModel: string): Promise<AdapterHandle> {
    const refusal = this.refused.get(model);
    if (refusal && refusal.until > Date.now()) {
      throw new SourceError(`adapter ${model}: the engine refused its files on two downloads in a row (${refusal.message}); not fetched again before ${new Date(refusal.until).toISOString()}`, false);
    }
    this.refused.delete(model);
    let rec = this.disk.get(model);
    if (rec) {
      // Pinned before the check below awaits: a download finishing meanwhile must not evict it (and delete its files).
      this.disk.pin(model);
      // A folder removed from under the cache (a cleaned temp dir, a replaced disk) is fetched again, as are files the engine refused.
      if (this.stale.has(model) || !(await this.onDisk(rec))) {
        this.disk.unpin(model);
        rec = undefined;
      }
    }
    if (!rec) {
      let pending = this.fetching.get(model);
      if (!pending) {
        pending = this.download(model).finally(() => this.fetching.delete(model));
        this.fetching.set(model, pending);
      }
      rec = await pending;
      this.disk.pin(model);
    }
    if (rec.baseModel !== baseModel) {
      this.disk.unpin(model);
      throw new SourceError(`adapter ${model} applies to base model ${rec.baseModel}, not ${baseModel}`, true);
    }
    let released = false;
    const download = rec.download;
    return {
      dir: rec.dir,
      refuse: (message) => this.refuse(model, download, message),
      release: () => {
        if (!released && this.disk.has(model)) {
          this.disk.unpin(model);
          // Dropped while in use (see invalidate) and not fetched again since: it goes with its last user.
          if (this.stale.has(model) && this.disk.pins(model) === 0) this.disk.delete(model);
        }
        released = true;
      },
    };
  }

  /**
   * Drops an adapter: one whose files the engine could not load (a corrupt download, say), so that the next
   * request fetches it again instead of failing on the same files until they are evicted; or one deleted through
   * the API, so that its weights leave the runner. In use, it goes when its last request releases it.
   */
  invalidate(model: string): void {
    if (!this.disk.has(model)) return;
    if (this.disk.pins(model) === 0) this.disk.delete(model);
    else this.stale.add(model);
  }

  /**
   * The engine could not load the adapter's files: they are dropped (see invalidate), so the next request fetches
   * them again, which mends a corrupt download. Refused again after that fetch, the adapter is answered with the
   * refusal for REFUSAL_MS instead of being fetched for every request.
   */
  private refuse(model: string, download: number, message: string): void {
    if (this.retryDownload.get(model) === download) {
      this.refused.set(model, { message, until: Date.now() + REFUSAL_MS });
      this.retryDownload.delete(model);
    } else this.refusedDownload.set(model, download);
    this.invalidate(model);
  }

  private async onDisk(rec: AdapterRecord): Promise<boolean> {
    return Promise.all(ADAPTER_FILES.map((name) => access(join(rec.dir, name)))).then(
      () => true,
      () => false,
    );
  }

  private async download(model: string): Promise<AdapterRecord> {
    try {
      const got = await this.source.fetch(model);
      const dir = join(this.cacheDir, folderName(model));
      const tmp = `${dir}.part-${process.pid}-${Date.now()}`;
      await mkdir(tmp, { recursive: true });
      let bytes = 0;
      for (const name of ADAPTER_FILES) {
        await writeFile(join(tmp, name), got.files[name]);
        bytes += got.files[name].length;
      }
      await writeFile(join(tmp, META), JSON.stringify({ format: "tuneserve-adapter-cache", version: 1, model, base_model: got.baseModel, bytes }));
      // Whole folder or nothing: a crash mid-download leaves only a .part folder.
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      // The folder of an entry that vanished was restored: its requests in flight keep it pinned, so the entry stays.
      const kept = this.disk.get(model);
      const rec = Object.assign(kept ?? { model, dir }, { baseModel: got.baseModel, bytes, download: ++this.downloads });
      // Only the download right after a refusal can make it two in a row: one the engine took ends the run.
      if (this.refusedDownload.delete(model)) this.retryDownload.set(model, rec.download);
      else this.retryDownload.delete(model);
      if (!kept) this.disk.set(model, rec);
      this.stale.delete(model);
      this.failures.delete(model);
      return rec;
    } catch (err) {
      this.failures.set(model, err instanceof Error ? err.message : String(err));
      throw err;
    }
  }
}
