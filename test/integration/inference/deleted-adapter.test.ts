// An adapter deleted through the API leaves the runners that cached it: the runner's heartbeat is answered with
// the adapters gone since, and the runner drops their files and copies, so deleted weights do not linger there.
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startServer } from "../../../api/src/node.js";
import { BUILTIN_MODEL_NAME, ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { loadRunnerConfig } from "../../../gpu-runner/src/runner/config.js";
import { startRunner, type RunningRunner } from "../../../gpu-runner/src/runner/runner.js";
import { tenantWithAdapters } from "../../../bench/stack.js";

let dir: string;
let api: Awaited<ReturnType<typeof startServer>>;
let runner: RunningRunner;

const post = (path: string, token: string, body: unknown) =>
  fetch(`${api.url}${path}`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });

/** The adapters the runner's inference server holds, by its own status page. */
const held = async (): Promise<string[]> => {
  const res = await fetch(`${runner.url}/v1/status`, { headers: { Authorization: `Bearer ${api.runnerToken}` } });
  return ((await res.json()) as { adapters: string[] }).adapters;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-deleted-adapter-"));
  // Leases of 3 s: the runner heartbeats every second.
  api = await startServer({ port: 0, dataDir: join(dir, "api"), env: { TUNESERVE_LEASE_SECONDS: "3" } });
  const model = await ensureBuiltinModel(join(dir, "model"));
  expect((await post("/admin/v1/models", api.adminToken, { id: BUILTIN_MODEL_NAME, source: model })).status).toBe(201);
  const config = loadRunnerConfig(
    ["--api-url", api.url, "--token", api.runnerToken, "--name", "r1", "--model", `${BUILTIN_MODEL_NAME}=${model}`, "--cache-dir", join(dir, "runner"), "--listen", "127.0.0.1:0", "--poll-seconds", "60", "--poll-max-seconds", "60"],
    {},
  );
  runner = await startRunner(config, { log: () => {} });
});

afterAll(async () => {
  await runner?.stop();
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("an adapter deleted through the API", () => {
  it("is dropped by the runner that cached it", async () => {
    const tenant = await tenantWithAdapters({ apiUrl: api.url, adminToken: api.adminToken, model: BUILTIN_MODEL_NAME }, "acme", 2);
    const [gone, kept] = tenant.models;
    for (const m of tenant.models) {
      const res = await post("/v1/completions", tenant.key, { model: m, prompt: "hi", max_tokens: 2 });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    expect((await held()).sort()).toEqual([...tenant.models].sort());
    const cache = join(dir, "runner", "adapters");
    expect(await readdir(cache)).toHaveLength(2);

    const del = await fetch(`${api.url}/v1/models/${encodeURIComponent(gone)}`, { method: "DELETE", headers: { Authorization: `Bearer ${tenant.key}` } });
    expect(del.status).toBe(200);
    await vi.waitFor(async () => expect(await held()).toEqual([kept]), { timeout: 10_000, interval: 200 });
    // The files go in the background once the cache has let go of the adapter.
    await vi.waitFor(async () => expect(await readdir(cache)).toHaveLength(1), { timeout: 5_000, interval: 50 });
    expect(existsSync(join(cache, Buffer.from(gone).toString("base64url")))).toBe(false);
    // The other adapter is untouched and still served.
    expect((await post("/v1/completions", tenant.key, { model: kept, prompt: "hi", max_tokens: 2 })).status).toBe(200);
  });
});
