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

export class ModelCache {
  private readonly pending = new Map<string, Promise<string>>();

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
    let p = this.pending.get(key);
    if (!p) {
      p = this.download(model.id, model.files, signal).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
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
