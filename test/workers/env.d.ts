// Types of the bindings the workers tests see: wrangler.toml's plus the test-only ones from vitest.config.ts.
import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      BLOBS: R2Bucket;
      TEST_MIGRATIONS: D1Migration[];
      TUNESERVE_ADMIN_TOKEN: string;
      TUNESERVE_RUNNER_TOKEN: string;
      TUNESERVE_BLOB_SIGNING_SECRET: string;
      TUNESERVE_MAX_BLOB_BYTES: string;
      TUNESERVE_MAX_ADAPTER_BYTES: string;
    }
    interface GlobalProps {
      /** wrangler.toml's main, so `exports.default` of "cloudflare:workers" is typed. */
      mainModule: typeof import("../../api/src/worker.js");
    }
  }
}
