// What handlers get injected through Hono's typed c.var: the ports (db, blobs, clock) and settings.
import type { BlobStore } from "./blob/port.js";
import type { ApiConfig } from "./config.js";
import type { Db } from "./db/client.js";
import type { QuotaOverrides } from "./quotas/limits.js";

export interface Deps {
  db: Db;
  blobs: BlobStore;
  config: ApiConfig;
  /** Unix seconds; injected so lease expiry can be tested without sleeping. */
  now: () => number;
  /** Secret that signs /blobs/ links of the local blob store; unset when blobs live in S3. */
  blobSigningSecret?: string;
  /** Reads files from the local disk (Node only): base models registered from a folder. */
  localFiles?: { read(path: string): Promise<Uint8Array | null>; exists(path: string): Promise<boolean> };
}

export interface TenantAuth {
  tenantId: string;
  keyId: string;
  /** The tenant's own quotas, read with its key (quotas/limits.ts). */
  quotas: QuotaOverrides;
}

export type AppEnv = {
  Variables: {
    deps: Deps;
    requestId: string;
    tenant: TenantAuth;
  };
};
