// Applies migrations/ (read by vitest.config.ts) to the test D1 before each test file, the way
// `wrangler d1 migrations apply` does: same files, same d1_migrations bookkeeping.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
