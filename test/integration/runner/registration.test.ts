// A runner's registration with a real API: it warns about the models it offers that the API has not registered,
// and when the API loses its row (a database restored or replaced, or runners unseen for 7 days purged) it
// registers again from its heartbeat, without waiting for its next lease poll, and heartbeats under the new id.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLibsql } from "../../../api/src/db/libsql.js";
import { runners } from "../../../api/src/db/schema.js";
import { startServer } from "../../../api/src/node.js";
import { CHECKPOINT_VERSION, RESUMABLE_CHECKPOINT_VERSIONS } from "../../../gpu-runner/src/engine/train/checkpoint.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { loadRunnerConfig } from "../../../gpu-runner/src/runner/config.js";
import { startRunner, type RunningRunner } from "../../../gpu-runner/src/runner/runner.js";

type RunnerRow = { id: string; name: string; last_seen_at: number; checkpoint_formats: number[]; active: boolean };

let dir: string;
let api: Awaited<ReturnType<typeof startServer>>;
let runner: RunningRunner;
const lines: Array<{ level: string; msg: string } & Record<string, unknown>> = [];

const listRunners = async (): Promise<RunnerRow[]> => {
  const res = await fetch(`${api.url}/admin/v1/runners`, { headers: { Authorization: `Bearer ${api.adminToken}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: RunnerRow[] }).data;
};

const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-forgotten-runner-"));
  // Leases of 3 s: the runner heartbeats every second.
  api = await startServer({ port: 0, dataDir: join(dir, "api"), env: { TUNESERVE_LEASE_SECONDS: "3" } });
  const model = await ensureBuiltinModel(join(dir, "model"));
  // The lease loop polls once at start, then sleeps a minute: within the test only the heartbeat can notice.
  const config = loadRunnerConfig(
    ["--api-url", api.url, "--token", api.runnerToken, "--name", "forgetful", "--model", `tuneserve-micro=${model}`, "--cache-dir", join(dir, "runner"), "--inference", "off", "--poll-seconds", "60", "--poll-max-seconds", "60"],
    {},
  );
  runner = await startRunner(config, { log: (level, msg, data = {}) => void lines.push({ level, msg, ...data }) });
});

afterAll(async () => {
  await runner?.stop();
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("a runner's registration", () => {
  it("warns about a model it offers that the API has not registered", () => {
    const warning = lines.find((l) => l.level === "warn" && l.model === "tuneserve-micro");
    expect(warning?.msg).toMatch(/the API has no base model of this id: it answers requests for it with 404 .*POST \/admin\/v1\/models/);
  });

  it("declares the checkpoint formats its engine resumes, so that it is leased no job whose checkpoint it would refuse", async () => {
    expect((await listRunners()).find((r) => r.id === runner.id)?.checkpoint_formats).toEqual([...RESUMABLE_CHECKPOINT_VERSIONS]);
    expect(RESUMABLE_CHECKPOINT_VERSIONS).toContain(CHECKPOINT_VERSION);
  });

  it("registers again from its heartbeat once the API has forgotten it, and heartbeats under the new id", async () => {
    expect((await listRunners()).map((r) => r.id)).toEqual([runner.id]);
    const { db, close } = await openLibsql(join(dir, "api", "tuneserve.sqlite"));
    try {
      await db.delete(runners);
    } finally {
      close();
    }
    expect(await listRunners()).toEqual([]);

    const back = await waitFor("the runner to register again", async () => (await listRunners()).find((r) => r.name === "forgetful"), 10_000);
    expect(back.id).not.toBe(runner.id);
    expect(runner.loop.currentRunnerId).toBe(back.id);
    // Heartbeats now reach the new row: its last_seen_at moves on.
    await waitFor("a heartbeat under the new id", async () => ((await listRunners()).find((r) => r.id === back.id && r.last_seen_at > back.last_seen_at) ? true : undefined), 10_000);
  });

  it("tells the API when it stops, which routes nothing more to it and lets its name register again at once", async () => {
    const model = await ensureBuiltinModel(join(dir, "model"));
    const config = loadRunnerConfig(
      ["--api-url", api.url, "--token", api.runnerToken, "--name", "brief", "--model", `tuneserve-micro=${model}`, "--cache-dir", join(dir, "brief"), "--inference", "off", "--poll-seconds", "60", "--poll-max-seconds", "60"],
      {},
    );
    const brief = await startRunner(config, { log: () => {} });
    expect((await listRunners()).find((r) => r.name === "brief")?.active).toBe(true);
    await brief.stop();
    // Within the lease period it would still count as live (and a second process of the name be refused).
    expect((await listRunners()).find((r) => r.name === "brief")?.active).toBe(false);
    const again = await startRunner(config, { log: () => {} });
    expect(again.id).toBe(brief.id);
    await again.stop();
  });
});
