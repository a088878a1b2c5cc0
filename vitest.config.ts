// Test projects: unit (pure logic and engine numerics), integration (HTTP API against real servers),
// workers (the Worker inside workerd with D1). Each runs alone with `vitest run --project <name>`.
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

/** Test-only secrets of the workers project (the Worker reads them as bindings, like `wrangler secret put`). */
const workerTestBindings = {
  TUNESERVE_ADMIN_TOKEN: "adm_workers-test-admin-token-0123456789",
  TUNESERVE_RUNNER_TOKEN: "run_workers-test-runner-token-0123456789",
  TUNESERVE_BLOB_SIGNING_SECRET: "blb_workers-test-signing-secret-0123456789",
  // Past one 8 MiB part of the R2 store's multipart uploads, so a /blobs/ PUT cut at the limit aborts one.
  TUNESERVE_MAX_BLOB_BYTES: String(12 * 1024 * 1024),
  // At most half of it, as the API requires (a checkpoint's optimizer state is twice its adapter).
  TUNESERVE_MAX_ADAPTER_BYTES: String(6 * 1024 * 1024),
};

/**
 * The @cloudflare/vitest-pool-workers plugin, imported only once the workers project is selected: the package
 * loads wrangler and miniflare (seconds), which `--project unit` should not pay. Its config hook runs last,
 * after vitest has thrown out filtered projects.
 */
function workersPool(): Plugin {
  let real: Plugin | undefined;
  const call = (hook: keyof Plugin, ...args: unknown[]) => {
    const h = real?.[hook] as ((...a: unknown[]) => unknown) | { handler: (...a: unknown[]) => unknown } | undefined;
    return typeof h === "function" ? h.apply(real, args) : h?.handler.apply(real, args);
  };
  return {
    name: "tuneserve:workers-pool",
    enforce: "post",
    config: {
      order: "post",
      async handler(config, env) {
        const { cloudflareTest, readD1Migrations } = await import("@cloudflare/vitest-pool-workers");
        real = cloudflareTest(async () => ({
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: { bindings: { ...workerTestBindings, TEST_MIGRATIONS: await readD1Migrations("migrations") } },
        })) as Plugin;
        return call("config", config, env) as never;
      },
    },
    configureVitest: (ctx) => call("configureVitest" as keyof Plugin, ctx) as never,
    resolveId: (id, importer, opts) => call("resolveId", id, importer, opts) as never,
    load: (id, opts) => call("load", id, opts) as never,
  };
}

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 60_000,
          pool: "forks",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: "forks",
        },
      },
      {
        // wrangler.toml gives main, D1 (DB) and R2 (BLOBS); the migrations are applied by the setup file.
        plugins: [workersPool()],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          setupFiles: ["test/workers/setup/apply-migrations.ts"],
          testTimeout: 60_000,
        },
      },
    ],
  },
});
