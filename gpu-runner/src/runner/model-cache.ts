// Where a base model lives on this machine: a configured local folder is used in place; a blob-store model is
// downloaded through presigned URLs (a lease's, or the serving side's) into a folder of the cache named by the
// revision of its files, so that a model re-uploaded under the same file names is fetched anew, never over a
// copy a training job or serving worker is reading. Copies nothing holds any more are removed.
import { createHash } from "node:crypto";
import { access, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import type { LeaseAnswer } from "./api-client.js";
import type { ModelSpec } from "./config.js";
import { startShared, waitFor, type SharedDownload } from "./shared-download.js";
import { downloadTo, ObjectReplaced } from "./transfer.js";

type BaseModelUrls = LeaseAnswer["urls"]["base_model"];

/**
 * A base model folder in use: `release()` once done with it, so that a stale copy can be removed. `revision`: the
 * API's revision of a blob-store copy's files (null for a folder read in place), which training checkpoints record.
 */
export type BaseModelCopy = { dir: string; revision: string | null; release(): void };

/** Marker written into a copy, last, before it is renamed into place; a folder without it is not a copy. */
const completeMarker = ".tuneserve-complete.json";
/** Folders being filled: `<cache>/models/<id>/.part-<copy>`, kept when a download breaks off so the next one resumes it. */
const partPrefix = ".part-";
/** A copy's folder name: see copyName. */
const copyNamePattern = /^[0-9a-f]{24}$/;
const partNamePattern = /^\.part-[0-9a-f]{24}$/;
/** Where a copy's folder is filled. */
const partOf = (dir: string) => join(dirname(dir), partPrefix + basename(dir));

const exists = (p: string) => access(p).then(() => true, () => false);

/** A file name from the model's listing, refused when it could escape the cache folder. */
function safeRelative(name: string): string {
  const parts = name.split("/");
  if (!name || name.startsWith("/") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new Error(`base model file "${name}": not a plain relative path; re-upload the model without such names`);
  }
  return name;
}

/**
 * A copy's folder name: the API's revision of the files (which changes when any is replaced, added or
 * removed) with their names. An API older than the revision gives names only: a replaced file goes unseen.
 */
function copyName(model: BaseModelUrls, names: string[]): string {
  return createHash("sha256").update(JSON.stringify([model.revision ?? null, names])).digest("hex").slice(0, 24);
}

export class ModelCache {
  private readonly pending = new Map<string, SharedDownload<string>>();
  /** Holders of each copy's folder (training attempts, serving workers). */
  private readonly users = new Map<string, number>();
  /** The copy the API named last, per model: the one kept when nothing holds it. */
  private readonly current = new Map<string, string>();
  /** Folders being filled by this process, which a sweep leaves alone. */
  private readonly filling = new Set<string>();
  /** Folders being removed: a download of the same copy waits for the removal to end first. */
  private readonly removing = new Map<string, Promise<void>>();

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

  /**
   * Clears what an earlier process left that nothing will use: the folders of models no longer given as blob-store
   * models, and the layout before revisions. A broken-off download of a model still given stays, to be resumed (or
   * removed by the first sweep, when its revision is no longer current). Called once at start.
   */
  async open(): Promise<void> {
    const root = join(this.cacheDir, "models");
    const blob = new Set(this.models.filter((m) => m.dir === null).map((m) => m.id));
    for (const id of await readdir(root).catch(() => [])) {
      const folder = join(root, id);
      if (this.holdsLocalFolder(folder)) continue;
      if (!blob.has(id)) {
        if (await this.madeByCache(folder)) await rm(folder, { recursive: true, force: true });
        continue;
      }
      for (const name of await readdir(folder).catch(() => [])) {
        const p = join(folder, name);
        if (this.holdsLocalFolder(p)) continue;
        if (partNamePattern.test(name)) continue;
        if (!copyNamePattern.test(name) || !(await exists(join(p, completeMarker)))) await rm(p, { recursive: true, force: true });
      }
    }
  }

  /** Whether `p` is, or holds, a configured model folder (a cache folder set up around one): never removed. */
  private holdsLocalFolder(p: string): boolean {
    const folder = resolve(p) + sep;
    return this.models.some((m) => m.dir !== null && (resolve(m.dir) + sep).startsWith(folder));
  }

  /** Whether a model's folder holds only what this cache writes there (copies, downloads, the old layout's marker). */
  private async madeByCache(folder: string): Promise<boolean> {
    const names = await readdir(folder).catch(() => null);
    if (names === null) return false;
    return names.includes(completeMarker) || names.every((n) => copyNamePattern.test(n) || n.startsWith(partPrefix));
  }

  /**
   * The folder holding `model`'s files, downloading them first when they come from the blob store, held until
   * `release()`. Callers needing the same copy at once share one download.
   */
  async acquire(model: BaseModelUrls, signal?: AbortSignal): Promise<BaseModelCopy> {
    const configured = this.localDir(model.id);
    const inPlace = (dir: string): BaseModelCopy => ({ dir, revision: null, release: () => {} });
    if (configured) return inPlace(configured);
    if (!model.files) {
      // A local-folder source (the embedded default): readable here only when API and runner share a disk.
      if (await exists(join(model.source, "config.json"))) return inPlace(model.source);
      throw new Error(`base model ${model.id}: its source ${model.source} is a folder on the API's machine that this runner cannot read; configure it as ${model.id}=/local/folder`);
    }
    safeRelative(model.id);
    if (model.id.includes("/")) throw new Error(`base model id "${model.id}": holds "/"; register the model under an id without one`);
    const files = model.files;
    const names = Object.keys(files).map(safeRelative).sort();
    const dir = join(this.cacheDir, "models", model.id, copyName(model, names));
    this.current.set(model.id, dir);
    let shared = this.pending.get(dir);
    if (!shared) {
      const entry = startShared((s) => this.download(model, files, dir, names, s), (e) => this.pending.get(dir) === e && this.pending.delete(dir));
      shared = entry;
      this.pending.set(dir, entry);
    }
    await waitFor(shared, signal);
    this.users.set(dir, (this.users.get(dir) ?? 0) + 1);
    // Older copies nothing holds go now that this one is in; errors leave them to the next sweep.
    await this.sweep(model.id).catch(() => {});
    let released = false;
    return {
      dir,
      revision: model.revision ?? null,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.users.get(dir) ?? 1) - 1;
        if (left > 0) return void this.users.set(dir, left);
        this.users.delete(dir);
        if (this.current.get(model.id) !== dir && !this.pending.has(dir)) void this.remove(dir).catch(() => {});
      },
    };
  }

  /** Removes a model's folders that are neither its current copy (or that copy's download), held, nor being filled. */
  private async sweep(id: string): Promise<void> {
    const root = join(this.cacheDir, "models", id);
    const current = this.current.get(id);
    for (const name of await readdir(root)) {
      const p = join(root, name);
      if (p === current || (current && p === partOf(current)) || this.users.has(p) || this.pending.has(p) || this.filling.has(p) || this.holdsLocalFolder(p)) continue;
      await this.remove(p);
    }
  }

  private remove(p: string): Promise<void> {
    const running = this.removing.get(p);
    if (running) return running;
    const done = rm(p, { recursive: true, force: true }).finally(() => this.removing.delete(p));
    this.removing.set(p, done);
    return done;
  }

  /**
   * Fills a copy's folder: into its .part- folder, renamed into place once every file is in, so a crash never
   * leaves a folder that looks complete. Files an earlier try fetched whole are kept (a large model need not
   * start over when a URL expires or the link drops near its end); each arrives whole or not at all (downloadTo).
   * Each is checked against the listing the revision was made of, when the API sent it: a file replaced while the
   * model downloads fails the download rather than installing a mix of old and new files as the old revision.
   */
  private async download(model: BaseModelUrls, files: Record<string, string>, dir: string, names: string[], signal: AbortSignal): Promise<string> {
    const { id } = model;
    await this.removing.get(dir)?.catch(() => {});
    if (await exists(join(dir, completeMarker))) return dir;
    const tmp = partOf(dir);
    await this.removing.get(tmp)?.catch(() => {});
    this.filling.add(tmp);
    try {
      await mkdir(tmp, { recursive: true });
      for (const name of names) {
        const listed = model.objects?.[name];
        // A file an earlier try fetched (and checked) is kept; one of another size is not this revision's.
        const kept = await stat(join(tmp, name)).then((s) => listed === undefined || s.size === listed.size, () => false);
        if (kept) continue;
        try {
          await downloadTo(files[name], join(tmp, name), signal, listed);
        } catch (err) {
          if (signal.aborted) throw err;
          const gone = err instanceof ObjectReplaced ? `; revision ${model.revision ?? "(unnamed)"} of the model is no longer in the store, so its copy is not installed: the next try lists the files again and downloads the new revision` : "";
          (err as Error).message = `base model ${id}: downloading ${name}: ${(err as Error).message}${gone}`;
          throw err;
        }
      }
      await writeFile(join(tmp, completeMarker), JSON.stringify({ files: names, fetched_at: new Date().toISOString() }));
      // Not a copy (no marker: a crash mid-rename, or someone's files): replaced whole; nothing holds it, or it would have one.
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      return dir;
    } finally {
      this.filling.delete(tmp);
    }
  }
}
