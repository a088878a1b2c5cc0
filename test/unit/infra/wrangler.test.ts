// wrangler.toml and README's Workers deployment steps against the Worker's code: every variable, binding, secret and
// path they name exists there with the same name. (wrangler deploy itself is not run here.)
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { apiConfigSchema, parseApiConfig } from "../../../api/src/config.js";
import { workerEnvSchema } from "../../../api/src/worker-deps.js";
import { runnerEnvNames } from "../../../gpu-runner/src/runner/config.js";
import { ROOT, tomlTables } from "./read-infra.js";

const toml = tomlTables("wrangler.toml");
const workerNames = [...Object.keys(apiConfigSchema.shape), ...Object.keys(workerEnvSchema.shape)];
/** The TUNESERVE_S3_* names the S3 store reads (api/src/blob/s3.ts). */
const s3Names = readFileSync(join(ROOT, "api/src/blob/s3.ts"), "utf8").match(/TUNESERVE_S3_[A-Z_]+/g) ?? [];

describe("wrangler.toml", () => {
  it("sets only variables the Worker reads, to values it accepts", () => {
    const vars = toml.vars[0];
    for (const name of Object.keys(vars)) expect(workerNames, name).toContain(name);
    expect(() => parseApiConfig(vars)).not.toThrow();
  });

  it("binds D1 and R2 under the names the Worker reads, and names files that exist", () => {
    expect(workerNames).toContain(toml.d1_databases[0].binding);
    expect(workerNames).toContain(toml.r2_buckets[0].binding);
    const main = toml[""][0].main as string;
    expect(existsSync(join(ROOT, main)), main).toBe(true);
    const migrations = toml.d1_databases[0].migrations_dir as string;
    expect(readdirSync(join(ROOT, migrations)).some((f) => f.endsWith(".sql"))).toBe(true);
    for (const target of Object.values(toml.alias[0])) expect(existsSync(join(ROOT, target as string)), String(target)).toBe(true);
  });
});

describe("README's deployment steps", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Deployment"), readme.indexOf("\n## ", readme.indexOf("## Deployment") + 1));

  it("name only variables the Worker, the S3 store or the runner reads", () => {
    const names = new Set(section.match(/TUNESERVE_[A-Z0-9_]+/g));
    expect(names.size).toBeGreaterThan(0);
    for (const name of names) {
      if (name === "TUNESERVE_S3_") continue; // "the TUNESERVE_S3_* variables"
      expect([...workerNames, ...s3Names, ...runnerEnvNames], name).toContain(name);
    }
  });

  it("use the D1 database, bucket and binding names of wrangler.toml", () => {
    const d1 = toml.d1_databases[0];
    expect(section).toContain(`npx wrangler d1 create ${d1.database_name}`);
    expect(section).toContain(`npx wrangler d1 migrations apply ${d1.binding} --remote`);
    expect(section).toContain(`npx wrangler r2 bucket create ${toml.r2_buckets[0].bucket_name}`);
    for (const m of section.matchAll(/wrangler r2 object put\s+([a-z0-9-]+)\//g)) expect(m[1]).toBe(toml.r2_buckets[0].bucket_name);
  });
});
