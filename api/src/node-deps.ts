// Wires the Node deployment: libsql file + local or S3 blob store under one data folder, secrets kept there too.
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { FsBlobStore } from "./blob/fs.js";
import type { BlobStore } from "./blob/port.js";
import { parseApiConfig } from "./config.js";
import { openLibsql } from "./db/libsql.js";
import type { Deps } from "./deps.js";
import { newSecret } from "./lib/ids.js";

export interface NodeDepsOptions {
  dataDir: string;
  publicUrl: string;
  env?: Record<string, string | undefined>;
  /** Overrides the blob store (S3 when TUNESERVE_S3_BUCKET is set; else local files). */
  blobs?: BlobStore;
}

/** Secrets the embedded default creates once and keeps in the data folder (mode 0600). */
async function loadSecrets(dataDir: string): Promise<{ admin: string; runner: string; blob: string }> {
  const path = join(dataDir, "secrets.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
    const s = { admin: newSecret("adm_"), runner: newSecret("run_"), blob: newSecret("blb_") };
    // "wx": two servers starting on one new folder must not each write their own secrets.
    await writeFile(path, JSON.stringify(s, null, 2), { mode: 0o600, flag: "wx" }).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
    return loadSecrets(dataDir);
  }
  // A damaged file is not replaced: new secrets would void the signed links, tokens and runners that use the old ones.
  const fields = ["admin", "runner", "blob"] as const;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const ok = typeof parsed === "object" && parsed !== null && fields.every((f) => typeof (parsed as Record<string, unknown>)[f] === "string");
  if (!ok) throw new Error(`${path}: not a JSON object with string fields ${fields.join(", ")}; restore it (or delete it to make new secrets, which voids the old tokens and signed links)`);
  return parsed as { admin: string; runner: string; blob: string };
}

export async function createNodeDeps(opts: NodeDepsOptions): Promise<{ deps: Deps; close(): void }> {
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const secrets = await loadSecrets(dataDir);
  const env = opts.env ?? process.env;
  const config = parseApiConfig({
    ...env,
    TUNESERVE_ADMIN_TOKEN: env.TUNESERVE_ADMIN_TOKEN ?? secrets.admin,
    TUNESERVE_RUNNER_TOKEN: env.TUNESERVE_RUNNER_TOKEN ?? secrets.runner,
  });
  const { db, close } = await openLibsql(join(dataDir, "tuneserve.sqlite"));
  const blobs =
    opts.blobs ??
    (await blobsFromEnv(env)) ??
    new FsBlobStore({ root: join(dataDir, "blobs"), publicUrl: opts.publicUrl, signingSecret: secrets.blob, now: () => deps.now() });
  const deps: Deps = {
    db,
    blobs,
    config,
    now: () => Math.floor(Date.now() / 1000),
    blobSigningSecret: blobs instanceof FsBlobStore ? secrets.blob : undefined,
    localFiles: {
      async read(path) {
        try {
          return new Uint8Array(await readFile(path));
        } catch {
          return null;
        }
      },
      exists: (path) => stat(path).then((s) => s.isFile(), () => false),
    },
  };
  return { deps, close };
}

/** An S3 store when TUNESERVE_S3_BUCKET is set (AWS, R2 or MinIO through endpoint + path-style). */
async function blobsFromEnv(env: Record<string, string | undefined>): Promise<BlobStore | null> {
  if (!env.TUNESERVE_S3_BUCKET) return null;
  const { S3BlobStore, s3ConfigFromEnv } = await import("./blob/s3.js");
  return new S3BlobStore(s3ConfigFromEnv(env));
}
