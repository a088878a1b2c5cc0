// The local blob store of the embedded default: objects are files under one folder; presigned URLs are
// HMAC-signed links to this API's /blobs/ route (blob/route.ts), checked for method, key and expiry.
import { createWriteStream } from "node:fs";
import { copyFile, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { newId } from "../lib/ids.js";
import type { BlobBody, BlobInfo, BlobObject, BlobStore } from "./port.js";
import { signBlobUrl } from "./signed-links.js";

export interface FsBlobStoreOptions {
  root: string;
  /** Base URL of the API that serves /blobs/ (for presigned links). */
  publicUrl: string;
  signingSecret: string;
  /** Unix seconds; the /blobs/ route checks expiry against the API's clock, so links use the same one. */
  now?: () => number;
}

/** A file's version: put renames a fresh file into place (a new inode), and one copied over in place gets a new modification time. */
const fileVersion = (s: { ino: bigint; mtimeNs: bigint }) => `${s.ino}-${s.mtimeNs}`;

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  constructor(private readonly opts: FsBlobStoreOptions) {
    this.root = resolve(opts.root);
  }

  /** The server learns its own address only once it listens (port 0 in tests). */
  setPublicUrl(url: string): void {
    this.opts.publicUrl = url;
  }

  /**
   * Maps a key to a path inside the root. A key is plain relative segments: '.', '..' or empty ones would name
   * another file than the key reads ("tenants/a/../b/…" is tenant b's), a leading '/' one outside the root.
   * A prefix (`asPrefix`) may be empty or end with '/'.
   */
  private path(key: string, asPrefix = false): string {
    const segments = key.split("/");
    if (asPrefix && segments.length > 0 && segments[segments.length - 1] === "") segments.pop();
    const plain = segments.every((s) => s !== "" && s !== "." && s !== "..");
    if ((!key && !asPrefix) || key.includes("\0") || !plain) throw new Error(`invalid blob key '${key}'`);
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new Error(`invalid blob key '${key}'`);
    return p;
  }

  async put(key: string, body: BlobBody): Promise<{ size: number }> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    // Write to a temporary name and rename, so readers never see half an object.
    const tmp = `${target}.${newId("tmp")}.partial`;
    try {
      const source = typeof body === "string" || body instanceof Uint8Array ? Readable.from([typeof body === "string" ? Buffer.from(body) : body]) : Readable.fromWeb(body as never);
      await pipeline(source, createWriteStream(tmp));
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { size: (await stat(target)).size };
  }

  async get(key: string): Promise<BlobObject | null> {
    // Opened first, then stat'ed: the size and version are those of the file streamed, even when a put renames
    // another into place meanwhile (the open handle keeps reading the one it opened).
    const handle = await open(this.path(key), "r").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" || e.code === "EISDIR" || e.code === "ENOTDIR" ? null : Promise.reject(e)));
    if (!handle) return null;
    try {
      const s = await handle.stat({ bigint: true });
      if (!s.isFile()) {
        await handle.close();
        return null;
      }
      const stream = Readable.toWeb(handle.createReadStream()) as unknown as ReadableStream<Uint8Array>;
      return { body: stream, size: Number(s.size), version: fileVersion(s) };
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async copy(from: string, to: string): Promise<{ size: number } | null> {
    const source = this.path(from);
    const target = this.path(to);
    const s = await stat(source).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" || e.code === "ENOTDIR" ? null : Promise.reject(e)));
    if (!s?.isFile()) return null;
    await mkdir(dirname(target), { recursive: true });
    // As put: copied under a temporary name and renamed, so readers never see half a copy.
    const tmp = `${target}.${newId("tmp")}.partial`;
    try {
      await copyFile(source, tmp);
      // Measured before the rename: the size of what this call copied, whatever is written at `to` after.
      const size = (await stat(tmp)).size;
      await rename(tmp, target);
      return { size };
    } catch (e) {
      await rm(tmp, { force: true });
      // Deleted between the stat and the copy (a job's end, say).
      if ((e as NodeJS.ErrnoException).code === "ENOENT" && !(await this.head(from))) return null;
      throw e;
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { size: s.size } : null;
    } catch {
      return null;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    for await (const o of this.list(prefix)) {
      await this.delete(o.key);
      n++;
    }
    return n;
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    this.path(prefix, true);
    // The folder the prefix's keys lie under: the prefix itself when it ends with '/', else its parent.
    const folder = prefix.endsWith("/") ? prefix.slice(0, -1) : dirname(prefix) === "." ? "" : dirname(prefix);
    const start = folder ? this.path(folder) : this.root;
    const walk = async function* (dir: string): AsyncIterable<string> {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        const p = join(dir, e.name);
        if (e.isDirectory()) yield* walk(p);
        else if (!e.name.endsWith(".partial")) yield p;
      }
    };
    for await (const p of walk(start)) {
      const key = relative(this.root, p).split(sep).join("/");
      if (!key.startsWith(prefix)) continue;
      // Deleted since its folder was read (another caller's deletePrefix, say): it is no longer there to list.
      const info = await stat(p, { bigint: true }).then((s) => s, (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? null : Promise.reject(e)));
      if (info !== null) yield { key, size: Number(info.size), version: fileVersion(info) };
    }
  }

  async presign(key: string, method: "GET" | "PUT", expiresInSeconds: number): Promise<string> {
    this.path(key);
    const now = this.opts.now ? this.opts.now() : Math.floor(Date.now() / 1000);
    const expires = now + expiresInSeconds;
    const sig = await signBlobUrl(this.opts.signingSecret, method, key, expires);
    const url = new URL(`/blobs/${key.split("/").map(encodeURIComponent).join("/")}`, this.opts.publicUrl);
    url.searchParams.set("method", method);
    url.searchParams.set("expires", String(expires));
    url.searchParams.set("signature", sig);
    return url.toString();
  }
}
