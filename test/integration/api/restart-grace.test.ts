// A Node API that starts after downtime gives running jobs a full lease, so the runners that kept training
// through the outage report again instead of losing their jobs to a takeover.
import { eq } from "drizzle-orm";
import { afterEach, expect, it } from "vitest";
import { jobs } from "../../../api/src/db/schema.js";
import { startServer } from "../../../api/src/node.js";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { registerRunner, runnerCall, runningJob } from "../../helpers/jobs.js";

let api: TestApi;
afterEach(() => api?.close());

const progress = { step: 1, total_steps: 10, epoch: 0.1, loss: 1.5 };

it("keeps a job whose lease ran out while the API was down with the runner that trained it", async () => {
  api = await startTestApi();
  const { job, r } = await runningJob(api);
  const other = await registerRunner(api, "other");
  // The API was down for ten minutes: the lease ran out long ago.
  await api.deps.db.update(jobs).set({ leaseExpiresAt: api.deps.now() - 600 }).where(eq(jobs.id, job.id));
  const restarted = await startServer({ port: 0, dataDir: api.dataDir });
  await restarted.close();

  expect((await runnerCall(api, "/jobs/lease", { runner_id: other })).status).toBe(204);
  const hb = await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, attempt: 1, progress });
  expect(hb.status).toBe(200);
});

it("still hands a dead runner's job to another runner, one lease after the start", async () => {
  api = await startTestApi();
  const { job } = await runningJob(api);
  const other = await registerRunner(api, "other");
  await api.deps.db.update(jobs).set({ leaseExpiresAt: api.deps.now() - 600 }).where(eq(jobs.id, job.id));
  const restarted = await startServer({ port: 0, dataDir: api.dataDir });
  await restarted.close();

  api.advance(61);
  const res = await runnerCall(api, "/jobs/lease", { runner_id: other });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ job: { id: job.id }, lease: { attempt: 2 } });
});
