// Wiring of the Worker from its env: which blob store, where presigned links point, what the route serves.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { R2BlobStore } from "../../api/src/blob/r2.js";
import worker from "../../api/src/worker.js";
import { createWorkerDeps, parseWorkerEnv } from "../../api/src/worker-deps.js";

describe("createWorkerDeps", () => {
  it("uses the R2 binding and points links at the serving origin", async () => {
    const deps = await createWorkerDeps(env as unknown as Record<string, unknown>, "https://eu.tuneserve.test");
    expect(deps.blobs).toBeInstanceOf(R2BlobStore);
    expect(deps.blobSigningSecret).toBe(env.TUNESERVE_BLOB_SIGNING_SECRET);
    expect(deps.config.TUNESERVE_ADMIN_TOKEN).toBe(env.TUNESERVE_ADMIN_TOKEN);
    expect(await deps.blobs.presign("models/m/config.json", "GET", 60)).toMatch(/^https:\/\/eu\.tuneserve\.test\/blobs\/models\/m\/config\.json\?/);
  });

  it("prefers TUNESERVE_PUBLIC_URL over the request origin", async () => {
    const deps = await createWorkerDeps({ ...env, TUNESERVE_PUBLIC_URL: "https://api.example.com" }, "https://x.workers.dev");
    expect(await deps.blobs.presign("k", "PUT", 60)).toMatch(/^https:\/\/api\.example\.com\/blobs\/k\?method=PUT&/);
  });

  it("reads the tables through D1", async () => {
    const deps = await createWorkerDeps(env as unknown as Record<string, unknown>, "https://x.test");
    const rows = await deps.db.query.tenants.findMany({ limit: 1 });
    expect(Array.isArray(rows)).toBe(true);
  });

  it("names bad bindings and settings", () => {
    expect(() => parseWorkerEnv({ DB: {} })).toThrow(/DB must be a D1 binding/);
    expect(() => parseWorkerEnv({ DB: env.DB, BLOBS: "bucket" })).toThrow(/BLOBS must be an R2 bucket binding/);
    expect(() => parseWorkerEnv({ DB: env.DB, TUNESERVE_PUBLIC_URL: "api.example.com" })).toThrow(/TUNESERVE_PUBLIC_URL/);
    expect(() => parseWorkerEnv({ DB: env.DB, TUNESERVE_BLOB_SIGNING_SECRET: "short" })).toThrow(/at least 32/);
  });

  it("refuses bindings whose TUNESERVE_MAX_BLOB_BYTES is under twice TUNESERVE_MAX_ADAPTER_BYTES", async () => {
    const half = String(Number(env.TUNESERVE_MAX_BLOB_BYTES) / 2 + 1);
    await expect(createWorkerDeps({ ...env, TUNESERVE_MAX_ADAPTER_BYTES: half }, "https://x.test")).rejects.toThrow(
      /^invalid setting TUNESERVE_MAX_BLOB_BYTES: \d+ is under twice TUNESERVE_MAX_ADAPTER_BYTES \(\d+\);.*set TUNESERVE_MAX_BLOB_BYTES to at least \d+ or lower TUNESERVE_MAX_ADAPTER_BYTES$/,
    );
    // The Worker answers every request with the reason until the bindings are fixed.
    const res = await worker.fetch(new Request("https://x.test/health"), { ...env, TUNESERVE_MAX_ADAPTER_BYTES: half }, {});
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^the worker is misconfigured: invalid setting TUNESERVE_MAX_BLOB_BYTES: .*TUNESERVE_MAX_ADAPTER_BYTES/);
  });
});
