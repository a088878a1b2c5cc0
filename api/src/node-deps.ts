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
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch {
    const s = { admin: newSecret("adm_"), runner: newSecret("run_"), blob: newSecret("blb_") };
    await writeFile(path, JSON.stringify(s, null, 2), { mode: 0o600 });
    return s;
  }
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
